"""Container logs: reading CRI-format log files as ``kubectl logs`` shows them, and rotating them.

A runtime writes each line of a container's output as one CRI record,
``<RFC 3339 time> <stdout|stderr> <F|P> <content>\\n``; ``P`` marks a piece of a longer line
that the next record of the same stream continues.  What reads them here:

- ``CRIDecoder`` (pure): records in, what the kubelet answers out — contents only, the pieces
  of a partial line joined, ``timestamps`` prefixing the line's first time (RFC 3339 with
  nanoseconds, trailing zeros trimmed, as upstream prints it), ``since`` dropping older
  lines, ``limit_bytes`` cutting the output.  Malformed records are skipped.
- ``tail_start`` (pure over a binary file): where the last N whole lines of a file start,
  scanning back from its end in blocks, so a tail of a big file reads only its end.
- ``LogStream``: a container's files (rotated ones oldest first, gzip'd or not, then the
  current one) read through a ``CRIDecoder``; with ``follow`` it then polls the current file
  every ~100 ms (no inotify), follows it across rotations (the open file is drained, then
  the new file at the same path is read from its start), and ends once the container is no
  longer running and its file is drained, or when the reader goes away.
- ``ContainerLogManager``: size-based rotation as upstream's kubelet does it (10 MiB, 5 files
  by default): the file is renamed ``<path>.<UTC YYYYmmdd-HHMMSS>``, the runtime reopens its
  log, rotated files beyond ``max_files - 1`` are deleted, and all but the newest rotated file
  are gzip'd (``.gz``).

``LogTarget`` and ``Resolver`` are what the kubelet's HTTP server (``server.py``) asks the pod
workers for; a resolver raises ``KubeletLookupError`` (a code and a message) or a plain
``LookupError`` (404).
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import gzip
import io
import logging
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.1  # seconds between looks at a followed file
READ_SIZE = 256 * 1024
TAIL_BLOCK = 64 * 1024
DEFAULT_MAX_SIZE = 10 << 20  # upstream containerLogMaxSize 10Mi
DEFAULT_MAX_FILES = 5  # upstream containerLogMaxFiles
ROTATED_STAMP = "%Y%m%d-%H%M%S"
_ROTATED_RE = re.compile(r"\.(\d{8}-\d{6})(\.gz)?$")


class KubeletLookupError(LookupError):
    """What the kubelet answers instead of logs: an HTTP code and a message (404 for an unknown
    pod or container, 400 for 'container "x" in pod "y" is waiting to start: ...')."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class LogTarget:
    """One container instance's log files."""

    path: Path  # the current file
    rotated: list[Path] = field(default_factory=list)  # older files of the same instance, oldest first
    running: Callable[[], bool] = lambda: False


Resolver = Callable[[str, str, str, bool], Awaitable[LogTarget]]  # (namespace, pod, container, previous)


@dataclass(slots=True)
class LogOptions:
    follow: bool = False
    timestamps: bool = False
    tail_lines: int | None = None  # None: every line
    since_ns: int | None = None  # lines written at or after this time (ns since the epoch)
    limit_bytes: int | None = None


# -- timestamps ---------------------------------------------------------------------------------

_TIME_RE = re.compile(
    rb"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d\d):(\d\d))")


