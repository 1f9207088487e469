"""The write rule, enforced here and nowhere else: embedlab writes only to paths that are new,
or that it recognisably wrote itself, and there it replaces only its own files.

What embedlab recognises as its own:

* a **run folder**: its ``run.json`` is a JSON object carrying ``"format": "embedlab-run"``
  (runs written before that marker: ``format_version`` and ``tables``, beside
  ``weights.safetensors``); its own files are ``run.json``, ``weights.safetensors`` and the
  table CSVs its ``run.json`` lists;
* an **HTML file** (``analyze --report``, ``lr-find --plot``, ``compare --report``): its
  ``<head>`` holds ``<meta name="generator" content="embedlab VERSION">`` (:data:`HTML_MARK`);
* any **other file** (``export``'s vectors and metadata, ``predict``'s CSV): listed, with its
  SHA-256, in the hidden manifest ``.embedlab-files.json`` of its folder, and unchanged since
  (a file you edited afterwards is yours again).

Anything else is refused before any work is done, with a one-line :class:`UsageError` naming
the path and the way out (another path, or ``--force`` to replace it). ``--force`` never
replaces a folder by a file or a file by a folder, and never writes a run inside another run.

Every writer calls one of :func:`check_file`, :func:`check_run_dir`, :func:`check_export`
before its work and writes through :func:`owned_file` / :func:`write_owned_text` (files) or
:meth:`embedlab.run.Run.save` (run folders, which calls :func:`check_run_dir` and
:func:`own_run_files`), so the check is repeated at the moment of writing.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import IO, Iterable, Iterator

from embedlab.errors import UsageError

RUN_MARK = "embedlab-run"
MANIFEST = ".embedlab-files.json"
MANIFEST_MARK = "embedlab-files"
_HTML_MARK_RE = re.compile(r'<meta\s+name="generator"\s+content="embedlab[\s"]', re.IGNORECASE)


def html_mark() -> str:
    """The ``<meta>`` line that marks an HTML file as embedlab's (goes into its ``<head>``)."""
    from embedlab._version import __version__

    return f'<meta name="generator" content="embedlab {__version__}">'


#: the marker line of embedlab's HTML files (see :func:`html_mark`)
HTML_MARK = html_mark()


def mark_html(doc: str) -> str:
    """``doc`` with :data:`HTML_MARK` in its ``<head>`` (added after ``<head>`` if missing)."""
    if _HTML_MARK_RE.search(doc[:65536]):
        return doc
    match = re.search(r"<head[^>]*>", doc, re.IGNORECASE)
    if match is None:
        raise ValueError("an HTML document without <head> cannot carry embedlab's mark")
    return doc[:match.end()] + "\n" + HTML_MARK + doc[match.end():]


def _fail(path: Path, option: str | None, why: str, force_helps: bool = True, way: str | None = None) -> UsageError:
    name = f"{option} {str(path)!r}" if option else repr(str(path))
    if way is None:
        way = "give another path, or --force to replace it" if force_helps else "give another path"
    rule = " (embedlab replaces only files it wrote itself)" if force_helps else ""
    return UsageError(f"{name} {why}; {way}{rule}")


