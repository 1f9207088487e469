"""Atomic writes: a file or a folder appears whole under its final name, or not at all.

Everything embedlab writes (runs, reports, exports, downloads in the cache) goes through here,
so an interrupted command never leaves half a file behind and never damages what was there.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_file_target(path: str | os.PathLike) -> None:
    """Refuse, before any work is done, a path that can never be written as a file."""
    from embedlab.errors import UsageError

    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{str(path)!r} is a folder; give the name of a file to write")
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"cannot write {str(path)!r}: {str(ancestor)!r} is a file, not a folder")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    check_file_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # a file in the way, no permission, read-only disk...
        from embedlab.errors import EmbedlabError

        raise EmbedlabError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    os.close(fd)
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path, "w", encoding="utf-8") as fh:
        fh.write(text)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path``.

    The old folder (if any) is moved aside first and deleted only after the new one is in
    place, so at every moment either the complete old or the complete new folder exists
    under ``path``. On any exception (including KeyboardInterrupt) the temporary folder is
    deleted and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def move_files_into(src: str | os.PathLike, dest: str | os.PathLike, last: str | None = None,
                    stale: Iterable[str] = ()) -> None:
    """Move every file of the folder ``src`` into the existing folder ``dest`` (each by one
    atomic rename, ``last`` after all others), then delete the names ``stale`` from ``dest`` and
    the emptied ``src``. Other entries of ``dest`` are never touched. Ctrl-C is held back while
    the renames run (they take microseconds), so the folder is never left half-swapped by it."""
    import signal
    import threading

    src, dest = Path(src), Path(dest)
    names = sorted(p.name for p in src.iterdir())
    if last in names:
        names.remove(last)
        names.append(last)
    masked = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask")
    if masked:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        for name in names:
            os.replace(src / name, dest / name)
        for name in set(stale) - set(names):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest / name)
    finally:
        if masked:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    shutil.rmtree(src, ignore_errors=True)


@contextlib.contextmanager
def staging_dir(path: str | os.PathLike) -> Iterator[Path]:
    """An empty temporary folder beside ``path`` (hidden, same file system, so its entries can
    be renamed into place); deleted with whatever is left in it when the block ends."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    except OSError as exc:
        from embedlab.errors import EmbedlabError

        raise EmbedlabError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