def parse_time_ns(text: bytes | str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 time (any fraction), None if malformed."""
    raw = text.encode() if isinstance(text, str) else text
    match = _TIME_RE.fullmatch(raw)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        datetime(year, month, day, hour, minute, min(second, 59))  # range check
    except ValueError:
        return None
    if match.group(8):
        offset = int(match.group(9)) * 3600 + int(match.group(10)) * 60
        seconds -= offset if match.group(8) == b"+" else -offset
    fraction = match.group(7) or b""
    return seconds * 1_000_000_000 + int(fraction.ljust(9, b"0") or b"0")


def format_time(text: bytes) -> bytes:
    """A record's time as upstream prints it: RFC 3339 with the fraction's trailing zeros
    trimmed, ``Z`` for UTC and the writer's offset otherwise."""
    match = _TIME_RE.fullmatch(text)
    if match is None:
        return text
    out = text[:19]
    fraction = (match.group(7) or b"").rstrip(b"0")
    if fraction:
        out += b"." + fraction
    sign = match.group(8)
    if sign and (match.group(9) != b"00" or match.group(10) != b"00"):
        return out + sign + match.group(9) + b":" + match.group(10)
    return out + b"Z"


# -- decoding -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    time: bytes
    time_ns: int
    parts: list[bytes]


class CRIDecoder:
    """CRI records in, the kubelet's answer out (see the module docstring).  ``feed`` takes
    raw bytes in any pieces; a record is decoded once its newline has arrived."""

    def __init__(self, opts: LogOptions) -> None:
        self.opts = opts
        self.remaining = opts.limit_bytes  # None: unlimited
        self._rest = b""
        self._pending: dict[bytes, _Pending] = {}

    @property
    def done(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def feed(self, data: bytes) -> bytes:
        if self._rest:
            data = self._rest + data
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        out: list[bytes] = []
        if cut:
            for line in data[:cut - 1].split(b"\n"):
                self._record(line, out)
        return self._limit(out)

    def end_of_file(self) -> bytes:
        """The file is finished (read to its end and not written any more): its last record,
        if it lacks a newline, counts as a record."""
        rest, self._rest = self._rest, b""
        out: list[bytes] = []
        if rest:
            self._record(rest, out)
        return self._limit(out)

    def finish(self) -> bytes:
        """No more records: lines still waiting for their end are written as they are."""
        out: list[bytes] = []
        for pending in sorted(self._pending.values(), key=lambda p: p.time_ns):
            self._line(pending, out, b"")
        self._pending.clear()
        return self._limit(out)

    def _record(self, line: bytes, out: list[bytes]) -> None:
        fields = line.split(b" ", 3)
        if len(fields) < 3 or fields[1] not in (b"stdout", b"stderr"):
            log.debug("skipping a malformed log record %r", line[:80])
            return
        stamp, stream, tags = fields[0], fields[1], fields[2]
        content = fields[3] if len(fields) == 4 else b""
        pending = self._pending.get(stream)
        if pending is None:
            time_ns = parse_time_ns(stamp)
            if time_ns is None:
                log.debug("skipping a log record with a malformed time %r", line[:80])
                return
            pending = _Pending(stamp, time_ns, [content])
        else:
            pending.parts.append(content)
        if tags.split(b":", 1)[0] == b"P":
            self._pending[stream] = pending
            return
        self._pending.pop(stream, None)
        self._line(pending, out, b"\n")

    def _line(self, pending: _Pending, out: list[bytes], end: bytes) -> None:
        since = self.opts.since_ns
        if since is not None and pending.time_ns < since:
            return
        if self.opts.timestamps:
            out.append(format_time(pending.time) + b" ")
        out.extend(pending.parts)
        if end:
            out.append(end)

    def _limit(self, out: list[bytes]) -> bytes:
        data = b"".join(out)
        if self.remaining is None:
            return data
        data = data[:max(self.remaining, 0)]
        self.remaining -= len(data)
        return data


# -- tail ---------------------------------------------------------------------------------------


def _is_partial(record: bytes) -> bool:
    fields = record.split(b" ", 3)
    return len(fields) >= 3 and fields[2].split(b":", 1)[0] == b"P"


def tail_start(f: IO[bytes], size: int, lines: int) -> tuple[int, int]:
    """(offset, found): where the last ``lines`` whole lines of the file start, reading back
    from ``size`` in blocks; ``found`` < ``lines`` when the file holds fewer (offset 0).  A
    trailing record without its newline is left to the reader; a trailing partial line
    counts as a line."""
    if lines <= 0:
        return size, 0
    buf = b""
    buf_start = size
    rec_end = -1  # end (after the newline) of the record to look at next
    found = 0
    first = True
    while True:
        if rec_end < 0:
            newline = buf.rfind(b"\n")
        else:
            newline = buf.rfind(b"\n", 0, max(rec_end - buf_start - 1, 0))
        if newline < 0 and buf_start > 0:
            step = min(TAIL_BLOCK, buf_start)
            buf_start -= step
            f.seek(buf_start)
            buf = f.read(step) + buf
            continue
        if rec_end < 0:
            if newline < 0:  # not one complete record
                return 0, 0
            rec_end = buf_start + newline + 1
            buf = buf[:newline + 1]
            continue
        rec_start = buf_start + newline + 1  # 0 when newline is -1 (the start of the file)
        record = buf[rec_start - buf_start:rec_end - buf_start - 1]
        if _is_partial(record):
            if first:
                found = 1  # a line still being written counts as the last line
        else:
            if found == lines:
                return rec_end, found
            found += 1
        first = False
        if rec_start == 0:
            return 0, found
        rec_end = rec_start
        buf = buf[:rec_start - buf_start]


# -- reading a container's files ------------------------------------------------------------------


def _open_log(path: Path, *, seekable: bool = False) -> IO[bytes]:
    """A log file; a ``.gz`` one decompressed as it is read (or at once when ``seekable``, for
    a tail).  A rotated file may have been gzip'd since it was listed: then its ``.gz`` is read."""
    if path.suffix == ".gz":
        return _open_gz(path, seekable)
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by LogStream
    except FileNotFoundError:
        gz = path.with_name(path.name + ".gz")
        if gz.exists():
            return _open_gz(gz, seekable)
        raise


def _open_gz(path: Path, seekable: bool) -> IO[bytes]:
    if not seekable:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    with gzip.open(path, "rb") as f:
        return io.BytesIO(f.read())


def _size(f: IO[bytes]) -> int:
    return f.seek(0, os.SEEK_END)


_Source = tuple[Path | IO[bytes], int]  # a file to open, or an open one; the offset to start at


class LogStream:
    """One answer to GET /containerLogs: ``open()`` (raises ``KubeletLookupError(400, ...)``
    when the files cannot be read) then ``async for chunk in stream.chunks()``."""

    def __init__(self, target: LogTarget, opts: LogOptions, *, poll_interval: float = POLL_INTERVAL,
                 closed: Callable[[], bool] = lambda: False) -> None:
        self.target = target
        self.opts = opts
        self.poll_interval = poll_interval
        self.closed = closed
        self.decoder = CRIDecoder(opts)
        self._sources: list[_Source] = []  # oldest first, the current file last
        self._files: list[IO[bytes]] = []  # every file opened, closed by close()

    async def open(self) -> None:
        try:
            await asyncio.to_thread(self._plan)
        except OSError as err:
            self.close()
            raise KubeletLookupError(
                400, f'failed to open log file "{self.target.path}": {err.strerror or err}') from None

    def _opened(self, f: IO[bytes]) -> IO[bytes]:
        self._files.append(f)
        return f

    def _plan(self) -> None:
        """Open the current file (it must exist); with a tail, find where the last lines start,
        from the newest file back; older files are opened as they are reached."""
        current = self._opened(open(self.target.path, "rb"))  # noqa: SIM115 - closed by close()
        wanted = self.opts.tail_lines
        if wanted is None:
            self._sources = [*((path, 0) for path in self.target.rotated), (current, 0)]
            return
        sources: list[_Source] = []
        for path in [None, *reversed(self.target.rotated)]:
            if path is None:
                f = current
            else:
                try:
                    f = self._opened(_open_log(path, seekable=True))
                except FileNotFoundError:
                    continue  # removed by rotation since it was listed
            offset, found = tail_start(f, _size(f), wanted)
            sources.insert(0, (f, offset))
            wanted -= found
            if wanted <= 0:
                break
        self._sources = sources

    async def _source(self, source: Path | IO[bytes]) -> IO[bytes] | None:
        if not isinstance(source, Path):
            return source
        try:
            return self._opened(await asyncio.to_thread(_open_log, source))
        except FileNotFoundError:
            return None  # removed by rotation since it was listed

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files = []

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async with contextlib.aclosing(self._chunks()) as chunks:
                async for chunk in chunks:
                    if chunk:
                        yield chunk
                    if self.decoder.done or self.closed():
                        return
        finally:
            self.close()

    async def _chunks(self) -> AsyncIterator[bytes]:
        sources = self._sources
        current: IO[bytes] | None = None
        for index, (source, start) in enumerate(sources):
            f = await self._source(source)
            if f is None:
                continue
            if start:
                f.seek(start)
            elif f.seekable():
                f.seek(0)
            current = f
            while True:
                data = await asyncio.to_thread(f.read, READ_SIZE)
                if not data:
                    break
                yield self.decoder.feed(data)
                if self.decoder.done:
                    return
            if not (index == len(sources) - 1 and self.opts.follow):
                yield self.decoder.end_of_file()
        if self.opts.follow and current is not None:
            async for chunk in self._follow(current):
                yield chunk
        yield self.decoder.finish()

    async def _follow(self, f: IO[bytes]) -> AsyncIterator[bytes]:
        """Poll the current file; across a rotation drain the old file, then read the new one."""
        path = self.target.path
        while not self.closed():
            running = self.target.running()
            data = f.read(READ_SIZE)
            if data:
                yield self.decoder.feed(data)
                await asyncio.sleep(0)  # a chatty container does not hold the event loop
                continue
            if _replaced(f, path):
                try:
                    new = await asyncio.to_thread(open, path, "rb")  # closed by close()
                except FileNotFoundError:
                    new = None  # renamed, not reopened yet: the old file may still grow
                if new is not None:
                    self._opened(new)
                    # The writer has moved on: what the old file got last comes first.
                    while data := f.read(READ_SIZE):
                        yield self.decoder.feed(data)
                    yield self.decoder.end_of_file()
                    f.close()
                    f = new
                    continue
            if not running:
                yield self.decoder.end_of_file()
                return
            await asyncio.sleep(self.poll_interval)


def _replaced(f: IO[bytes], path: Path) -> bool:
    """Whether ``path`` no longer names the open file (renamed away, maybe a new file there)."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return True
    opened = os.fstat(f.fileno())
    return (now.st_ino, now.st_dev) != (opened.st_ino, opened.st_dev)


async def read_logs(target: LogTarget, opts: LogOptions, **kwargs: Any) -> bytes:
    """The whole answer at once (not for ``follow``)."""
    stream = LogStream(target, opts, **kwargs)
    await stream.open()
    return b"".join([chunk async for chunk in stream.chunks()])


# -- rotation -----------------------------------------------------------------------------------


class ContainerLogManager:
    """Size-based rotation of containers' log files (upstream's containerLogManager)."""

    def __init__(self, runtime: Any, *, max_size: int = DEFAULT_MAX_SIZE,
                 max_files: int = DEFAULT_MAX_FILES, clock: Callable[[], float] = time.time) -> None:
        if max_size <= 0:
            raise ValueError(f"max_size must be positive, not {max_size}")
        if max_files < 2:
            raise ValueError(f"max_files must be at least 2, not {max_files}")
        self.runtime = runtime
        self.max_size = max_size
        self.max_files = max_files
        self.clock = clock

    async def rotate_if_needed(self, container_id: str, log_path: Path) -> None:
        """Rotate ``log_path`` when it has reached ``max_size``; a rotation within the second
        of the previous one waits for the next call."""
        log_path = Path(log_path)
        try:
            size = log_path.stat().st_size
        except FileNotFoundError:
            return
        if size < self.max_size:
            return
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime(ROTATED_STAMP)
        rotated = log_path.with_name(f"{log_path.name}.{stamp}")
        if rotated.exists() or rotated.with_name(rotated.name + ".gz").exists():
            return
        os.rename(log_path, rotated)
        try:
            await self.runtime.reopen_container_log(container_id)
        except BaseException:
            # Put it back, so that the next round tries again (as upstream does).
            with contextlib.suppress(OSError):
                os.rename(rotated, log_path)
            raise
        await asyncio.to_thread(self._clean_up, log_path)

    def rotated_files(self, log_path: Path) -> list[Path]:
        """The rotated files of ``log_path``, oldest first (``.gz`` or not)."""
        log_path = Path(log_path)
        found: list[tuple[str, Path]] = []
        prefix = log_path.name
        try:
            names = os.listdir(log_path.parent)
        except FileNotFoundError:
            return []
        for name in names:
            if not name.startswith(prefix):
                continue
            match = _ROTATED_RE.fullmatch(name[len(prefix):])
            if match:
                found.append((match.group(1), log_path.parent / name))
        return [path for _, path in sorted(found)]

    def _clean_up(self, log_path: Path) -> None:
        for leftover in log_path.parent.glob(f"{log_path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        files = self.rotated_files(log_path)
        excess = len(files) - (self.max_files - 1)
        for path in files[:max(excess, 0)]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for path in files[max(excess, 0):-1]:
            if path.suffix != ".gz":
                _compress(path)


def _compress(path: Path) -> None:
    """``path`` → ``path.gz`` (written aside, then renamed), the original removed."""
    target = path.with_name(path.name + ".gz")
    temporary = path.with_name(path.name + ".gz.tmp")
    try:
        with open(path, "rb") as src, gzip.open(temporary, "wb") as dst:
            shutil.copyfileobj(src, dst, READ_SIZE)
        os.rename(temporary, target)
        path.unlink()
    except OSError as err:
        log.warning("compressing rotated log %s failed: %s", path, err)
        with contextlib.suppress(OSError):
            temporary.unlink()
