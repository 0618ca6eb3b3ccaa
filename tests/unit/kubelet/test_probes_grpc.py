"""The gRPC probe's own HTTP/2 client (kubelet/probe_grpc.py): HPACK against RFC 7541's
examples, a scripted h2c server (padding, CONTINUATION, trailers-only answers) and, when
grpcio is installed, a real grpc.health.v1 server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from fractions import Fraction

import pytest

from pybernetes.kubelet import probe_grpc as g
from pybernetes.kubelet.probes import ProbeKind, ProbeResult, run_probe

try:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_health.v1.health import aio as health_aio
except ImportError:  # pragma: no cover - the scripted server still runs
    grpc = None


def test_huffman_code_is_complete_and_canonical() -> None:
    lengths = g.huffman_lengths()
    assert sorted(lengths) == list(range(257))
    assert sum(Fraction(1, 2 ** n) for n in lengths.values()) == 1
    codes = g.huffman_codes()
    assert codes[ord("0")] == (0b00000, 5) and codes[ord(" ")] == (0b010100, 6)
    assert codes[g.EOS] == ((1 << 30) - 1, 30)


def test_hpack_decodes_the_rfc_7541_request_examples() -> None:
    decoder = g.HpackDecoder()
    blocks = ["828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf",
              "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"]
    decoded = [decoder.decode(bytes.fromhex(block)) for block in blocks]
    assert decoded[0] == [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")]
    assert decoded[1][-1] == ("cache-control", "no-cache")
    assert decoded[2][-1] == ("custom-key", "custom-value") and decoded[2][1] == (":scheme", "https")
    assert decoder.size == 164 and decoder.table[0] == ("custom-key", "custom-value")


def test_hpack_decodes_the_rfc_7541_response_examples_with_eviction() -> None:
    decoder = g.HpackDecoder(256)
    decoder.max_size = 256
    blocks = ["488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9"
              "ae82ae43d3", "4883640effc1c0bf",
              "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b"
              "3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007"]
    decoded = [decoder.decode(bytes.fromhex(block)) for block in blocks]
    assert decoded[0] == [(":status", "302"), ("cache-control", "private"),
                          ("date", "Mon, 21 Oct 2013 20:13:21 GMT"), ("location", "https://www.example.com")]
    assert decoded[1][0] == (":status", "307") and decoded[1][1:] == decoded[0][1:]
    assert decoded[2][-1] == ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")
    assert decoder.size == 215 and len(decoder.table) == 3


def test_hpack_rejects_bad_input() -> None:
    with pytest.raises(g.HpackError):
        g.HpackDecoder().decode(b"\xff\x80")  # index beyond both tables
    with pytest.raises(g.HpackError):
        g.huffman_decode(b"\x00")  # padding of zero bits
    with pytest.raises(g.HpackError):
        g.HpackDecoder(100).decode(b"\x3f\xe1\x1f")  # a table size above our limit


def test_encoded_headers_decode_back() -> None:
    headers = [(":path", "/" + "x" * 300), ("te", "trailers")]
    assert g.HpackDecoder().decode(g.encode_headers(headers)) == headers


def _literal(name: str, value: str) -> bytes:
    return g.encode_headers([(name, value)])


async def scripted_server(answer: list[bytes]):
    """An h2c server that reads the client's preface and frames, then sends ``answer``."""
    seen: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            assert await reader.readexactly(len(g.PREFACE)) == g.PREFACE
            while True:  # the client's SETTINGS, HEADERS and DATA (END_STREAM)
                head = await reader.readexactly(9)
                await reader.readexactly(int.from_bytes(head[:3], "big"))
                seen.append(head[3])
                if head[3] == g.DATA and head[4] & g.END_STREAM:
                    break
            writer.write(b"".join(answer))
            await writer.drain()
            await reader.read()  # until the client closes
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


