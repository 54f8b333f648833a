"""Where vlzoo keeps cached artefacts, and the one error type for weights/data that must be provided locally.

Nothing in this repo downloads weights or datasets: every loader takes a local path and raises
:class:`MissingLocalFile` naming the file to provide when it is absent.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = [
    "cache_dir", "cache_lock", "staged_dir", "build_once", "repo_root", "MissingLocalFile", "require_file", "require_dir",
]


class MissingLocalFile(FileNotFoundError):
    """A weights file, folder or dataset that must be placed on local disk is missing."""


def repo_root() -> Path | None:
    """The monorepo root when running from a checkout (the folder holding ``shared/`` and ``Makefile``)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "shared" / "pyproject.toml").is_file() and (parent / "Makefile").is_file():
            return parent
    return None


def cache_dir(*parts: str) -> Path:
    """The vlzoo cache folder (``$VLZOO_CACHE``, else ``<repo>/.cache/vlzoo``, else ``~/.cache/vlzoo``)."""
    env = os.environ.get("VLZOO_CACHE")
    if env:
        base = Path(env)
    else:
        root = repo_root()
        base = (root / ".cache" / "vlzoo") if root is not None else Path.home() / ".cache" / "vlzoo"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def cache_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on the cache entry ``path`` (the entry itself need not exist yet).

    The lock is an ``fcntl.flock`` on the sibling ``.<name>.lock`` file: a second process that wants to build
    the same entry waits here instead of training a duplicate (and, before this lock existed, deleting the
    first one's staging folder), then sees the finished entry. The kernel releases it if the holder dies.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_file = path.with_name(f".{path.name}.lock")
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def staged_dir(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Build a folder atomically: yield a fresh temporary sibling ``.<name>.partial-*`` of ``path``; when the
    block finishes, replace ``path`` (if any) by it, and when it raises, delete it and leave ``path`` as it
    was. Readers therefore never see a half-written folder, and an interrupted build leaves nothing behind.

    With ``replace=False`` the finished folder only takes the place of a missing or empty ``path``: if
    something filled ``path`` meanwhile (a concurrent build), the rename fails, the staged folder is deleted
    and :class:`FileExistsError` is raised, so a concurrent writer's folder is never silently replaced.
    """
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        yield tmp
        if replace and path.exists():
            shutil.rmtree(path)
        try:
            os.rename(tmp, path)  # onto a missing or empty folder only (POSIX), atomically
        except OSError as err:
            if replace or err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            raise FileExistsError(f"{path} was filled by another writer while this one was being built") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build_once(
    path: str | os.PathLike,
    is_complete: Callable[[Path], bool],
    build: Callable[[Path], object],
    *,
    force: bool = False,
) -> Path:
    """The cache entry ``path``, built by ``build(staging_folder)`` unless ``is_complete(path)`` already holds.

    Checked again under :func:`cache_lock`, so of concurrent callers one builds and the others wait and reuse
    it; the build goes through :func:`staged_dir`, so a failed or interrupted one leaves ``path`` as it was.
    ``force`` rebuilds even a complete entry.
    """
    path = Path(path)
    if not force and is_complete(path):
        return path
    with cache_lock(path):
        if not force and is_complete(path):
            return path
        with staged_dir(path) as staging:
            build(staging)
    return path


def require_file(path: str | os.PathLike, what: str, hint: str = "") -> Path:
    """Return ``path`` if it is a file, else raise :class:`MissingLocalFile` saying what to put there."""
    p = Path(path).expanduser()
    if not p.is_file():
        msg = f"{what} not found: {p}"
        if hint:
            msg += f". {hint}"
        raise MissingLocalFile(msg)
    return p


def require_dir(path: str | os.PathLike, what: str, hint: str = "") -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        msg = f"{what} folder not found: {p}"
        if hint:
            msg += f". {hint}"
        raise MissingLocalFile(msg)
    return p
