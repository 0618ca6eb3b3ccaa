"""The gRPC probe's client: one ``grpc.health.v1.Health/Check`` call over cleartext HTTP/2
(h2c with prior knowledge, as upstream's probe dials with insecure credentials), written from
RFC 9113 (HTTP/2), RFC 7541 (HPACK) and the gRPC over HTTP/2 protocol, so the kubelet needs no
gRPC library.

- ``health_check(host, port, service, limit_seconds)`` answers ``(healthy, message)`` with upstream
  kubelet v1.32's messages: "service is healthy", ``service unhealthy (responded with
  "NOT_SERVING")``, ``error: this server does not implement the grpc health protocol
  (grpc.health.v1.Health): ...``, ``timeout: health rpc did not complete within 1s``,
  ``error: health rpc probe failed: rpc error: code = NotFound desc = unknown service`` ...
- The client sends its SETTINGS, one HEADERS frame (literal fields, no Huffman, no indexing)
  and one DATA frame, then reads frames until the stream ends: SETTINGS and PING are
  acknowledged, CONTINUATION frames are joined, padding is dropped, RST_STREAM and GOAWAY end
  the call with an error.
- ``HpackDecoder`` decodes the server's header blocks: the static and dynamic tables, table
  size updates and Huffman-coded strings (the canonical code of RFC 7541 Appendix B, built
  from its code lengths).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import urllib.parse

USER_AGENT = "kube-probe/1.32"
PATH = "/grpc.health.v1.Health/Check"
SERVING_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
GRPC_CODES = ["OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
              "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
              "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"]
UNIMPLEMENTED, DEADLINE_EXCEEDED = 12, 4

# -- HPACK ---------------------------------------------------------------------------------------

STATIC_TABLE: list[tuple[str, str]] = [
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
    (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"), (":status", "404"),
    (":status", "500"), ("accept-charset", ""), ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""), ("accept-ranges", ""), ("accept", ""), ("access-control-allow-origin", ""),
    ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
    ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""),
    ("content-length", ""), ("content-location", ""), ("content-range", ""), ("content-type", ""),
    ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""),
    ("host", ""), ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
    ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""),
    ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""), ("set-cookie", ""),
    ("strict-transport-security", ""), ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""),
    ("via", ""), ("www-authenticate", ""),
]

# The Huffman code's lengths (RFC 7541 Appendix B): symbols by code length. The code is
# canonical, so the codes follow from the lengths (shorter first, then by symbol).
_PRINTABLE_LENGTHS = {
    5: "012aceiost",
    6: " %-./3456789=A_bdfghlmnpru",
    7: ":BCDEFGHIJKLMNOPQRSTUVWYjkqvwxyz",
    8: "&*,;XZ",
    10: "!\"()?",
    11: "'+|",
    12: "#>",
    13: "$@[]~",
    14: "^}",
    15: "<`{",
    19: "\\",
}
_OTHER_LENGTHS = {
    13: [0],
    19: [195, 208],
    20: [128, 130, 131, 162, 184, 194, 224, 226],
    21: [153, 161, 167, 172, 176, 177, 179, 209, 216, 217, 227, 229, 230],
    22: [129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169, 170, 173, 178, 181, 185, 186, 187,
         189, 190, 196, 198, 228, 232, 233],
    23: [1, 135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157, 158, 165, 166, 168, 174,
         175, 180, 182, 183, 188, 191, 197, 231, 239],
    24: [9, 142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237],
    25: [199, 207, 234, 235],
    26: [192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255],
    27: [203, 204, 211, 212, 214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252, 253, 254],
    28: [2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31,
         127, 220, 249],
    30: [10, 13, 22, 256],
}
EOS = 256


def huffman_lengths() -> dict[int, int]:
    """symbol -> code length, for the 257 symbols (256 = EOS)."""
    lengths = {ord(ch): n for n, chars in _PRINTABLE_LENGTHS.items() for ch in chars}
    lengths.update({sym: n for n, syms in _OTHER_LENGTHS.items() for sym in syms})
    return lengths


def huffman_codes() -> dict[int, tuple[int, int]]:
    """symbol -> (code, length), assigned canonically."""
    order = sorted(huffman_lengths().items(), key=lambda item: (item[1], item[0]))
    codes: dict[int, tuple[int, int]] = {}
    code, prev = 0, order[0][1]
    for sym, length in order:
        code <<= length - prev
        prev = length
        codes[sym] = (code, length)
        code += 1
    return codes


_DECODE = {(length, code): sym for sym, (code, length) in huffman_codes().items()}


class HpackError(ValueError):
    pass


def huffman_decode(data: bytes) -> bytes:
    out = bytearray()
    code = length = 0
    for byte in data:
        for shift in range(7, -1, -1):
            code = (code << 1) | ((byte >> shift) & 1)
            length += 1
            sym = _DECODE.get((length, code)) if length >= 5 else None
            if sym is not None:
                if sym == EOS:
                    raise HpackError("EOS in a Huffman-coded string")
                out.append(sym)
                code = length = 0
            elif length > 30:
                raise HpackError("invalid Huffman code")
    if length > 7 or code != (1 << length) - 1:
        raise HpackError("invalid Huffman padding")
    return bytes(out)


def encode_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    """A header block of literal fields without indexing, new names, plain strings."""
    out = bytearray()
    for name, value in headers:
        raw_name, raw_value = name.encode(), value.encode()
        out += b"\x00" + encode_int(len(raw_name), 7) + raw_name + encode_int(len(raw_value), 7) + raw_value
    return bytes(out)


class HpackDecoder:
    """Decodes a connection's header blocks in order (the dynamic table carries over)."""

    def __init__(self, max_size: int = 4096) -> None:
        self.limit = max_size  # what our SETTINGS_HEADER_TABLE_SIZE allows
        self.max_size = max_size  # the current size, as the server's table size updates set it
        self.size = 0
        self.table: list[tuple[str, str]] = []  # newest first

    def _int(self, data: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
        if pos >= len(data):
            raise HpackError("truncated header block")
        limit = (1 << prefix_bits) - 1
        value = data[pos] & limit
        pos += 1
        if value < limit:
            return value, pos
        shift = 0
        while True:
            if pos >= len(data):
                raise HpackError("truncated integer")
            byte = data[pos]
            pos += 1
            value += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, pos
            if shift > 28:
                raise HpackError("integer too large")

    def _str(self, data: bytes, pos: int) -> tuple[str, int]:
        if pos >= len(data):
            raise HpackError("truncated header block")
        huffman = bool(data[pos] & 0x80)
        length, pos = self._int(data, pos, 7)
        raw = data[pos:pos + length]
        if len(raw) != length:
            raise HpackError("truncated string")
        return (huffman_decode(raw) if huffman else raw).decode("latin-1"), pos + length

    def _entry(self, index: int) -> tuple[str, str]:
        if 1 <= index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        dyn = index - len(STATIC_TABLE) - 1
        if 0 <= dyn < len(self.table):
            return self.table[dyn]
        raise HpackError(f"invalid header index {index}")

    def _evict(self) -> None:
        while self.size > self.max_size and self.table:
            name, value = self.table.pop()
            self.size -= len(name) + len(value) + 32

    def _add(self, name: str, value: str) -> None:
        self.table.insert(0, (name, value))
        self.size += len(name) + len(value) + 32
        self._evict()

    def decode(self, data: bytes) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        pos = 0
        while pos < len(data):
            byte = data[pos]
            if byte & 0x80:  # indexed field
                index, pos = self._int(data, pos, 7)
                headers.append(self._entry(index))
            elif byte & 0xE0 == 0x20:  # dynamic table size update
                size, pos = self._int(data, pos, 5)
                if size > self.limit:
                    raise HpackError(f"table size {size} above the limit {self.limit}")
                self.max_size = size
                self._evict()
            else:  # literal: with incremental indexing (01), without (0000) or never indexed (0001)
                indexing = byte & 0xC0 == 0x40
                index, pos = self._int(data, pos, 6 if indexing else 4)
                if index:
                    name = self._entry(index)[0]
                else:
                    name, pos = self._str(data, pos)
                value, pos = self._str(data, pos)
                headers.append((name, value))
                if indexing:
                    self._add(name, value)
        return headers


# -- HTTP/2 --------------------------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
STREAM = 1


class CallError(Exception):
    """The call ended with a gRPC status other than OK (or the transport failed)."""

    def __init__(self, code: int, message: str) -> None:
        name = GRPC_CODES[code] if 0 <= code < len(GRPC_CODES) else f"Code({code})"
        super().__init__(f"rpc error: code = {name} desc = {message}")
        self.code = code
        self.message = message


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def request_message(service: str) -> bytes:
    """A length-prefixed HealthCheckRequest (field 1: service)."""
    body = b""
    if service:
        raw = service.encode()
        body = b"\x0a" + _varint(len(raw)) + raw
    return b"\x00" + struct.pack(">I", len(body)) + body


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def response_status(data: bytes) -> int:
    """The status field of a length-prefixed HealthCheckResponse (0 when absent)."""
    if len(data) < 5:
        raise CallError(13, "incomplete response message")
    if data[0] != 0:
        raise CallError(13, "compressed response message without a negotiated encoding")
    (length,) = struct.unpack(">I", data[1:5])
    body, pos, status = data[5:5 + length], 0, 0
    while pos < len(body):
        key, pos = _read_varint(body, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(body, pos)
            if field == 1:
                status = value
        elif wire == 2:
            size, pos = _read_varint(body, pos)
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise CallError(13, f"undecodable response message (wire type {wire})")
    return status


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise CallError(13, "truncated response message")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _http_status_code(status: str) -> int:
    """gRPC's mapping of a non-200 HTTP status to a code."""
    return {"400": 13, "401": 16, "403": 7, "404": 12, "429": 14, "502": 14, "503": 14, "504": 14}.get(status, 2)


async def _call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, authority: str,
                service: str, limit_seconds: float) -> int:
    """Sends the Check request and returns the response's serving status (or raises CallError)."""
    headers = [(":method", "POST"), (":scheme", "http"), (":path", PATH), (":authority", authority),
               ("content-type", "application/grpc"), ("user-agent", USER_AGENT), ("te", "trailers"),
               ("grpc-timeout", f"{max(1, int(limit_seconds * 1000))}m")]
    writer.write(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 2, 0))  # ENABLE_PUSH = 0
                 + frame(HEADERS, END_HEADERS, STREAM, encode_headers(headers))
                 + frame(DATA, END_STREAM, STREAM, request_message(service)))
    await writer.drain()
    decoder = HpackDecoder()
    blocks: list[list[tuple[str, str]]] = []
    data = bytearray()
    pending: bytearray | None = None  # a header block awaiting CONTINUATION
    pending_end = False
    while True:
        head = await reader.readexactly(9)
        length = int.from_bytes(head[:3], "big")
        kind, flags = head[3], head[4]
        stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
        payload = await reader.readexactly(length)
        if pending is not None and kind != CONTINUATION:
            raise CallError(13, "protocol error: header block interrupted")
        if kind == SETTINGS and not flags & ACK:
            writer.write(frame(SETTINGS, ACK, 0))
        elif kind == PING and not flags & ACK:
            writer.write(frame(PING, ACK, 0, payload))
        elif kind == GOAWAY:
            code = int.from_bytes(payload[4:8], "big") if len(payload) >= 8 else 0
            raise CallError(14, f"connection closed by the server (GOAWAY, error code {code}): "
                                f"{payload[8:].decode(errors='replace')}")
        elif stream != STREAM:
            continue
        elif kind == RST_STREAM:
            code = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else 0
            raise CallError(14 if code == 7 else 13, f"stream terminated by RST_STREAM with error code: {code}")
        elif kind in (HEADERS, CONTINUATION):
            if kind == HEADERS:
                payload = _unpad(payload, flags)
                if flags & PRIORITY_FLAG:
                    payload = payload[5:]
                pending, pending_end = bytearray(), bool(flags & END_STREAM)
            elif pending is None:
                raise CallError(13, "protocol error: unexpected CONTINUATION")
            pending += payload
            if flags & END_HEADERS:
                blocks.append(decoder.decode(bytes(pending)))
                pending = None
                if pending_end:
                    break
        elif kind == DATA:
            data += _unpad(payload, flags)
            if flags & END_STREAM:
                break
        await writer.drain()
    if not blocks:
        raise CallError(13, "server closed the stream without sending headers")
    first = dict(blocks[0])
    if first.get(":status") != "200":
        status = first.get(":status", "?")
        raise CallError(_http_status_code(status), f"unexpected HTTP status code received from server: {status}")
    trailers = dict(blocks[-1])
    if "grpc-status" not in trailers:
        raise CallError(13, "server closed the stream without sending trailers")
    code = int(trailers["grpc-status"]) if trailers["grpc-status"].isdigit() else 2
    if code != 0:
        raise CallError(code, urllib.parse.unquote(trailers.get("grpc-message", "")))
    return response_status(bytes(data))


