"""Downloads and archives: the cache folder, pinned checksums, safe extraction.

Every file embedlab fetches from the network is described by an :class:`Archive` that pins
its checksum; :func:`fetch` refuses an archive with no pinned checksum and never moves an
unverified download into the cache. :func:`safe_extract` unpacks only plain files and folders
that stay inside the target, within a size bound, and puts the folder in place atomically.
:func:`ensure_dataset` combines both and reuses a completed extraction.

Layout of the cache (``$EMBEDLAB_CACHE``, default ``~/.cache/embedlab``)::

    downloads/<filename>            verified archives, kept so re-extraction needs no network
    datasets/<archive stem>/        one extracted archive, with a completion marker
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import json
import lzma
import os
import re
import stat
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Iterator

from embedlab.io.atomic import atomic_dir, atomic_file, write_text
from embedlab.errors import DataError

__all__ = ["Archive", "cache_dir", "ensure_dataset", "fetch", "file_digest", "safe_extract"]

CHUNK_SIZE = 1024 * 1024
PROGRESS_MIN_BYTES = 1_000_000
TIMEOUT_S = 60.0
MARKER_NAME = ".embedlab-extracted.json"

_HEX_LENGTHS = {"md5": 32, "sha256": 64}
_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT}
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")


# --------------------------------------------------------------------------------------------
# Cache folder and digests
# --------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Return the cache folder: ``$EMBEDLAB_CACHE`` if set, else ``~/.cache/embedlab``.

    The folder is created if it does not exist yet.
    """
    env = os.environ.get("EMBEDLAB_CACHE")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "embedlab"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"Cannot create the cache folder {path}: {exc.strerror or exc}; set EMBEDLAB_CACHE to a writable folder."
        ) from exc
    return path


def _new_hash(algo: str) -> "hashlib._Hash":
    if algo not in _HEX_LENGTHS:
        raise ValueError(f"unsupported digest algorithm {algo!r}; use 'sha256' or 'md5'")
    if algo == "md5":
        # MD5 is used only to compare with the checksum the publisher gives.
        return hashlib.md5(usedforsecurity=False)
    return hashlib.new(algo)


def file_digest(path: str | os.PathLike, algo: str = "sha256") -> str:
    """Return the lowercase hex digest (``"sha256"`` or ``"md5"``) of the file at ``path``."""
    h = _new_hash(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_SIZE), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Archive description
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    """A downloadable archive with pinned checksum(s).

    ``size_bound`` is the largest total uncompressed size :func:`ensure_dataset` accepts when
    extracting it; ``source`` cites where the checksum comes from.
    """

    url: str
    filename: str
    md5: str | None = None
    sha256: str | None = None
    size_bound: int = 2 * 1024**3
    source: str = ""

    def __post_init__(self) -> None:
        name = self.filename
        if not name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
            raise ValueError(f"Archive filename must be a plain file name, got {name!r}")
        for algo in ("md5", "sha256"):
            value = getattr(self, algo)
            if value is None:
                continue
            if not re.fullmatch(f"[0-9a-fA-F]{{{_HEX_LENGTHS[algo]}}}", value):
                raise ValueError(f"Archive {name}: {algo} must be {_HEX_LENGTHS[algo]} hex digits, got {value!r}")
            object.__setattr__(self, algo, value.lower())
        if self.size_bound <= 0:
            raise ValueError(f"Archive {name}: size_bound must be positive")

    @property
    def pinned(self) -> dict[str, str]:
        """The pinned digests, strongest first: ``{"sha256": ..., "md5": ...}``."""
        return {a: getattr(self, a) for a in ("sha256", "md5") if getattr(self, a)}


# --------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------


def _mismatches(archive: Archive, actual: dict[str, str]) -> list[str]:
    return [
        f"expected {algo} {want}, got {actual[algo]}" for algo, want in archive.pinned.items() if actual[algo] != want
    ]


def _verify_existing(archive: Archive, path: Path) -> bool:
    h = {algo: _new_hash(algo) for algo in archive.pinned}
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_SIZE), b""):
            for hh in h.values():
                hh.update(chunk)
    actual = {algo: hh.hexdigest() for algo, hh in h.items()}
    return not _mismatches(archive, actual)