def _serving_answer(status: int) -> list[bytes]:
    body = b"\x08" + bytes([status])
    padded = bytes([3]) + b"\x88" + b"\x00\x00\x00"  # :status 200 (indexed), 3 bytes of padding
    return [
        g.frame(g.SETTINGS, 0, 0, struct.pack(">HI", 3, 100)),
        g.frame(g.PING, 0, 0, b"12345678"),
        g.frame(g.HEADERS, g.PADDED, 1, padded),
        g.frame(g.CONTINUATION, g.END_HEADERS, 1, _literal("content-type", "application/grpc")),
        g.frame(g.DATA, 0, 1, b"\x00" + struct.pack(">I", len(body)) + body),
        g.frame(g.HEADERS, g.END_HEADERS | g.END_STREAM, 1, _literal("grpc-status", "0")),
    ]


@pytest.mark.parametrize(("status", "expected"), [
    (1, ProbeResult(True, "service is healthy")),
    (2, ProbeResult(False, 'service unhealthy (responded with "NOT_SERVING")')),
])
async def test_scripted_server_answers_through_run_probe(status: int, expected: ProbeResult) -> None:
    server, port, seen = await scripted_server(_serving_answer(status))
    try:
        result = await run_probe({"grpc": {"port": port, "service": "db"}}, kind=ProbeKind.LIVENESS,
                                 pod={}, container={}, pod_ip="127.0.0.1", container_id="c", runtime=None)
    finally:
        server.close()
        await server.wait_closed()
    assert result == expected
    assert seen[:3] == [g.SETTINGS, g.HEADERS, g.DATA]


async def test_trailers_only_answers_give_upstream_messages() -> None:
    answer = [g.frame(g.HEADERS, g.END_HEADERS | g.END_STREAM, 1, b"\x88" + _literal("grpc-status", "12")
                      + _literal("grpc-message", "no%20health"))]
    server, port, _ = await scripted_server(answer)
    try:
        healthy, message = await g.health_check("127.0.0.1", port, "", 1)
    finally:
        server.close()
        await server.wait_closed()
    assert not healthy
    assert message == ("error: this server does not implement the grpc health protocol (grpc.health.v1.Health): "
                       "no health")


async def test_silent_server_times_out_and_closed_port_is_refused() -> None:
    server, port, _ = await scripted_server([])  # reads the request and never answers
    try:
        assert await g.health_check("127.0.0.1", port, "", 0.2) == (
            False, "timeout: health rpc did not complete within 0.2s")
    finally:
        server.close()
        await server.wait_closed()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    healthy, message = await g.health_check("127.0.0.1", closed, "", 1)
    assert not healthy and message == (f'error: failed to connect service at "127.0.0.1:{closed}": '
                                       f"dial tcp 127.0.0.1:{closed}: connect: connection refused")


@pytest.mark.skipif(grpc is None, reason="grpcio and grpcio-health-checking are not installed")
async def test_real_grpc_health_server() -> None:
    server = grpc.aio.server()
    servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    bare = grpc.aio.server()  # no health service at all
    bare_port = bare.add_insecure_port("127.0.0.1:0")
    await bare.start()
    try:
        await servicer.set("db", health_pb2.HealthCheckResponse.SERVING)
        await servicer.set("cache", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert await g.health_check("127.0.0.1", port, "", 1) == (True, "service is healthy")
        assert await g.health_check("127.0.0.1", port, "db", 1) == (True, "service is healthy")
        assert await g.health_check("127.0.0.1", port, "cache", 1) == (
            False, 'service unhealthy (responded with "NOT_SERVING")')
        healthy, message = await g.health_check("127.0.0.1", port, "nope" * 100, 1)
        assert not healthy and message.startswith("error: health rpc probe failed: rpc error: code = NotFound desc =")
        healthy, message = await g.health_check("127.0.0.1", bare_port, "", 1)
        assert not healthy and message.startswith("error: this server does not implement the grpc health protocol")
    finally:
        await server.stop(0)
        await bare.stop(0)