def _unpad(payload: bytes, flags: int) -> bytes:
    if not flags & PADDED:
        return payload
    if not payload or payload[0] >= len(payload):
        raise CallError(13, "protocol error: bad padding")
    return payload[1:len(payload) - payload[0]]


def _go_duration(seconds: float) -> str:
    return f"{seconds:g}s"


def os_reason(exc: OSError) -> str:
    """An OS error as Go's syscall errors read ("connection refused")."""
    if isinstance(exc, socket.gaierror):
        text = exc.strerror or str(exc)
    else:
        text = os.strerror(exc.errno) if exc.errno else str(exc)
    return text[:1].lower() + text[1:]


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def health_check(host: str, port: int, service: str, limit_seconds: float) -> tuple[bool, str]:
    """One health check: ``(True, "service is healthy")`` for SERVING, else False and why."""
    addr = join_host_port(host, port)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_seconds
    try:
        async with asyncio.timeout_at(deadline):
            reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return False, (f'timeout: failed to connect service "{addr}" within {_go_duration(limit_seconds)}: '
                       "context deadline exceeded")
    except OSError as exc:
        return False, f'error: failed to connect service at "{addr}": dial tcp {addr}: connect: {os_reason(exc)}'
    try:
        async with asyncio.timeout_at(deadline):
            status = await _call(reader, writer, addr, service, limit_seconds)
    except TimeoutError:
        return False, f"timeout: health rpc did not complete within {_go_duration(limit_seconds)}"
    except CallError as exc:
        if exc.code == UNIMPLEMENTED:
            return False, ("error: this server does not implement the grpc health protocol "
                           f"(grpc.health.v1.Health): {exc.message}")
        if exc.code == DEADLINE_EXCEEDED:
            return False, f"timeout: health rpc did not complete within {_go_duration(limit_seconds)}"
        return False, f"error: health rpc probe failed: {exc}"
    except (OSError, asyncio.IncompleteReadError, HpackError) as exc:
        reason = "connection closed by the server" if isinstance(exc, asyncio.IncompleteReadError) else str(exc)
        return False, f"error: health rpc probe failed: rpc error: code = Unavailable desc = {reason}"
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    if status != 1:
        return False, f'service unhealthy (responded with "{SERVING_STATUS.get(status, str(status))}")'
    return True, "service is healthy"
