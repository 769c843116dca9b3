"""Atomic writes of files and folders: a reader (or a resumed run) sees the old one or the new one, never half."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _temporary_beside(path: Path) -> Path:
    # A name of its own per writer: two threads saving the same file (parallel graph branches save the clock)
    # must not rename each other's half-written temporary away.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(name, 0o644)  # mkstemp's files are private; what is published here is not
    return Path(name)


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    tmp = _temporary_beside(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def copy_atomic(src: Path, dest: Path) -> None:
    dest = Path(dest)
    tmp = _temporary_beside(dest)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def folder_atomic(dest: Path) -> Iterator[Path]:
    """Yields a new empty folder beside ``dest`` to fill; when the block ends without an exception it replaces
    ``dest`` (an old ``dest`` is moved aside, then deleted), otherwise it is deleted and ``dest`` left as it was."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp's folders are private; what is published here is not
        old = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}-old-", dir=dest.parent))
            os.replace(dest, old / dest.name)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