def _check_creatable(path: Path, option: str | None) -> None:
    """The folders above ``path`` exist or can be made."""
    import tempfile

    ancestor = path.absolute().parent
    while not ancestor.exists() and not ancestor.is_symlink():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise _fail(path, option, f"cannot be created: {str(ancestor)!r} is a file, not a folder",
                    force_helps=False)
    try:  # the one reliable test (permissions, read-only disks, /proc, root): write there
        fd, probe = tempfile.mkstemp(prefix=".embedlab-probe-", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _fail(path, option, f"cannot be created: cannot write in {str(ancestor)!r} "
                                  f"({exc.strerror or exc})", force_helps=False) from None


# ---------------------------------------------------------------------------- recognising
def is_marked_html(path: Path) -> bool:
    """True when ``path`` is an HTML file embedlab wrote (its head carries :data:`HTML_MARK`)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536).decode("utf-8", errors="replace")
    except OSError:
        return False
    return bool(_HTML_MARK_RE.search(head.split("</head>", 1)[0]))


def run_meta(path: Path) -> dict | None:
    """The parsed ``run.json`` of a folder embedlab recognises as a run it made, else None."""
    rfile = Path(path) / "run.json"
    try:
        if not rfile.is_file() or rfile.stat().st_size > 64 * 2**20:
            return None
        meta = json.loads(rfile.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(meta, dict):
        return None
    if meta.get("format") == RUN_MARK:
        return meta
    legacy = isinstance(meta.get("format_version"), int) and isinstance(meta.get("tables"), dict)
    return meta if legacy and (Path(path) / "weights.safetensors").is_file() else None


def is_run_folder(path: Path) -> bool:
    return Path(path).is_dir() and run_meta(path) is not None


def own_run_files(path: Path) -> set[str]:
    """The names of a run folder's own files: run.json, weights.safetensors and the table CSVs
    its run.json lists (empty when ``path`` is not a run embedlab recognises)."""
    meta = run_meta(path)
    if meta is None:
        return set()
    names = {"run.json", "weights.safetensors"}
    for info in (meta.get("tables") or {}).values():
        csv = info.get("csv") if isinstance(info, dict) else None
        if isinstance(csv, str) and csv and "/" not in csv and "\\" not in csv and not csv.startswith("."):
            names.add(csv)
    return names


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(folder: Path) -> dict | None:
    """The folder's manifest ({name: {sha256, by}}), {} when it has none, None when a file of
    that name exists but is not embedlab's."""
    mfile = folder / MANIFEST
    if not mfile.exists():
        return {}
    try:
        data = json.loads(mfile.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_MARK or not isinstance(data.get("files"), dict):
        return None
    return data["files"]


def is_recorded(path: Path) -> bool:
    """True when ``path`` is a file embedlab wrote, listed in its folder's manifest and unchanged."""
    path = Path(path)
    files = _manifest(path.parent) or {}
    entry = files.get(path.name)
    if not isinstance(entry, dict) or not path.is_file():
        return False
    try:
        return entry.get("sha256") == _sha256(path)
    except OSError:
        return False


def _record(paths: Iterable[Path], by: str) -> None:
    """List freshly written files in their folders' manifests (written atomically)."""
    from embedlab.io.atomic import write_text

    by_folder: dict[Path, list[Path]] = {}
    for p in paths:
        by_folder.setdefault(Path(p).parent, []).append(Path(p))
    for folder, items in by_folder.items():
        files = _manifest(folder)
        if files is None:  # not ours: leave it alone (the files are then simply not recognised)
            continue
        for p in items:
            files[p.name] = {"sha256": _sha256(p), "by": by}
        payload = {"format": MANIFEST_MARK, "note": "files embedlab wrote here; it may replace "
                   "these (and only these) while they are unchanged", "files": dict(sorted(files.items()))}
        write_text(folder / MANIFEST, json.dumps(payload, indent=2) + "\n")


# ---------------------------------------------------------------------------- the checks
def check_file(path: str | os.PathLike, *, force: bool = False, option: str | None = None,
               html: bool = False) -> None:
    """May embedlab write the file ``path``? New, or embedlab's (an HTML file carrying its
    mark when ``html``, else a file its folder's manifest lists unchanged), or ``force``."""
    path = Path(path)
    if path.is_dir():
        raise _fail(path, option, "is a folder; give the name of a file to write", force_helps=False)
    _check_creatable(path, option)
    if not (path.exists() or path.is_symlink()) or force:
        return
    if path.is_symlink() or not path.is_file():
        raise _fail(path, option, "exists and is not a regular file")
    if (is_marked_html(path) if html else is_recorded(path)):
        return
    what = "an HTML report embedlab wrote" if html else "a file embedlab wrote"
    raise _fail(path, option, f"exists and is not {what}")


def check_export(folder: str | os.PathLike, names: Iterable[str], *, force: bool = False,
                 option: str | None = "--out") -> None:
    """May embedlab write the files ``names`` into ``folder`` (created if new)?"""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise _fail(folder, option, "is a file; give a folder for the exported files", force_helps=False)
    _check_creatable(folder / "x", option)
    if _manifest(folder) is None and folder.is_dir():
        raise _fail(folder / MANIFEST, option, "is not embedlab's manifest; move it away", force_helps=False)
    for name in names:
        check_file(folder / name, force=force, option=option)


def check_run_dir(out: str | os.PathLike, *, force: bool = False, option: str | None = "--out") -> None:
    """May a run be saved into the folder ``out``? New, empty, or a run embedlab made (its own
    files are then replaced, nothing else); a folder holding other files only with ``force``
    (same-named files are replaced). Never a file, and never inside another run."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise _fail(out, option, "is a file, not a folder", force_helps=False)
    for parent in out.absolute().parents:
        if is_run_folder(parent):
            raise _fail(out, option, f"is inside the run {str(parent)!r} (runs are never nested)",
                        force_helps=False, way="choose a folder outside it")
    _check_creatable(out, option)
    if out.is_dir() and not force and not is_run_folder(out) and any(out.iterdir()):
        raise _fail(out, option, "exists and is not an embedlab run (it holds other files)",
                    way="give another path, or --force to write the run into it (files named like the "
                        "run's are replaced, others are left alone)")


def check_new(path: str | os.PathLike, *, option: str | None = None, way: str = "remove it or choose another --dir"
              ) -> None:
    """``path`` must not exist at all (what ``plugins new`` creates is never merged into
    anything), and must be creatable."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise _fail(path, option, "already exists", force_helps=False, way=way)
    _check_creatable(path, option)


# ---------------------------------------------------------------------------- writing
@contextlib.contextmanager
def owned_file(path: str | os.PathLike, mode: str = "w", *, force: bool = False, option: str | None = None,
               by: str = "embedlab", **kwargs) -> Iterator[IO]:
    """Write a (non-HTML) file under the rule: checked now, written atomically, then listed in
    its folder's manifest so a later embedlab command may replace it."""
    from embedlab.io.atomic import atomic_file

    path = Path(path)
    check_file(path, force=force, option=option)
    with atomic_file(path, mode, **kwargs) as fh:
        yield fh
    _record([path], by)


def write_owned_html(path: str | os.PathLike, doc: str, *, force: bool = False,
                     option: str | None = None) -> Path:
    """Write an HTML document under the rule; it carries :data:`HTML_MARK` (added if missing)."""
    from embedlab.io.atomic import write_text

    path = Path(path)
    check_file(path, force=force, option=option, html=True)
    write_text(path, mark_html(doc))
    return path


def write_owned_text(path: str | os.PathLike, text: str, *, force: bool = False, option: str | None = None,
                     by: str = "embedlab") -> Path:
    with owned_file(path, "w", force=force, option=option, by=by, encoding="utf-8", newline="") as fh:
        fh.write(text)
    return Path(path)
