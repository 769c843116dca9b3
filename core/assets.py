"""A task's assets: the folders and archives beside its CSVs (image folders, zipped images). Archives are unpacked
once; every asset is described for the policies and linked into each folder a script reads as ./input/."""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import pandas as pd

from core.errors import TaskError
from core.policy import AssetInfo, ColumnInfo, ImageInfo

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
MODALITIES = ("tabular", "text", "image", "mixed")
EXAMPLES = 3  # file names shown per asset: enough for a policy to see the naming scheme
IMAGE_MATCH = 0.9  # share of a column's sampled values that must name an image for the column to be the images'


def archive_stem(name: str) -> str | None:
    """The folder an archive unpacks into ("train.zip" -> "train"), or None when ``name`` is not an archive's."""
    low = name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def readable_archive(path: Path) -> bool:
    """Whether the archive's index can be read (a zip's directory, a tar's first header): cheap enough to check
    when a task loads, so a broken archive is reported before anything runs."""
    try:
        if path.name.lower().endswith(".zip"):
            return zipfile.is_zipfile(path)
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` into the new folder ``dest``; returns the folder holding its files: ``dest``, or its one
    subfolder when the archive holds a single top folder (train.zip holding train/...). Members that would land
    outside ``dest`` (absolute paths, ``..``, links out) are refused."""
    dest.mkdir(parents=True)
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as bundle:
                root = dest.resolve()
                for member in bundle.infolist():
                    if not (root / member.filename).resolve().is_relative_to(root):
                        raise TaskError(f"{archive}: member {member.filename!r} would be unpacked outside its folder; "
                                        f"repack the archive with relative paths")
                bundle.extractall(dest)
        else:
            with tarfile.open(archive) as bundle:
                bundle.extractall(dest, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise TaskError(f"{archive}: cannot unpack it ({type(exc).__name__}: {exc}); replace the archive or "
                        f"unpack it into a folder beside it") from None
    entries = [p for p in dest.iterdir() if p.name != "__MACOSX"]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


def describe(name: str, folder: Path, archive: str = "") -> AssetInfo:
    """How many files of which types the folder holds (recursively), with a few example paths."""
    types: Counter = Counter()
    examples: list[str] = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs.sort()
        for file in sorted(names):
            types[Path(file).suffix.lower()] += 1
            if len(examples) < EXAMPLES:
                examples.append(f"{name}/{os.path.relpath(os.path.join(root, file), folder)}")
    return AssetInfo(name=name, archive=archive, files=sum(types.values()), types=dict(types.most_common()),
                     examples=examples)


def stamp(path: Path) -> str:
    """What changes when an asset does: every file's path, size and modification time under it."""
    h = hashlib.sha256()
    if path.is_file():
        st = path.stat()
        h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()
    for root, dirs, names in os.walk(path, followlinks=True):
        dirs.sort()
        for file in sorted(names):
            full = os.path.join(root, file)
            st = os.stat(full)
            h.update(f"{os.path.relpath(full, path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def image_files(folders: dict[str, Path]) -> dict[str, list[str]]:
    """Image files under the asset folders by file name and by stem, each as its path relative to ./input/."""
    index: dict[str, list[str]] = {}
    for name, folder in folders.items():
        for root, dirs, names in os.walk(folder, followlinks=True):
            dirs.sort()
            for file in sorted(names):
                if Path(file).suffix.lower() in IMAGE_SUFFIXES:
                    relative = f"{name}/{os.path.relpath(os.path.join(root, file), folder)}"
                    for key in {file, Path(file).stem}:
                        index.setdefault(key, []).append(relative)
    return index


def find_images(train: pd.DataFrame, test: pd.DataFrame, columns: list[str],
                folders: dict[str, Path]) -> ImageInfo | None:
    """The column whose values name an image for (nearly) every training and test row, and where those images
    are; None when no column does. ``columns``: the candidates, most likely first (the id, then text columns)."""
    index = image_files(folders)
    if not index:
        return None
    for column in columns:
        if column not in train or column not in test:
            continue
        found = [_locate(frame[column].dropna().astype(str).head(500).tolist(), index) for frame in (train, test)]
        if all(found):
            (train_folder, suffix), (test_folder, _) = found
            return ImageInfo(column=column, suffix=suffix, train_folder=train_folder, test_folder=test_folder)
    return None


def _locate(values: list[str], index: dict[str, list[str]]) -> tuple[str, str] | None:
    """(the folder most of ``values`` are in, the suffix they lack) when nearly all name an image, else None."""
    if not values:
        return None
    places: Counter = Counter()
    for value in values:
        base = value.rsplit("/", 1)[-1]
        for path in index.get(base, []):
            stem_only = not path.endswith(base)
            suffix = Path(path).suffix if stem_only else ""
            if path.endswith(value + suffix):
                places[(path[: len(path) - len(value + suffix)].rstrip("/"), suffix)] += 1
                break
    if not places or sum(places.values()) < IMAGE_MATCH * len(values):
        return None
    return places.most_common(1)[0][0]


def modality(columns: list[ColumnInfo], images: ImageInfo | None) -> str:
    """What the rows' features are: images or free text alone (with at most one other column), several kinds
    together (mixed), or table columns only."""
    text = [c for c in columns if c.dtype == "text"]
    others = [c for c in columns if c.dtype != "text"]
    kinds = (["image"] if images else []) + (["text"] if text else [])
    if not kinds:
        return "tabular"
    return kinds[0] if len(kinds) == 1 and len(others) < 2 else "mixed"
