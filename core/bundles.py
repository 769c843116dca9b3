"""Folders as bytes, for executors whose scripts run on other machines: a run's input folder (with the asset folders
its links reach, and nothing beyond them) goes out, the run's folder comes back."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

from core.folds import fold_dirs
from core.sandbox import linked_assets

LINKS = "links.json"  # in an input bundle: {link path in the folder: the asset member it points at}


def pack_folder(folder: Path, skip: frozenset[str] = frozenset()) -> bytes:
    """An uncompressed tar of ``folder``'s files (members named relative to it), leaving out the entries whose
    relative path is in ``skip``, and links: what they name means nothing on another machine, and following them
    could carry files from outside the folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for entry in sorted(Path(folder).iterdir()):
            tar.add(entry, arcname=entry.name, filter=lambda m: None if m.name in skip or _link(m) else m)
    return buffer.getvalue()


def unpack_folder(data: bytes, dest: Path) -> None:
    """Write a ``pack_folder`` bundle into ``dest``; members that would land outside it are refused."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(dest, filter="data")


def pack_inputs(folder: Path) -> bytes:
    """A run's input folder as one bundle: its files under ``input/``, and what the links at the top of the folder
    and of its fold folders point at (the task's asset folders, mounted by the sandbox) once each under
    ``assets/<n>``. Other links are left out, never followed."""
    folder = Path(folder)
    tops = [folder, *fold_dirs(folder)]
    targets = {text: n for n, text in enumerate(sorted(linked_assets(tops)))}
    links = {str((top / entry.name).relative_to(folder)): targets[os.readlink(entry.path)]
             for top in tops for entry in os.scandir(top) if entry.is_symlink() and os.readlink(entry.path) in targets}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname="input", filter=lambda m: None if _link(m) else m)
        for text, n in targets.items():
            tar.add(os.path.realpath(text), arcname=f"assets/{n}")
        manifest = json.dumps(links).encode()
        info = tarfile.TarInfo(LINKS)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    return buffer.getvalue()


def unpack_inputs(data: bytes, dest: Path) -> Path:
    """Write a ``pack_inputs`` bundle into ``dest``, its links pointing at the assets' copies there (absolute, as
    the sandbox expects); returns the input folder."""
    unpack_folder(data, dest)
    for link, n in json.loads((dest / LINKS).read_text()).items():
        (dest / "input" / link).symlink_to(dest / "assets" / str(n))
    return dest / "input"


def _link(member: tarfile.TarInfo) -> bool:
    return member.issym()
