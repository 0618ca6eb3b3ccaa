"""Reading CRI log files (kubelet/logs.py): contents, partial lines, timestamps, since,
tailLines, limitBytes, rotated and gzip'd files, follow across a rotation; the rotation
manager with a fake runtime; the kubelet server's query parsing."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import time
from pathlib import Path

import pytest

from pybernetes.kubelet import logs
from pybernetes.kubelet.logs import (
    ContainerLogManager,
    CRIDecoder,
    LogOptions,
    LogStream,
    LogTarget,
    format_time,
    parse_time_ns,
    read_logs,
    tail_start,
)
from pybernetes.kubelet.server import OptionsError, log_options

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def stamp(second: int, fraction: str = "000000001") -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(T0 + second)) + f".{fraction}Z"


def rec(second: int, content: str, stream: str = "stdout", tag: str = "F") -> bytes:
    return f"{stamp(second)} {stream} {tag} {content}\n".encode()


def write(path: Path, *records: bytes) -> Path:
    path.write_bytes(b"".join(records))
    return path


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def decode(opts: LogOptions, *records: bytes) -> bytes:
    decoder = CRIDecoder(opts)
    return decoder.feed(b"".join(records)) + decoder.end_of_file() + decoder.finish()


# -- times --------------------------------------------------------------------------------------


def test_times_parse_to_nanoseconds_in_any_zone():
    assert parse_time_ns("2023-11-14T22:13:20Z") == T0 * 10**9
    assert parse_time_ns("2023-11-14T22:13:20.5Z") == T0 * 10**9 + 500_000_000
    assert parse_time_ns(b"2023-11-14T22:13:20.123456789Z") == T0 * 10**9 + 123_456_789
    assert parse_time_ns("2023-11-15T00:13:20+02:00") == T0 * 10**9
    assert parse_time_ns("2023-11-14T21:13:20-01:00") == T0 * 10**9
    for bad in ("", "yesterday", "2023-11-14 22:13:20Z", "2023-13-14T22:13:20Z", "2023-11-14T22:13:20"):
        assert parse_time_ns(bad) is None, bad


def test_times_print_as_rfc3339_nano():
    assert format_time(b"2023-11-14T22:13:20.123000000Z") == b"2023-11-14T22:13:20.123Z"
    assert format_time(b"2023-11-14T22:13:20.000000Z") == b"2023-11-14T22:13:20Z"
    assert format_time(b"2023-11-14T22:13:20.5+00:00") == b"2023-11-14T22:13:20.5Z"
    assert format_time(b"2023-11-14T22:13:20.25-05:30") == b"2023-11-14T22:13:20.25-05:30"


# -- decoding -----------------------------------------------------------------------------------


def test_contents_only_both_streams_in_order():
    out = decode(LogOptions(), rec(0, "one"), rec(1, "oops", "stderr"), rec(2, "two"), rec(3, ""))
    assert out == b"one\noops\ntwo\n\n"


def test_partial_records_are_joined_per_stream():
    out = decode(LogOptions(), rec(0, "hel", tag="P"), rec(0, "err", "stderr"), rec(1, "lo", tag="P"),
                 rec(2, " world"), rec(3, "x"))
    assert out == b"err\nhello world\nx\n"


def test_content_keeps_its_spaces_and_tags_after_the_flag_are_ignored():
    out = decode(LogOptions(), rec(0, "  a  b  "), f"{stamp(1)} stdout F:x y\n".encode())
    assert out == b"  a  b  \ny\n"


def test_timestamps_prefix_the_first_piece_time():
    out = decode(LogOptions(timestamps=True), rec(0, "ab", tag="P"), rec(5, "cd"))
    assert out == f"{stamp(0, '000000001')} abcd\n".encode()


def test_since_keeps_lines_at_or_after_it():
    since = (T0 + 2) * 10**9 + 1
    out = decode(LogOptions(since_ns=since), rec(0, "old"), rec(1, "older"), rec(2, "new"), rec(3, "newer"))
    assert out == b"new\nnewer\n"


def test_limit_bytes_cuts_the_output_exactly():
    decoder = CRIDecoder(LogOptions(limit_bytes=6))
    assert decoder.feed(rec(0, "abcd") + rec(1, "efgh")) == b"abcd\ne"
    assert decoder.done
    assert decoder.feed(rec(2, "more")) == b""


def test_malformed_records_are_skipped_and_pieces_may_arrive_in_any_split():
    data = b"garbage\n" + b"notatime stdout F x\n" + rec(0, "ok") + f"{stamp(1)} stdin F no\n".encode()
    decoder = CRIDecoder(LogOptions())
    out = b"".join(decoder.feed(data[i:i + 3]) for i in range(0, len(data), 3))
    assert out == b"ok\n"


def test_unfinished_line_is_written_as_it_is_at_the_end():
    assert decode(LogOptions(), rec(0, "done"), rec(1, "half", tag="P")) == b"done\nhalf"
    # A last record without its newline counts once the file is finished.
    assert decode(LogOptions(), rec(0, "a"), rec(1, "b")[:-1]) == b"a\nb\n"


# -- tail ---------------------------------------------------------------------------------------


def tail_of(data: bytes, n: int) -> tuple[bytes, int]:
    offset, found = tail_start(io.BytesIO(data), len(data), n)
    return data[offset:], found


@pytest.mark.parametrize("block", [1, 7, 64 * 1024])
def test_tail_counts_whole_lines_from_the_end(monkeypatch, block):
    monkeypatch.setattr(logs, "TAIL_BLOCK", block)
    data = rec(0, "a") + rec(1, "b1", tag="P") + rec(1, "b2", tag="P") + rec(1, "b3") + rec(2, "c")
    assert tail_of(data, 1) == (rec(2, "c"), 1)
    assert tail_of(data, 2) == (data[len(rec(0, "a")):], 2)
    assert tail_of(data, 3) == (data, 3)
    assert tail_of(data, 10) == (data, 3)
    assert tail_of(data, 0) == (b"", 0)
    # A line still being written is the last line; an unterminated record is left to the reader.
    growing = data + rec(3, "d1", tag="P")
    assert tail_of(growing, 1) == (rec(3, "d1", tag="P"), 1)
    assert tail_of(data + b"2023-11-14T22:13:2", 1) == (rec(2, "c") + b"2023-11-14T22:13:2", 1)
    assert tail_of(b"", 3) == (b"", 0)


async def test_tail_spans_rotated_and_gzipped_files(tmp_path):
    old = tmp_path / "0.log.20231114-221300.gz"
    with gzip.open(old, "wb") as f:
        f.write(rec(0, "g1") + rec(1, "g2"))
    middle = write(tmp_path / "0.log.20231114-221310", rec(2, "m1"), rec(3, "m2"))
    current = write(tmp_path / "0.log", rec(4, "c1"))
    target = LogTarget(current, [old, middle])
    assert await read_logs(target, LogOptions()) == b"g1\ng2\nm1\nm2\nc1\n"
    assert await read_logs(target, LogOptions(tail_lines=2)) == b"m2\nc1\n"
    assert await read_logs(target, LogOptions(tail_lines=4)) == b"g2\nm1\nm2\nc1\n"
    assert await read_logs(target, LogOptions(tail_lines=0)) == b""
    assert await read_logs(target, LogOptions(tail_lines=3, timestamps=True, limit_bytes=40)) == (
        f"{stamp(2)} m1\n{stamp(3)} m2\n".encode()[:40])


async def test_a_rotated_file_compressed_since_it_was_listed_is_read_as_gz(tmp_path):
    rotated = tmp_path / "0.log.20231114-221300"
    with gzip.open(str(rotated) + ".gz", "wb") as f:
        f.write(rec(0, "zipped"))
    current = write(tmp_path / "0.log", rec(1, "now"))
    assert await read_logs(LogTarget(current, [rotated]), LogOptions()) == b"zipped\nnow\n"


async def test_rotated_files_removed_since_they_were_listed_are_skipped(tmp_path):
    current = write(tmp_path / "0.log", rec(1, "now"))
    gone = [tmp_path / "0.log.20231114-221300", tmp_path / "0.log.20231114-221200.gz"]
    assert await read_logs(LogTarget(current, gone), LogOptions()) == b"now\n"
    assert await read_logs(LogTarget(current, gone), LogOptions(tail_lines=5)) == b"now\n"


async def test_missing_current_file_is_a_400(tmp_path):
    stream = LogStream(LogTarget(tmp_path / "nope.log"), LogOptions())
    with pytest.raises(logs.KubeletLookupError) as err:
        await stream.open()
    assert err.value.code == 400 and "failed to open log file" in err.value.message


# -- follow -------------------------------------------------------------------------------------


async def next_chunk(chunks) -> bytes:
    async with asyncio.timeout(5):
        return await anext(chunks)


async def test_follow_sees_new_lines_and_ends_when_the_container_stops(tmp_path):
    path = write(tmp_path / "0.log", rec(0, "first"))
    running = True
    stream = LogStream(LogTarget(path, [], lambda: running), LogOptions(follow=True), poll_interval=0.01)
    await stream.open()
    chunks = stream.chunks()
    assert await next_chunk(chunks) == b"first\n"
    record = rec(1, "second")
    append(path, record[:20])  # a record arriving in two writes is read once whole
    pending = asyncio.ensure_future(next_chunk(chunks))
    await asyncio.sleep(0)  # lets the reader see the first half
    append(path, record[20:])
    assert await pending == b"second\n"
    append(path, rec(2, "last"))
    running = False
    rest = [chunk async for chunk in chunks]
    assert b"".join(rest) == b"last\n"


async def test_follow_continues_across_a_rotation(tmp_path):
    path = write(tmp_path / "0.log", rec(0, "before"))
    running = True
    stream = LogStream(LogTarget(path, [], lambda: running), LogOptions(follow=True), poll_interval=0.01)
    await stream.open()
    chunks = stream.chunks()
    assert await next_chunk(chunks) == b"before\n"
    rotated = path.with_name("0.log.20231114-221300")
    os.rename(path, rotated)
    append(rotated, rec(1, "late"))  # the writer still has the old file until it reopens
    write(path, rec(2, "after"))
    got = b""
    deadline = time.monotonic() + 5
    while got != b"late\nafter\n" and time.monotonic() < deadline:
        got += await next_chunk(chunks)
    assert got == b"late\nafter\n"
    running = False
    assert [chunk async for chunk in chunks] == []


async def test_follow_stops_when_the_reader_is_gone(tmp_path):
    path = write(tmp_path / "0.log", rec(0, "x"))
    gone = False
    stream = LogStream(LogTarget(path, [], lambda: True), LogOptions(follow=True), poll_interval=0.01,
                       closed=lambda: gone)
    await stream.open()
    chunks = stream.chunks()
    assert await next_chunk(chunks) == b"x\n"
    gone = True
    assert [chunk async for chunk in chunks] == []
    assert stream._files == []  # every file closed


async def test_follow_with_tail_zero_shows_only_new_lines(tmp_path):
    path = write(tmp_path / "0.log", rec(0, "old"), rec(1, "older"))
    running = True
    stream = LogStream(LogTarget(path, [], lambda: running), LogOptions(follow=True, tail_lines=0),
                       poll_interval=0.01)
    await stream.open()
    chunks = stream.chunks()
    append(path, rec(2, "new"))
    assert await next_chunk(chunks) == b"new\n"
    running = False
    assert [chunk async for chunk in chunks] == []


# -- rotation -----------------------------------------------------------------------------------


class FakeRuntime:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.reopened: list[str] = []
        self.fail = False

    async def reopen_container_log(self, container_id: str) -> None:
        if self.fail:
            raise RuntimeError("runtime refused")
        self.reopened.append(container_id)
        self.path.write_bytes(b"")


async def test_rotation_renames_reopens_compresses_and_keeps_max_files(tmp_path):
    path = tmp_path / "app" / "0.log"
    path.parent.mkdir()
    runtime = FakeRuntime(path)
    now = [float(T0)]
    manager = ContainerLogManager(runtime, max_size=100, max_files=3, clock=lambda: now[0])
    write(path, rec(0, "small"))
    await manager.rotate_if_needed("c1", path)
    assert runtime.reopened == [] and manager.rotated_files(path) == []
    contents = []
    for i in range(4):
        content = rec(i, "x" * 100)
        contents.append(content)
        write(path, content)
        now[0] = T0 + i
        await manager.rotate_if_needed("c1", path)
    assert runtime.reopened == ["c1"] * 4
    assert path.read_bytes() == b""
    rotated = manager.rotated_files(path)
    assert [p.name for p in rotated] == ["0.log.20231114-221322.gz", "0.log.20231114-221323"]
    assert gzip.decompress(rotated[0].read_bytes()) == contents[2]
    assert rotated[1].read_bytes() == contents[3]
    assert sorted(p.name for p in path.parent.iterdir()) == ["0.log", *(p.name for p in rotated)]
    write(path, rec(9, "now"))
    assert await read_logs(LogTarget(path, rotated), LogOptions()) == b"x" * 100 + b"\n" + b"x" * 100 + b"\nnow\n"


async def test_rotation_waits_a_second_and_puts_the_file_back_if_the_runtime_fails(tmp_path):
    path = write(tmp_path / "0.log", rec(0, "y" * 200))
    runtime = FakeRuntime(path)
    manager = ContainerLogManager(runtime, max_size=100, clock=lambda: float(T0))
    runtime.fail = True
    with pytest.raises(RuntimeError):
        await manager.rotate_if_needed("c1", path)
    assert path.read_bytes() == rec(0, "y" * 200) and manager.rotated_files(path) == []
    runtime.fail = False
    await manager.rotate_if_needed("c1", path)
    write(path, rec(1, "z" * 200))
    await manager.rotate_if_needed("c1", path)  # same second: the next call rotates
    assert runtime.reopened == ["c1"] and len(manager.rotated_files(path)) == 1
    await manager.rotate_if_needed("c1", tmp_path / "missing.log")  # nothing to do


def test_rotated_files_ignore_other_names_and_bad_limits(tmp_path):
    for name in ("0.log", "0.log.20240101-000000.gz", "0.log.20230101-000000", "0.log.tmp",
                 "0.log.20240101-000000.gz.tmp", "10.log.20220101-000000", "0.log.x"):
        (tmp_path / name).write_bytes(b"")
    manager = ContainerLogManager(None)
    assert [p.name for p in manager.rotated_files(tmp_path / "0.log")] == [
        "0.log.20230101-000000", "0.log.20240101-000000.gz"]
    with pytest.raises(ValueError):
        ContainerLogManager(None, max_files=1)
    with pytest.raises(ValueError):
        ContainerLogManager(None, max_size=0)


# -- the kubelet server's query -------------------------------------------------------------------


def test_kubelet_query_parsing():
    opts, previous = log_options({"follow": "true", "previous": "1", "timestamps": "false",
                                  "tailLines": "5", "limitBytes": "10", "sinceSeconds": "2"},
                                 now_ns=100 * 10**9)
    assert (opts.follow, previous, opts.timestamps, opts.tail_lines, opts.limit_bytes) == (
        True, True, False, 5, 10)
    assert opts.since_ns == 98 * 10**9
    assert log_options({"tail": "all", "tailLines": "3"})[0].tail_lines is None
    assert log_options({"tail": "7"})[0].tail_lines == 7
    assert log_options({"sinceTime": "2023-11-14T22:13:20Z"})[0].since_ns == T0 * 10**9
    for query, code in (({"tailLines": "x"}, 400), ({"tailLines": "-1"}, 422), ({"limitBytes": "0"}, 422),
                        ({"sinceSeconds": "0"}, 422), ({"sinceTime": "now"}, 400),
                        ({"sinceSeconds": "1", "sinceTime": "2023-11-14T22:13:20Z"}, 422)):
        with pytest.raises(OptionsError) as err:
            log_options(query)
        assert err.value.code == code, query