@contextlib.contextmanager
def _progress_bar(total: int | None, label: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draws a rich bar on stderr for downloads over 1 MB."""
    if not (enabled and total and total > PROGRESS_MIN_BYTES):
        yield lambda n: None
        return
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
    except ImportError:  # pragma: no cover - rich is a dependency
        yield lambda n: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _network_error(url: str, reason: object) -> DataError:
    return DataError(
        f"Could not download {url} ({reason}); download it yourself and pass --data-dir with the local copy."
    )


def fetch(archive: Archive, *, cache: Path | None = None, progress: bool = True) -> Path:
    """Download ``archive`` into ``<cache>/downloads/<filename>`` and return its path.

    The download streams into a temporary file in the same folder; its checksum(s) are
    checked before it is renamed into place, so the cache only ever holds verified files.
    A file already in the cache that verifies is returned without any network request.

    Raises :class:`DataError` when no checksum is pinned, on a checksum mismatch (naming the
    expected and actual digests) and on network errors.
    """
    pinned = archive.pinned
    if not pinned:
        raise DataError(
            f"No checksum is pinned for {archive.url}, so embedlab will not use it unverified; "
            "download it yourself and pass --data-dir with the local copy."
        )
    root = Path(cache) if cache is not None else cache_dir()
    dest = root / "downloads" / archive.filename
    if dest.is_file():
        if _verify_existing(archive, dest):
            return dest
        print(f"embedlab: cached {dest} does not match its pinned checksum; downloading again.", file=sys.stderr)
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()

    hashes = {algo: _new_hash(algo) for algo in pinned}
    request = urllib.request.Request(archive.url, headers={"User-Agent": "embedlab"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with atomic_file(dest, "wb") as out, _progress_bar(total, archive.filename, progress) as advance:
                for chunk in iter(lambda: response.read(CHUNK_SIZE), b""):
                    out.write(chunk)
                    for h in hashes.values():
                        h.update(chunk)
                    received += len(chunk)
                    advance(len(chunk))
                if total is not None and received != total:
                    raise _network_error(archive.url, f"connection closed after {received} of {total} bytes")
                actual = {algo: h.hexdigest() for algo, h in hashes.items()}
                wrong = _mismatches(archive, actual)
                if wrong:
                    # Raising inside atomic_file deletes the temporary file.
                    raise DataError(
                        f"Checksum mismatch for {archive.url}: {'; '.join(wrong)}. The download "
                        "was deleted; retry, or download it yourself and pass --data-dir."
                    )
    except DataError:
        raise
    except urllib.error.HTTPError as exc:
        raise _network_error(archive.url, f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise _network_error(archive.url, exc.reason) from exc
    except OSError as exc:
        if exc.filename is not None or exc.errno in _DISK_ERRNOS:
            raise DataError(
                f"Cannot write {dest}: {exc.strerror or exc}; free some space or set "
                "EMBEDLAB_CACHE to a writable folder."
            ) from exc
        raise _network_error(archive.url, exc) from exc
    except (HTTPException, ValueError) as exc:
        raise _network_error(archive.url, exc) from exc
    return dest


# --------------------------------------------------------------------------------------------
# Safe extraction
# --------------------------------------------------------------------------------------------


def _entry_parts(archive_path: Path, name: str) -> tuple[str, ...]:
    """Validate an entry name; return its path components (empty for the root itself)."""
    norm = name.replace("\\", "/")
    if "\0" in norm:
        raise DataError(f"Refusing {archive_path}: entry {name!r} has a NUL byte in its name.")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise DataError(f"Refusing {archive_path}: entry {name!r} has an absolute path.")
    parts = tuple(p for p in PurePosixPath(norm).parts if p not in ("", "."))
    if ".." in parts:
        raise DataError(
            f"Refusing {archive_path}: entry {name!r} has a '..' component that could escape the target folder."
        )
    return parts


def _check_total(archive_path: Path, total: int, max_bytes: int) -> None:
    if total > max_bytes:
        raise DataError(
            f"Refusing {archive_path}: it declares {total} bytes uncompressed, more than the "
            f"limit of {max_bytes} bytes."
        )


@dataclass
class _Entry:
    name: str
    parts: tuple[str, ...]
    is_dir: bool
    member: object  # zipfile.ZipInfo or tarfile.TarInfo


def _scan_zip(zf: zipfile.ZipFile, archive_path: Path, max_bytes: int) -> list[_Entry]:
    entries = []
    total = 0
    for info in zf.infolist():
        parts = _entry_parts(archive_path, info.filename)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise DataError(f"Refusing {archive_path}: entry {info.filename!r} is a symlink.")
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise DataError(f"Refusing {archive_path}: entry {info.filename!r} is a device or special file.")
        if info.flag_bits & 0x1:
            raise DataError(f"Refusing {archive_path}: entry {info.filename!r} is encrypted.")
        is_dir = info.is_dir() or kind == stat.S_IFDIR
        if not parts:
            if is_dir:
                continue
            raise DataError(f"Refusing {archive_path}: entry {info.filename!r} has no name.")
        total += 0 if is_dir else info.file_size
        entries.append(_Entry(info.filename, parts, is_dir, info))
    _check_total(archive_path, total, max_bytes)
    return entries


def _scan_tar(tf: tarfile.TarFile, archive_path: Path, max_bytes: int) -> list[_Entry]:
    entries = []
    total = 0
    for member in tf.getmembers():
        parts = _entry_parts(archive_path, member.name)
        if member.issym():
            raise DataError(f"Refusing {archive_path}: entry {member.name!r} is a symlink.")
        if member.islnk():
            raise DataError(f"Refusing {archive_path}: entry {member.name!r} is a hardlink.")
        if member.isdev():
            raise DataError(f"Refusing {archive_path}: entry {member.name!r} is a device file or FIFO.")
        if not (member.isreg() or member.isdir()):
            raise DataError(f"Refusing {archive_path}: entry {member.name!r} has an unsupported type.")
        if not parts:
            if member.isdir():
                continue
            raise DataError(f"Refusing {archive_path}: entry {member.name!r} has no name.")
        total += member.size if member.isreg() else 0
        entries.append(_Entry(member.name, parts, member.isdir(), member))
    _check_total(archive_path, total, max_bytes)
    return entries


def _copy_stream(src: IO[bytes], dst: IO[bytes], budget: int) -> int:
    """Copy ``src`` to ``dst``; return the bytes written, stopping once past ``budget``."""
    written = 0
    for chunk in iter(lambda: src.read(CHUNK_SIZE), b""):
        dst.write(chunk)
        written += len(chunk)
        if written > budget:
            break
    return written


def _archive_kind(archive_path: Path) -> str:
    name = archive_path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_ARCHIVE_SUFFIXES):
        return "tar"
    raise DataError(f"Cannot extract {archive_path}: unknown archive type; expected .zip, .tar, .tar.gz or .tgz.")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def safe_extract(archive_path: str | os.PathLike, target_dir: str | os.PathLike, *, max_bytes: int) -> Path:
    """Extract a .zip or .tar(.gz/.tgz/.bz2/.xz) archive into ``target_dir`` and return it.

    The archive is checked before anything is written: an entry with an absolute path, a
    ``..`` component, a symlink or hardlink (tar link members, zip entries with symlink mode
    bits), a device file, or a declared total size above ``max_bytes`` is refused with a
    :class:`DataError` naming the archive and the entry. Bytes actually written are counted
    too, so a lying header cannot exceed ``max_bytes``. Extraction goes into a temporary
    folder beside ``target_dir`` that replaces it atomically only on success; on any error
    nothing from the archive remains on disk. File modes from the archive are not applied.
    """
    archive_path = Path(archive_path)
    target = Path(target_dir)
    kind = _archive_kind(archive_path)
    damaged = (zipfile.BadZipFile, tarfile.TarError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, EOFError)
    try:
        with contextlib.ExitStack() as stack:
            if kind == "zip":
                zf = stack.enter_context(zipfile.ZipFile(archive_path))
                entries = _scan_zip(zf, archive_path, max_bytes)

                def opener(e: _Entry) -> IO[bytes]:
                    return zf.open(e.member)  # type: ignore[arg-type]
            else:
                tf = stack.enter_context(tarfile.open(archive_path, "r:*"))
                entries = _scan_tar(tf, archive_path, max_bytes)

                def opener(e: _Entry) -> IO[bytes]:
                    fh = tf.extractfile(e.member)
                    if fh is None:  # pragma: no cover - regular members always have data
                        raise DataError(f"Cannot read entry {e.name!r} of {archive_path}.")
                    return fh

            with atomic_dir(target, replace=True) as tmp:
                os.chmod(tmp, 0o777 & ~_umask())
                root = tmp.resolve()
                remaining = max_bytes
                for entry in entries:
                    dest = tmp.joinpath(*entry.parts)
                    # Defence in depth: _entry_parts already refused escaping names.
                    if not dest.resolve().is_relative_to(root):
                        raise DataError(f"Refusing {archive_path}: entry {entry.name!r} escapes the target.")
                    if entry.is_dir:
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with opener(entry) as src, open(dest, "wb") as out:
                        remaining -= _copy_stream(src, out, remaining)
                    if remaining < 0:
                        raise DataError(
                            f"Refusing {archive_path}: entry {entry.name!r} holds more data "
                            f"than declared; the total passes the limit of {max_bytes} bytes."
                        )
    except damaged as exc:
        raise DataError(
            f"Cannot extract {archive_path}: the archive is damaged ({exc}); delete it and download it again."
        ) from exc
    except FileNotFoundError as exc:
        if not archive_path.exists():
            raise DataError(f"Cannot extract {archive_path}: the file does not exist.") from exc
        raise
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        raise DataError(
            f"Refusing {archive_path}: entries conflict (a file and a folder share the name "
            f"{Path(exc.filename or '?').name!r})."
        ) from exc
    return target


# --------------------------------------------------------------------------------------------
# Datasets in the cache
# --------------------------------------------------------------------------------------------


def _archive_stem(filename: str) -> str:
    lower = filename.lower()
    for suffix in _ARCHIVE_SUFFIXES:
        if lower.endswith(suffix) and len(filename) > len(suffix):
            return filename[: -len(suffix)]
    return filename


def _marker_record(archive: Archive) -> dict[str, str]:
    return {"url": archive.url, "filename": archive.filename, **archive.pinned}


def ensure_dataset(archive: Archive, subdir: str, *, cache: Path | None = None, progress: bool = True) -> Path:
    """Fetch and extract ``archive`` once; return the dataset folder ``subdir`` inside it.

    The archive is extracted into ``<cache>/datasets/<archive name without extension>/`` and
    a marker file recording its checksum is written after a complete extraction. A later call
    whose marker matches the pinned checksum returns at once, without network or hashing; a
    folder without a valid marker (an interrupted run, another edition) is extracted again.
    """
    parts = PurePosixPath(subdir.replace("\\", "/")).parts
    if not parts or subdir.startswith(("/", "\\")) or ".." in parts:
        raise ValueError(f"subdir must be a relative folder inside the archive, got {subdir!r}")
    root = Path(cache) if cache is not None else cache_dir()
    extract_root = root / "datasets" / _archive_stem(archive.filename)
    dataset = extract_root.joinpath(*parts)
    marker = extract_root / MARKER_NAME
    expected = _marker_record(archive)

    with contextlib.suppress(OSError, ValueError):
        if json.loads(marker.read_text(encoding="utf-8")) == expected and dataset.is_dir():
            return dataset

    archive_path = fetch(archive, cache=root, progress=progress)
    safe_extract(archive_path, extract_root, max_bytes=archive.size_bound)
    if not dataset.is_dir():
        raise DataError(
            f"{archive.filename} has no folder {subdir}/ (extracted into {extract_root}); "
            "check the dataset definition or pass --data-dir."
        )
    write_text(marker, json.dumps(expected, indent=2, sort_keys=True) + "\n")
    return dataset
