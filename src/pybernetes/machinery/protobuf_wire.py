"""The protobuf wire format, read side: varints, tags, length-delimited ranges, fixed widths.

Pure functions over ``bytes`` with explicit ``[start, end)`` ranges, so nested messages are
read in place without copying.  Every malformed input (truncated varint, a length running past
its message, an unknown or group wire type) raises ``WireError`` with the byte offset; callers
turn it into an API error.  Used by ``machinery.protobuf`` (Kubernetes request bodies) and by
``tools/gen_protobuf_descriptors.py`` (which reads compiled FileDescriptorProtos).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
START_GROUP = 3
END_GROUP = 4
FIXED32 = 5

_MAX_VARINT_BYTES = 10
_UINT64 = 1 << 64
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The unsigned varint at ``pos`` and the position after it."""
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise WireError(f"truncated varint at byte {start}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if pos - start > _MAX_VARINT_BYTES or result >= _UINT64:
                raise WireError(f"varint overflows 64 bits at byte {start}")
            return result, pos
        shift += 7
        if pos - start >= _MAX_VARINT_BYTES:
            raise WireError(f"varint longer than 10 bytes at byte {start}")


def iter_fields(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(field_number, wire_type, a, b)`` for each field of the message in ``[start, end)``.

    For VARINT, FIXED64 and FIXED32 ``a`` is the raw unsigned value and ``b`` the position after
    it; for LENGTH_DELIMITED ``[a, b)`` is the payload's range.
    """
    if end is None:
        end = len(buf)
    pos = start
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        number = key >> 3
        wire_type = key & 7
        if number == 0:
            raise WireError(f"field number 0 at byte {pos}")
        if wire_type == VARINT:
            value, pos = read_varint(buf, pos, end)
            yield number, wire_type, value, pos
        elif wire_type == LENGTH_DELIMITED:
            length, pos = read_varint(buf, pos, end)
            if length > end - pos:
                raise WireError(f"field {number}: length {length} at byte {pos} runs past the end "
                                f"of its message ({end - pos} bytes left)")
            yield number, wire_type, pos, pos + length
            pos += length
        elif wire_type == FIXED64:
            if pos + 8 > end:
                raise WireError(f"field {number}: truncated 64-bit value at byte {pos}")
            yield number, wire_type, int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
            pos += 8
        elif wire_type == FIXED32:
            if pos + 4 > end:
                raise WireError(f"field {number}: truncated 32-bit value at byte {pos}")
            yield number, wire_type, int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
            pos += 4
        elif wire_type in (START_GROUP, END_GROUP):
            raise WireError(f"field {number}: groups (wire type {wire_type}) are not supported")
        else:
            raise WireError(f"field {number}: invalid wire type {wire_type}")


# -- scalar conversions ------------------------------------------------------------------


def as_int64(raw: int) -> int:
    """A varint read as a two's-complement int64 (negative int32/int64 use 10 bytes)."""
    return raw - _UINT64 if raw >= 1 << 63 else raw


def as_int32(raw: int) -> int:
    value = raw & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def as_uint32(raw: int) -> int:
    return raw & 0xFFFFFFFF


def unzigzag(raw: int) -> int:
    return (raw >> 1) ^ -(raw & 1)


def as_double(raw: int) -> float:
    return _DOUBLE.unpack(raw.to_bytes(8, "little"))[0]


def as_float(raw: int) -> float:
    return _FLOAT.unpack(raw.to_bytes(4, "little"))[0]


def as_sfixed32(raw: int) -> int:
    return raw - (1 << 32) if raw >= 1 << 31 else raw


def as_sfixed64(raw: int) -> int:
    return raw - _UINT64 if raw >= 1 << 63 else raw


# scalar type name -> (wire type, converter from the raw value)
SCALARS: dict[str, tuple[int, object]] = {
    "int32": (VARINT, as_int32),
    "int64": (VARINT, as_int64),
    "uint32": (VARINT, as_uint32),
    "uint64": (VARINT, int),
    "sint32": (VARINT, unzigzag),
    "sint64": (VARINT, unzigzag),
    "bool": (VARINT, bool),
    "enum": (VARINT, as_int32),
    "fixed32": (FIXED32, int),
    "fixed64": (FIXED64, int),
    "sfixed32": (FIXED32, as_sfixed32),
    "sfixed64": (FIXED64, as_sfixed64),
    "float": (FIXED32, as_float),
    "double": (FIXED64, as_double),
    "string": (LENGTH_DELIMITED, None),
    "bytes": (LENGTH_DELIMITED, None),
}


def iter_packed(buf: bytes, start: int, end: int, wire_type: int) -> Iterator[int]:
    """The raw values of a packed repeated scalar field's payload."""
    pos = start
    while pos < end:
        if wire_type == VARINT:
            value, pos = read_varint(buf, pos, end)
        else:
            width = 8 if wire_type == FIXED64 else 4
            if pos + width > end:
                raise WireError(f"truncated packed value at byte {pos}")
            value = int.from_bytes(buf[pos:pos + width], "little")
            pos += width
        yield value


# -- writing (for tests and tools: building messages) ------------------------------------


def encode_varint(value: int) -> bytes:
    if value < 0:
        value += _UINT64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_field(number: int, value: int | bytes | str) -> bytes:
    """One field: ints as varints, bytes/str as length-delimited."""
    if isinstance(value, int):
        return encode_varint(number << 3 | VARINT) + encode_varint(value)
    data = value.encode() if isinstance(value, str) else value
    return encode_varint(number << 3 | LENGTH_DELIMITED) + encode_varint(len(data)) + data
