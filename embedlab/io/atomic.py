"""Atomic writes: a file or a folder appears whole under its final name, or not at all.

Everything embedlab writes (runs, reports, exports, downloads in the cache) goes through here,
so an interrupted command never leaves half a file behind and never damages what was there.

Temporary names are unique and recognisable: ``.NAME.embedlab-PID-RANDOM.tmp`` (files) and
``.NAME.embedlab-PID-RANDOM.partial`` (folders), created exclusively (``O_EXCL``, ``mkdtemp``)
beside their target. A write that was killed outright (SIGKILL, power loss) leaves one behind;
the next write into the same folder deletes those whose process is gone (:func:`sweep_stale`).
A folder is deleted whole only when this process created it (:func:`made_here`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

#: temporary names embedlab gives its writes (``PID`` is the writing process)
STALE_RE = re.compile(r"^\..+\.embedlab-(\d+)-[A-Za-z0-9_]+\.(tmp|partial)$")
#: what the hidden names add to a target's name: ``.`` + NAME + ``.embedlab-PID-RANDOM.partial``
NAME_OVERHEAD = 40

_made: dict[str, tuple[int, int]] = {}  # folders this process created: path -> (device, inode)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _prefix(path: Path) -> str:
    return f".{path.name}.embedlab-{os.getpid()}-"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: alive
    return True


def sweep_stale(folder: str | os.PathLike) -> list[str]:
    """Delete the temporary files and folders of killed embedlab writes in ``folder`` (names
    matching :data:`STALE_RE` whose process no longer runs); returns their names. Links are
    never followed; a stale folder loses only its plain files, and goes only once empty."""
    folder = Path(folder)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = STALE_RE.match(name)
        if match is None or _alive(int(match.group(1))):
            continue
        path = folder / name
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                os.unlink(path)
            elif stat.S_ISDIR(st.st_mode) and match.group(2) == "partial":
                for inner in os.listdir(path):
                    if stat.S_ISREG(os.lstat(path / inner).st_mode):
                        os.unlink(path / inner)
                os.rmdir(path)
            else:
                continue
            removed.append(name)
    return removed


def make_temp_dir(path: str | os.PathLike) -> Path:
    """An empty hidden folder beside ``path`` with a unique temporary name, remembered as made
    by this process (so :func:`remove_made` may delete it)."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=".partial", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    st = os.lstat(tmp)
    _made[os.path.abspath(tmp)] = (st.st_dev, st.st_ino)
    return tmp


def made_here(path: str | os.PathLike) -> bool:
    """True when ``path`` is (still) a folder this process created with :func:`make_temp_dir`."""
    key = os.path.abspath(path)
    try:
        st = os.lstat(key)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and _made.get(key) == (st.st_dev, st.st_ino)


def remove_made(path: str | os.PathLike) -> None:
    """Delete the folder ``path`` with its contents, only if this process created it."""
    if made_here(path):
        shutil.rmtree(path, ignore_errors=True)
    _made.pop(os.path.abspath(path), None)


def check_file_target(path: str | os.PathLike) -> None:
    """Refuse, before any work is done, a path that can never be written as a file."""
    from embedlab.errors import UsageError

    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise UsageError(f"{str(path)!r} is a folder; give the name of a file to write")
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"cannot write {str(path)!r}: {str(ancestor)!r} is a file, not a folder")


