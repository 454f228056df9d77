"""Atomic writes: every file and folder the package writes appears whole or not at all.

A file is written under a temporary name in its own folder and renamed onto its final name (`os.replace`,
atomic on POSIX and Windows); a folder is filled under a temporary name beside its final place and swapped in.
A reader, a second writer of the same path, or a `kill -9` half-way therefore sees the old file or the new
one, never a mix. (This guards against interrupted and concurrent processes; a power cut may still lose data
that the operating system had not flushed.)

The final paths written by this process are remembered, so that a command stopped by Ctrl-C or SIGTERM can
say what it kept (`kept()`).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_written: list[Path] = []
# a test hook: with this set to a file name, each atomic text write stops half-way, says `pausing mid-write
# <temporary file>` on stderr and goes on once that file exists (at most 2 minutes later), so that a test can
# kill a writer there, or make two writers overlap, deterministically
PAUSE_ENV = "GPT2ATLAS_TEST_PAUSE_MID_WRITE"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed onto `path` when the block ends without error, removed
    otherwise. For writers that take a file name (safetensors, torch.save, plotly)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the suffix keeps the extension, from which some writers (kaleido) take the format
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; the final file gets the usual permissions
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _written.append(path)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically."""
    data = text.encode(encoding)
    with replacing(path) as tmp, open(tmp, "wb") as out:
        go_on = os.environ.get(PAUSE_ENV)
        if go_on:
            out.write(data[: len(data) // 2])
            out.flush()
            data = data[len(data) // 2 :]
            _pause(tmp, Path(go_on))
        out.write(data)
    return Path(path)


def _pause(tmp: Path, go_on: Path) -> None:
    print(f"pausing mid-write {tmp}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + 120
    while not go_on.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextmanager
def replacing_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside `path` to fill; swapped in for `path` (whose old contents are removed) when the
    block ends without error, removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(staging, 0o777 & ~_umask())
        yield staging
        _swap_in(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # after a swap: the old folder
    _written.append(path)


def _swap_in(staging: Path, path: Path) -> None:
    """Put `staging` at `path`; afterwards `staging` names the old folder (if any) or nothing."""
    try:
        os.rename(staging, path)  # atomic where `path` is missing or an empty folder
        return
    except OSError:
        if not path.is_dir():
            raise
    if _exchange(staging, path):  # Linux: one atomic swap, `path` exists throughout
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    os.rename(path, aside / "old")  # elsewhere: a short moment without `path`, never a mixed one
    os.rename(staging, path)
    shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with renameat2(RENAME_EXCHANGE); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)  # glibc 2.28 and later
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
    return bool(done)


def kept() -> list[Path]:
    """The files and folders this process has written so far that are still there (outermost ones only)."""
    present = [p for p in dict.fromkeys(_written) if p.exists()]
    return [p for p in present if not any(q in p.parents for q in present)]


def swap_folder(staging: str | os.PathLike, path: str | os.PathLike) -> None:
    """Put the filled folder `staging` at `path` in one step (the old `path`, if any, is removed afterwards).

    For a folder filled in more than one process run (a resumable job), where `replacing_folder` cannot hold it."""
    staging, path = Path(staging), Path(path)
    _swap_in(staging, path)
    shutil.rmtree(staging, ignore_errors=True)  # the old folder, if there was one
    _written.append(path)
