"""Where a makani package's files are: a directory, or a ``.tar`` of one (files at the top or
in one top-level folder), recognised by ``config.json`` and the training checkpoint.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from hens.forecast.errors import CheckpointError

CONFIG = "config.json"
CHECKPOINT = "training_checkpoints/best_ckpt_mp0.tar"


class PackageArchive:
    """The files of a package, by name relative to its root, in a directory or a tar.

    Members of a tar are read by their exact names as file objects (never extracted); links
    are refused. Missing files raise :class:`CheckpointError` naming them.
    """

    def __init__(self, path: Path, tar: tarfile.TarFile | None, root: str) -> None:
        self.path, self.tar, self.root = path, tar, root

    def name(self, rel: str) -> str:
        return str(self.path / rel) if self.tar is None else f"{self.path}:{self.root}{rel}"

    def _member(self, rel: str) -> tarfile.TarInfo | None:
        assert self.tar is not None
        try:
            member = self.tar.getmember(self.root + rel)
        except KeyError:
            return None
        return member if member.isfile() else None  # links could point anywhere in the archive

    def exists(self, rel: str) -> bool:
        return (self.path / rel).is_file() if self.tar is None else self._member(rel) is not None

    @contextmanager
    def open(self, rel: str) -> Iterator[IO[bytes]]:
        if not self.exists(rel):
            raise CheckpointError(f"package {self.path} lacks {rel}")
        if self.tar is None:
            with open(self.path / rel, "rb") as f:
                yield f
        else:
            member = self._member(rel)
            assert member is not None
            f = self.tar.extractfile(member)
            assert f is not None
            with f:
                yield f

    def read(self, rel: str) -> bytes:
        with self.open(rel) as f:
            return f.read()


def _tar_root(tar: tarfile.TarFile) -> str | None:
    """The folder (``""`` or ``"name/"``) holding config.json and the checkpoint, if any."""
    names = {m.name.removeprefix("./") for m in tar.getmembers() if m.isfile()}
    tops = {n.split("/", 1)[0] + "/" for n in names if "/" in n}
    for root in ("", *sorted(tops)):
        if root + CONFIG in names and root + CHECKPOINT in names:
            prefix = "./" if any(m.name.startswith("./") for m in tar.getmembers()) else ""
            return prefix + root
    return None


@contextmanager
def open_package(path: Path) -> Iterator[PackageArchive | None]:
    """The package at ``path`` (a directory or a tar, open while the context lasts), or None."""
    if path.is_dir():
        ok = (path / CONFIG).is_file() and (path / CHECKPOINT).is_file()
        yield PackageArchive(path, None, "") if ok else None
    elif path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as tar:
            root = _tar_root(tar)
            yield None if root is None else PackageArchive(path, tar, root)
    else:
        yield None


def is_package(path: str | Path) -> bool:
    """Whether ``path`` is a makani package: a directory (or ``.tar`` of one, possibly in one
    top-level folder) with ``config.json`` and ``training_checkpoints/best_ckpt_mp0.tar``."""
    try:
        with open_package(Path(path)) as files:
            return files is not None
    except (OSError, tarfile.TarError):
        return False