def install(tmp: str | os.PathLike, path: str | os.PathLike, may_replace: Callable[[Path], bool] | None = None) -> None:
    """Give the finished temporary file ``tmp`` the name ``path``.

    ``may_replace`` None: replace whatever file is there (embedlab's own places). Otherwise a
    file that is at ``path`` *now* is replaced only if ``may_replace(path)`` says so at this
    moment; a new name is taken with a hard link, which fails rather than replace a file that
    appeared meanwhile (the race of a check followed by a rename)."""
    from embedlab.errors import UsageError

    tmp, path = Path(tmp), Path(path)
    if may_replace is None:
        os.replace(tmp, path)
        return
    refused = UsageError(
        f"{str(path)!r} appeared or changed while embedlab was writing it and is not "
        f"a file embedlab wrote: it was left alone, and nothing was written there"
    )
    try:
        os.link(tmp, path, follow_symlinks=False)
    except FileExistsError:
        if not may_replace(path):
            raise refused from None
        os.replace(tmp, path)
        return
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(path) and not may_replace(path):  # no hard links here: check, then rename
            raise refused from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike, mode: str = "w", *, may_replace: Callable[[Path], bool] | None = None, **kwargs
) -> Iterator[IO]:
    """Open a temporary file beside ``path`` (created exclusively); on success it takes the
    name ``path`` (:func:`install`, with ``may_replace``).

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    check_file_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent)
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
        install(tmp, path, may_replace)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path, "w", encoding="utf-8") as fh:
        fh.write(text)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it becomes ``path``.

    ``path`` must be new (a folder that appeared meanwhile is never replaced), except with
    ``replace`` (embedlab's own places, the download cache): the old folder is then moved
    aside first and deleted only after the new one is in place, so at every moment either the
    complete old or the complete new folder exists under ``path``. On any exception
    (including KeyboardInterrupt) the temporary folder is deleted and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path.parent)
    tmp = make_temp_dir(path)
    try:
        yield tmp
    except BaseException:
        remove_made(tmp)
        raise
    old = None
    if replace and path.exists():
        old = make_temp_dir(path)
        os.replace(path, old)  # onto the empty folder just made: it is now the old content
        st = os.lstat(old)
        _made[os.path.abspath(old)] = (st.st_dev, st.st_ino)
    try:
        if os.path.lexists(path):
            from embedlab.errors import UsageError

            raise UsageError(f"{str(path)!r} appeared while embedlab was writing it; it was left alone")
        os.rename(tmp, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        remove_made(tmp)
        raise
    _made.pop(os.path.abspath(tmp), None)
    if old is not None:
        remove_made(old)


def move_files_into(
    src: str | os.PathLike,
    dest: str | os.PathLike,
    last: str | Iterable[str] | None = None,
    stale: Iterable[str] = (),
    may_replace: Callable[[Path], bool] | None = None,
) -> None:
    """Move every file of the folder ``src`` into the existing folder ``dest`` (each by one
    atomic rename, ``last`` after all others), then delete the names ``stale`` from ``dest`` and
    the emptied ``src``. ``last``: a name, or names in order. Other entries of ``dest`` are never touched: with ``may_replace``, a
    name already in ``dest`` is replaced only when ``may_replace(dest / name)`` says so at that
    moment (:func:`install`). Ctrl-C is held back while the renames run (they take
    microseconds), so the folder is never left half-swapped by it."""
    import signal
    import threading

    src, dest = Path(src), Path(dest)
    names = sorted(p.name for p in src.iterdir())
    for name in [last] if isinstance(last, str) else list(last or ()):
        if name in names:
            names.remove(name)
            names.append(name)
    masked = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask")
    if masked:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        for name in names:
            install(src / name, dest / name, may_replace)
        for name in set(stale) - set(names):
            if may_replace is not None and not may_replace(dest / name):
                continue
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                if not stat.S_ISDIR(os.lstat(dest / name).st_mode):
                    os.unlink(dest / name)
    finally:
        if masked:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    remove_made(src) if os.path.abspath(src) in _made else shutil.rmtree(src, ignore_errors=True)


@contextlib.contextmanager
def staging_dir(path: str | os.PathLike) -> Iterator[Path]:
    """An empty temporary folder beside ``path`` (hidden, same file system, so its entries can
    be renamed into place); deleted with whatever is left in it when the block ends."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path.parent)
        tmp = make_temp_dir(path)
    except OSError as exc:
        from embedlab.errors import EmbedlabError

        raise EmbedlabError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    try:
        yield tmp
    finally:
        remove_made(tmp)
