#!/usr/bin/env python3
"""Generate src/pybernetes/machinery/protobuf_descriptors.json: the Kubernetes protobuf schema.

Input: a Kubernetes Go binary built with k8s.io/api (default: the real kubectl 1.32 at
/usr/lib/google-cloud-sdk/bin/kubectl.1.32).  Such a binary carries two things we need:

1. The compiled form of every ``k8s.io/.../generated.proto``: gogo-protobuf registers each file
   as a gzipped ``FileDescriptorProto``.  They are found by their gzip header, inflated and read
   with ``pybernetes.machinery.protobuf_wire``; they give each message's field numbers, names,
   types, labels and map entries (exactly the wire protocol of that Kubernetes version).
2. Go's reflection metadata for the API structs: each struct field's name, its struct tag
   (``json:"replicas,omitempty" protobuf:"varint,1,opt,name=replicas"``) and its Go kind.
   The .proto text does not say what a JSON body would: whether a scalar is a pointer (so an
   explicit zero is meaningful), whether the JSON name has ``omitempty``, and which fields are
   embedded inline (``json:",inline"``).  Those come from here.

Output: ``{"messages": {full message name: [[number, json name, kind, flags], ...]}}`` for every
message reachable from the kinds the API server serves (``api.registry.builtin_registry()``)
plus a few request kinds (DeleteOptions, Scale, Eviction, TokenRequest, Binding).  ``kind`` is a
scalar type (``string``, ``int32``, ``bytes`` ...), a full message name, or
``map<KEY,VALUE>``; ``flags`` holds ``r`` (repeated), ``p`` (Go pointer: an explicit zero is
kept), ``a`` (JSON name without omitempty: always present), ``i`` (inline: its fields merge
into the parent object).

Usage:  .venv/bin/python tools/gen_protobuf_descriptors.py [--binary PATH] [--output PATH]
"""

from __future__ import annotations

import argparse
import array
import json
import re
import struct
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pybernetes.machinery import protobuf_wire as wire  # noqa: E402
from pybernetes.machinery.protobuf import SPECIAL_MESSAGES, message_for  # noqa: E402

DEFAULT_BINARY = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
DEFAULT_OUTPUT = ROOT / "src/pybernetes/machinery/protobuf_descriptors.json"

# FieldDescriptorProto.type -> our scalar names (11 = message, 10 = group: not used by k8s)
_TYPES = {1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64",
          7: "fixed32", 8: "bool", 9: "string", 12: "bytes", 13: "uint32", 14: "enum",
          15: "sfixed32", 16: "sfixed64", 17: "sint32", 18: "sint64"}
_GZIP_HEADER = re.compile(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00[\x00\x02\x04]\xff")
_GO_KIND_PTR = 22
_GO_KIND_STRUCT = 25
_EXTRA_ROOTS = [("meta.k8s.io/v1", "DeleteOptions"), ("autoscaling/v1", "Scale"),
                ("policy/v1", "Eviction"), ("authentication.k8s.io/v1", "TokenRequest"),
                ("v1", "Binding")]


# -- 1. FileDescriptorProtos ----------------------------------------------------------------


def _text(buf: bytes, a: int, b: int) -> str:
    return buf[a:b].decode()


def _read_field(buf: bytes, a: int, b: int) -> dict:
    field = {"label": 1}
    for number, _wt, x, y in wire.iter_fields(buf, a, b):
        if number == 1:
            field["name"] = _text(buf, x, y)
        elif number == 3:
            field["number"] = x
        elif number == 4:
            field["label"] = x
        elif number == 5:
            field["type"] = x
        elif number == 6:
            field["type_name"] = _text(buf, x, y).lstrip(".")
    return field


def _read_message(buf: bytes, a: int, b: int, scope: str, out: dict[str, dict]) -> None:
    message = {"fields": [], "map_entry": False}
    name = ""
    nested: list[tuple[int, int]] = []
    for number, _wt, x, y in wire.iter_fields(buf, a, b):
        if number == 1:
            name = _text(buf, x, y)
        elif number == 2:
            message["fields"].append(_read_field(buf, x, y))
        elif number == 3:
            nested.append((x, y))
        elif number == 7:  # MessageOptions
            for opt, _w, v, _e in wire.iter_fields(buf, x, y):
                if opt == 7 and v:
                    message["map_entry"] = True
    full = f"{scope}.{name}"
    out[full] = message
    for x, y in nested:
        _read_message(buf, x, y, full, out)


def read_descriptors(binary: bytes) -> dict[str, dict]:
    """Every message of every embedded k8s.io FileDescriptorProto, by full name."""
    messages: dict[str, dict] = {}
    for match in _GZIP_HEADER.finditer(binary):
        try:
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(binary[match.start():match.start() + 4_000_000])
        except zlib.error:
            continue
        try:
            fields = list(wire.iter_fields(data))
        except wire.WireError:
            continue
        names = [_text(data, x, y) for n, _w, x, y in fields if n == 1]
        if not names or not names[0].startswith("k8s.io/") or not names[0].endswith(".proto"):
            continue
        package = next((_text(data, x, y) for n, _w, x, y in fields if n == 2), "")
        for number, _wt, x, y in fields:
            if number == 4:
                _read_message(data, x, y, package, messages)
    return messages


# -- 2. Go reflection metadata ----------------------------------------------------------------


class GoBinary:
    """Just enough of an amd64 ELF Go binary to read struct type descriptors."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        phoff = struct.unpack_from("<Q", data, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
        self.segments = []
        for i in range(phnum):
            p_type, _flags, offset, vaddr, _p, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
            if p_type == 1:  # PT_LOAD
                self.segments.append((vaddr, offset, filesz))

    def offset(self, va: int) -> int:
        for vaddr, offset, size in self.segments:
            if vaddr <= va < vaddr + size:
                return offset + va - vaddr
        raise ValueError(f"address {va:#x} is not in the file")

    def name(self, va: int) -> tuple[int, str, str]:
        """A Go runtime name: (flags, name, tag)."""
        pos = self.offset(va)
        flags = self.data[pos]
        length, pos = wire.read_varint(self.data, pos + 1, len(self.data))
        text = self.data[pos:pos + length].decode("utf-8", "replace")
        pos += length
        tag = ""
        if flags & 2:
            tag_length, pos = wire.read_varint(self.data, pos, len(self.data))
            tag = self.data[pos:pos + tag_length].decode("utf-8", "replace")
        return flags, text, tag

    def api_structs(self) -> dict[str, list[tuple[str, str, int]]]:
        """``{"k8s.io.api.apps.v1.DeploymentSpec": [(go name, tag, go kind), ...]}``.

        Struct types (abi.StructType: a 48-byte abi.Type whose kind is 25, then the package
        path and the fields slice) are found by scanning the read-only segment; their name and
        package come from the type's name offset and its uncommon part, which follows it.
        """
        vaddr, offset, size = self.segments[1]
        words = array.array("Q")
        words.frombytes(self.data[offset:offset + size - size % 8])
        low, high = vaddr, vaddr + size
        found: dict[str, list[tuple[str, str, int]]] = {}
        for i in range(len(words) - 11):
            header = words[i + 2]
            if (header >> 56) & 0x1F != _GO_KIND_STRUCT or not (header >> 32) & 1:  # struct, uncommon
                continue
            pkg, fields_ptr, count, cap = words[i + 6], words[i + 7], words[i + 8], words[i + 9]
            if not (low <= fields_ptr < high and 0 < count < 400 and count == cap and (pkg == 0 or low <= pkg < high)):
                continue
            type_va = vaddr + i * 8
            try:
                name_off = struct.unpack_from("<i", self.data, self.offset(type_va) + 40)[0]
                pkg_off = struct.unpack_from("<i", self.data, self.offset(type_va) + 80)[0]
                _, type_name, _ = self.name(vaddr + name_off)
                _, pkg_path, _ = self.name(vaddr + pkg_off)
                if not pkg_path.startswith("k8s.io/"):
                    continue
                fields = []
                for j in range(count):
                    name_va, type_ptr, _off = struct.unpack_from("<QQQ", self.data, self.offset(fields_ptr + 24 * j))
                    _flags, go_name, tag = self.name(name_va)
                    fields.append((go_name, tag, self.data[self.offset(type_ptr) + 23] & 0x1F))
            except (ValueError, IndexError, wire.WireError):
                continue
            short = type_name.lstrip("*").rsplit(".", 1)[-1]
            found[pkg_path.replace("/", ".") + "." + short] = fields
        return found


_TAG = re.compile(r'(\w+):"([^"]*)"')


def go_field_info(fields: list[tuple[str, str, int]]) -> dict[int, tuple[str, str]]:
    """protobuf field number -> (json name, flags) from a Go struct's tags and kinds."""
    info: dict[int, tuple[str, str]] = {}
    for go_name, tag, go_kind in fields:
        tags = dict(_TAG.findall(tag))
        proto = tags.get("protobuf", "").split(",")
        if len(proto) < 2 or not proto[1].isdigit():
            continue
        json_parts = tags.get("json", "").split(",")
        json_name = json_parts[0] or go_name
        flags = ""
        if go_kind == _GO_KIND_PTR:
            flags += "p"
        if "omitempty" not in json_parts[1:]:
            flags += "a"
        if "inline" in json_parts[1:]:
            flags = flags.replace("a", "") + "i"
        info[int(proto[1])] = (json_name, flags)
    return info


# -- 3. closure and output --------------------------------------------------------------------


def _kind(field: dict, messages: dict[str, dict]) -> str:
    if field.get("type") in (11, None) and field.get("type_name"):
        target = messages.get(field["type_name"])
        if target is not None and target["map_entry"]:
            key, value = sorted(target["fields"], key=lambda f: f["number"])
            return f"map<{_kind(key, messages)},{_kind(value, messages)}>"
        return field["type_name"]
    return _TYPES[field["type"]]


def build(binary: bytes, roots: list[str]) -> dict:
    messages = read_descriptors(binary)
    structs = GoBinary(binary).api_structs()
    out: dict[str, list] = {}
    pending = list(roots)
    missing_go: list[str] = []
    while pending:
        name = pending.pop()
        if name in out or name not in messages:
            if name not in messages:
                raise SystemExit(f"message {name} is not in the binary's descriptors")
            continue
        go_fields = structs.get(name)
        if go_fields is None and name not in SPECIAL_MESSAGES:
            missing_go.append(name)
        info = go_field_info(go_fields or [])
        rows = []
        for field in sorted(messages[name]["fields"], key=lambda f: f["number"]):
            kind = _kind(field, messages)
            json_name, flags = info.get(field["number"], (field["name"], ""))
            if field["label"] == 3 and not kind.startswith("map<"):
                flags = "r" + flags
            rows.append([field["number"], json_name, kind, flags])
            for ref in re.findall(r"[\w.]+\.[A-Z]\w*", kind):
                if ref in messages and ref not in out:
                    pending.append(ref)
        out[name] = rows
    if missing_go:
        print("no Go struct found for:", ", ".join(sorted(missing_go)), file=sys.stderr)
    return {"messages": dict(sorted(out.items()))}


def roots() -> list[str]:
    from pybernetes.api.registry import builtin_registry

    kinds = set(_EXTRA_ROOTS)
    for res in builtin_registry().all():
        kinds.add((res.api_version, res.kind))
        for sub in res.subresources:
            kinds.add((f"{sub.group}/{sub.version}" if sub.group else sub.version, sub.kind))
    names = {message_for(api_version, kind) for api_version, kind in kinds}
    return sorted(n for n in names if n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=DEFAULT_BINARY, help="a Kubernetes Go binary (kubectl)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    args = parser.parse_args()
    binary = Path(args.binary).read_bytes()
    result = build(binary, roots())
    result = {"source": f"generated by tools/gen_protobuf_descriptors.py from {Path(args.binary).name}",
              **result}
    text = json.dumps(result, separators=(",", ":"))
    # one message per line keeps diffs readable
    text = text.replace('],"k8s.io.', '],\n"k8s.io.')
    Path(args.output).write_text(text + "\n")
    print(f"wrote {len(result['messages'])} messages to {args.output}")


if __name__ == "__main__":
    main()
