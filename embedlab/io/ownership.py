"""The write rule, enforced here and nowhere else: embedlab writes only to paths that are new,
or that it can prove it wrote itself, and there it replaces or deletes only its own files.

The proof is the hidden manifest ``.embedlab-files.json`` of a folder: every file embedlab
writes is listed there with its SHA-256 as it wrote it. A file is embedlab's when it is a
regular file (never a link), listed, and its bytes still have that hash; a file that changed,
or is not listed, is the user's. A copied ``run.json``, a pasted generator tag or a forged
manifest prove nothing: at worst they let embedlab replace bytes identical to what it wrote.

* a **run folder** is embedlab's when its manifest lists its ``run.json`` unchanged; its own
  files are those the manifest lists as the run's (``run.json``, ``weights.safetensors``, the
  table CSVs), unchanged. Runs written before manifests (``"format": "embedlab-run"``, or
  ``format_version`` and ``tables`` beside ``weights.safetensors``) stay readable; writing
  over one needs ``--force``, which replaces its run.json and weights, gives the tables new
  names (never a name in the folder) and deletes nothing;
* an **HTML report** (``analyze --report``, ``lr-find --plot``, ``compare --report``) and any
  **other file** (``export``, ``predict``, ``group.json``) is embedlab's when listed unchanged;
  the ``<meta name="generator">`` tag in a report says who wrote it, and proves nothing;
* a **folder embedlab keeps for itself** (``.NAME.checkpoint``) is embedlab's when its
  manifest is embedlab's; only the files listed there unchanged are ever deleted
  (:func:`remove_owned`), the folder itself only once empty.

No link is followed for any write or delete: a path that is a symbolic link is refused, files
are created exclusively and take their final name by a hard link (which cannot replace a file
that appeared meanwhile) or, for a file of embedlab's, by a rename right after ownership is
checked again (:func:`embedlab.io.atomic.install`).

Anything else is refused before any work is done, with a one-line :class:`UsageError` naming
the path and the way out (another path, or ``--force`` to replace it). ``--force`` never
replaces a folder by a file or a file by a folder, never writes through a link, and never
writes a run inside another run.

Every writer calls one of :func:`check_file`, :func:`check_run_dir`, :func:`check_export`
before its work and writes through :func:`owned_file` / :func:`write_owned_text` (files) or
:meth:`embedlab.run.Run.save` (run folders, which calls :func:`check_run_dir` and
:func:`run_files_plan`), so the check is repeated at the moment of writing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import IO, Iterable, Iterator

from embedlab.errors import UsageError

RUN_MARK = "embedlab-run"
MANIFEST = ".embedlab-files.json"
MANIFEST_MARK = "embedlab-files"
MANIFEST_MAX_BYTES = 16 * 2**20
RUN_BY = "embedlab run"  # the manifest's "by" of a run's own files
_HTML_MARK_RE = re.compile(r'<meta\s+name="generator"\s+content="embedlab[\s"]', re.IGNORECASE)


def html_mark() -> str:
    """The ``<meta>`` line that says an HTML file was written by embedlab (in its ``<head>``)."""
    from embedlab._version import __version__

    return f'<meta name="generator" content="embedlab {__version__}">'


#: the marker line of embedlab's HTML files (see :func:`html_mark`)
HTML_MARK = html_mark()


def mark_html(doc: str) -> str:
    """``doc`` with :data:`HTML_MARK` in its ``<head>`` (added after ``<head>`` if missing)."""
    head = re.split(r"</head\s*>", doc[:65536], maxsplit=1, flags=re.IGNORECASE)[0]
    if _HTML_MARK_RE.search(head):
        return doc
    match = re.search(r"<head[^>]*>", doc, re.IGNORECASE)
    if match is None:
        raise ValueError("an HTML document without <head> cannot carry embedlab's mark")
    return doc[: match.end()] + "\n" + HTML_MARK + doc[match.end() :]


def _fail(path: Path, option: str | None, why: str, force_helps: bool = True, way: str | None = None) -> UsageError:
    name = f"{option} {str(path)!r}" if option else repr(str(path))
    if way is None:
        way = "give another path, or --force to replace it" if force_helps else "give another path"
    rule = " (embedlab replaces only files it can prove it wrote)" if force_helps else ""
    return UsageError(f"{name} {why}; {way}{rule}")


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _check_creatable(path: Path, option: str | None, hidden: str = "") -> None:
    """The folders above ``path`` exist or can be made, and its name (with the hidden names
    embedlab derives from it: temporary names, ``hidden``) fits the file system."""
    import tempfile

    from embedlab.io.atomic import NAME_OVERHEAD

    ancestor = path.absolute().parent
    while not ancestor.exists() and not ancestor.is_symlink():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise _fail(path, option, f"cannot be created: {str(ancestor)!r} is a file, not a folder", force_helps=False)
    longest = _name_max(ancestor) - NAME_OVERHEAD - len(hidden.encode())
    for part in (
        path.parts[len(ancestor.parts) :] if path.is_absolute() else path.absolute().parts[len(ancestor.parts) :]
    ):
        if len(part.encode()) > longest:
            raise _fail(
                path,
                option,
                f"has a name of {len(part.encode())} bytes; embedlab takes at most {longest} "
                f"(it adds hidden working names beside it, which must fit the "
                f"{_name_max(ancestor)}-byte limit of the file system)",
                force_helps=False,
                way="give a shorter name",
            )
    try:  # the one reliable test (permissions, read-only disks, /proc, root): write there
        fd, probe = tempfile.mkstemp(prefix=".embedlab-probe-", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _fail(
            path,
            option,
            f"cannot be created: cannot write in {str(ancestor)!r} ({exc.strerror or exc})",
            force_helps=False,
        ) from None


def _refuse_link(path: Path, option: str | None) -> None:
    if path.is_symlink():
        raise _fail(
            path,
            option,
            "is a symbolic link (embedlab never writes or deletes through a link)",
            force_helps=False,
            way="give the real path",
        )


# ---------------------------------------------------------------------------- recognising
def is_marked_html(path: Path) -> bool:
    """True when ``path``'s ``<head>`` carries :data:`HTML_MARK` (says who wrote it; it is no
    proof of ownership: see :func:`is_recorded`)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536).decode("utf-8", errors="replace")
    except OSError:
        return False
    head = re.split(r"</head\s*>", head, maxsplit=1, flags=re.IGNORECASE)[0]
    return bool(_HTML_MARK_RE.search(head))


def run_meta(path: Path) -> dict | None:
    """The parsed ``run.json`` of a folder that looks like an embedlab run (its format marker,
    or the older layout), else None. Looking like one proves nothing: see :func:`is_owned_run`."""
    from embedlab.io.strictjson import read_json

    rfile = Path(path) / "run.json"
    try:
        if rfile.is_symlink() or not rfile.is_file():
            return None
        meta = read_json(rfile)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    if meta.get("format") == RUN_MARK:
        return meta
    legacy = isinstance(meta.get("format_version"), int) and isinstance(meta.get("tables"), dict)
    return meta if legacy and (Path(path) / "weights.safetensors").is_file() else None


def is_run_folder(path: Path) -> bool:
    """True when ``path`` is a folder that looks like an embedlab run (for reading, and for
    "never a run inside a run"); :func:`is_owned_run` says whether embedlab may replace it."""
    path = Path(path)
    return path.is_dir() and not path.is_symlink() and run_meta(path) is not None


def is_owned_run(path: Path) -> bool:
    """True when ``path`` is a run embedlab can prove it wrote: its manifest lists its
    ``run.json`` as a run file, unchanged."""
    return is_run_folder(path) and is_recorded(Path(path) / "run.json", by=RUN_BY)


def own_run_files(path: Path) -> set[str]:
    """The names of a run folder's own files that embedlab may replace or delete: those its
    manifest lists as the run's, unchanged (empty without proof)."""
    path = Path(path)
    files = _manifest(path) or {}
    return {
        name
        for name, entry in files.items()
        if "/" not in name
        and isinstance(entry, dict)
        and entry.get("by") == RUN_BY
        and is_recorded(path / name, by=RUN_BY)
    }


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def sha256_file(path: Path) -> str:
    """The SHA-256 of the regular file ``path`` (opened without following a link)."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(f"{path} is not a regular file")
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_sha256 = sha256_file


def _manifest(folder: Path) -> dict | None:
    """The folder's manifest ({name: {sha256, by}}), {} when it has none, None when something
    of that name exists but is not embedlab's manifest (a link, a FIFO, a device, a huge or
    deeply nested file, another format)."""
    from embedlab.io.strictjson import read_json

    mfile = Path(folder) / MANIFEST
    if not os.path.lexists(mfile):
        return {}
    if not _regular(mfile):
        return None
    try:
        data = read_json(mfile, max_bytes=MANIFEST_MAX_BYTES)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_MARK or not isinstance(data.get("files"), dict):
        return None
    return {k: v for k, v in data["files"].items() if isinstance(v, dict)}


def is_recorded(path: Path, by: str | None = None) -> bool:
    """True when ``path`` is a regular file embedlab wrote: listed in its folder's manifest
    (by ``by``, when given) and unchanged since."""
    path = Path(path)
    entry = (_manifest(path.parent) or {}).get(path.name)
    if not isinstance(entry, dict) or not _regular(path) or (by is not None and entry.get("by") != by):
        return False
    try:
        return entry.get("sha256") == sha256_file(path)
    except OSError:
        return False


def _manifest_text(files: dict) -> str:
    payload = {
        "format": MANIFEST_MARK,
        "note": "files embedlab wrote here, with their SHA-256; it replaces "
        "or deletes these (and only these) while they are unchanged",
        "files": dict(sorted(files.items())),
    }
    return json.dumps(payload, indent=2) + "\n"


def record(folder: Path, entries: dict[str, str | None], by: str) -> bool:
    """Update ``folder``'s manifest: each name gets its SHA-256 (``None`` drops the name).
    Returns False, recording nothing, when the folder holds a manifest that is not embedlab's."""
    from embedlab.io.atomic import write_text

    folder = Path(folder)
    files = _manifest(folder)
    if files is None:  # not ours: leave it alone (the files are then simply not recognised)
        return False
    for name, digest in entries.items():
        if digest is None:
            files.pop(name, None)
        else:
            files[name] = {"sha256": digest, "by": by}
    write_text(folder / MANIFEST, _manifest_text(files))
    return True


def _record(paths: Iterable[Path], by: str) -> None:
    """List freshly written files in their folders' manifests (written atomically)."""
    by_folder: dict[Path, dict[str, str | None]] = {}
    for p in paths:
        p = Path(p)
        by_folder.setdefault(p.parent, {})[p.name] = sha256_file(p)
    for folder, entries in by_folder.items():
        record(folder, entries, by)


def remove_owned(folder: Path, names: Iterable[str] | None = None) -> list[str]:
    """Delete from ``folder`` the files its manifest lists (``names`` among them, or all) that
    are unchanged, then their emptied subfolders; returns the names deleted. Nothing unlisted
    or changed is touched, and no link is followed."""
    folder = Path(folder)
    files = _manifest(folder)
    if not files:
        return []
    wanted = set(files) if names is None else set(names) & set(files)
    gone = []
    for name in sorted(wanted):
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts) or len(parts) > 2:
            continue
        path = folder.joinpath(*parts)
        if len(parts) == 2 and (Path(folder / parts[0]).is_symlink() or not (folder / parts[0]).is_dir()):
            continue
        try:
            if _regular(path) and sha256_file(path) == files[name].get("sha256"):
                os.unlink(path)
                gone.append(name)
            elif not os.path.lexists(path):
                gone.append(name)  # already gone: drop it from the list
        except OSError:
            continue
    for sub in {name.split("/")[0] for name in gone if "/" in name}:
        with contextlib.suppress(OSError):
            os.rmdir(folder / sub)  # only when empty
    if gone:
        record(folder, {name: None for name in gone}, by="")
    return gone


def discard_owned_dir(folder: Path) -> bool:
    """Delete the folder embedlab keeps for itself: its listed, unchanged files, its manifest
    once nothing listed is left, then the folder once empty. Returns True when it is gone."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir() or _manifest(folder) is None:
        return False
    remove_owned(folder)
    if not _manifest(folder) and _regular(folder / MANIFEST):
        os.unlink(folder / MANIFEST)
    from embedlab.io.atomic import sweep_stale

    sweep_stale(folder)
    try:
        os.rmdir(folder)
    except OSError:
        return False
    return True


def check_own_dir(folder: Path, what: str, way: str) -> None:
    """A folder embedlab keeps for itself (a checkpoint folder) may be used: absent, or a
    real folder (not a link) holding embedlab's manifest; anything else is refused."""
    folder = Path(folder)
    if folder.is_symlink():
        raise UsageError(
            f"{what} {str(folder)!r} is a symbolic link; embedlab never writes or deletes through a link; {way}"
        )
    if not os.path.lexists(folder):
        return
    if not folder.is_dir():
        raise UsageError(f"{what} {str(folder)!r} exists and is not a folder; {way}")
    if _manifest(folder) is None or not _regular(folder / MANIFEST):
        raise UsageError(
            f"{what} {str(folder)!r} exists and embedlab cannot prove it made it (no record of "
            f"its files); it was left alone; {way}"
        )


def make_own_dir(folder: Path) -> None:
    """Create the folder embedlab keeps for itself (new: ``mkdir`` fails on anything there)
    with an empty manifest; an existing one must pass :func:`check_own_dir`."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(folder)
    except FileExistsError:
        return
    record(folder, {}, by="")


# ---------------------------------------------------------------------------- the checks
def check_file(path: str | os.PathLike, *, force: bool = False, option: str | None = None, html: bool = False) -> None:
    """May embedlab write the file ``path``? New, or a file embedlab wrote (listed unchanged
    in its folder's manifest), or ``force``; never a link or a folder."""
    path = Path(path)
    _refuse_link(path, option)
    if path.is_dir():
        raise _fail(path, option, "is a folder; give the name of a file to write", force_helps=False)
    _check_creatable(path, option)
    if not os.path.lexists(path):
        return
    if not _regular(path):
        raise _fail(path, option, "exists and is not a regular file", force_helps=False)
    if force or (is_recorded(path) and not is_recorded(path, by=RUN_BY)):  # a run's files: Run.save only
        return
    what = "an HTML report embedlab wrote" if html else "a file embedlab wrote"
    raise _fail(path, option, f"exists and is not {what} (or it changed since)")


def _may_replace_file(path: Path, force: bool) -> "callable":
    """What :func:`embedlab.io.atomic.install` asks at the final rename: with ``force`` a
    regular file may go, else only a file embedlab wrote, unchanged; a file that was absent
    at the check and appeared since is never replaced without ``force``."""
    existed = os.path.lexists(path)

    def may_replace(p: Path) -> bool:
        if not _regular(p):
            return False
        return force or (existed and is_recorded(p) and not is_recorded(p, by=RUN_BY))

    return may_replace


def check_export(
    folder: str | os.PathLike, names: Iterable[str], *, force: bool = False, option: str | None = "--out"
) -> None:
    """May embedlab write the files ``names`` into ``folder`` (created if new)?"""
    folder = Path(folder)
    _refuse_link(folder, option)
    if folder.exists() and not folder.is_dir():
        raise _fail(folder, option, "is a file; give a folder for the exported files", force_helps=False)
    _check_creatable(folder / "x", option)
    if _manifest(folder) is None and folder.is_dir():
        raise _fail(folder / MANIFEST, option, "is not embedlab's manifest; move it away", force_helps=False)
    for name in names:
        check_file(folder / name, force=force, option=option)


def _resolved(path: Path) -> Path:
    """``path`` made absolute with its folder's links and ``..`` resolved (its own name kept)."""
    path = Path(os.path.abspath(path))
    return path.parent.resolve() / path.name


def check_run_dir(out: str | os.PathLike, *, force: bool = False, option: str | None = "--out") -> None:
    """May a run be saved into the folder ``out``? New, empty, or a run embedlab can prove it
    wrote (its own files are then replaced, nothing else); a folder holding other files, or a
    run without proof, only with ``force`` (same-named files are replaced, nothing deleted).
    Never a link, a file, or a folder inside another run."""
    out = Path(out)
    _refuse_link(out, option)
    if out.exists() and not out.is_dir():
        raise _fail(out, option, "is a file, not a folder", force_helps=False)
    for parent in _resolved(out).parents:
        if is_run_folder(parent):
            raise _fail(
                out,
                option,
                f"is inside the run {str(parent)!r} (runs are never nested)",
                force_helps=False,
                way="choose a folder outside it",
            )
    _check_creatable(out, option)  # its hidden names (.NAME.checkpoint, temporaries) fit too
    if not out.is_dir() or force or is_owned_run(out):
        return
    if is_run_folder(out):
        raise _fail(
            out,
            option,
            "is an embedlab run whose files embedlab cannot prove it wrote (written by an "
            "older embedlab, or changed since)",
            way="give another path, or --force to write the run into it (files named like the run's "
            "are replaced, nothing is deleted)",
        )
    if any(out.iterdir()):
        raise _fail(
            out,
            option,
            "exists and is not an embedlab run (it holds other files)",
            way="give another path, or --force to write the run into it (files named like the "
            "run's are replaced, others are left alone)",
        )


def run_files_plan(out: Path, force: bool = False) -> tuple[set[str], set[str]]:
    """For saving a run into the existing folder ``out``: (names the new run may replace,
    names of the old run it may delete). Proven run files both; with ``force``, also the
    folder's run.json and weights (replaced, never deleted); a table CSV only when proven."""
    own = own_run_files(out)
    replace = set(own) | ({MANIFEST} if _manifest(out) is not None and _regular(out / MANIFEST) else set())
    if force:  # run.json and the weights only: a claimed table CSV may be the user's file
        replace |= {n for n in ("run.json", "weights.safetensors") if _regular(out / n)}
    return replace, own


def run_may_replace(out: Path, replace: set[str], force: bool) -> "callable":
    """The final-rename check of :meth:`embedlab.run.Run.save`: a name is replaced only if it
    was replaceable at the check and still is (unchanged, or ``force``)."""
    own = own_run_files(out)
    listed = _manifest(out) or {}  # as it was at the check: the new manifest may land first

    def may_replace(p: Path) -> bool:
        if p.name not in replace or not _regular(p):
            return False
        if p.name == MANIFEST:
            return _manifest(p.parent) is not None
        if force:
            return True
        try:
            return p.name in own and listed[p.name].get("sha256") == sha256_file(p)
        except (OSError, KeyError):
            return False

    return may_replace


def check_new(
    path: str | os.PathLike, *, option: str | None = None, way: str = "remove it or choose another --dir"
) -> None:
    """``path`` must not exist at all (what ``plugins new`` creates is never merged into
    anything), must not lie inside an embedlab run or run group, and must be creatable."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise _fail(path, option, "already exists", force_helps=False, way=way)
    for parent in _resolved(path).parents:
        if is_run_folder(parent) or _regular(parent / "group.json") and is_recorded(parent / "group.json"):
            raise _fail(
                path,
                option,
                f"is inside the run {str(parent)!r} (embedlab writes nothing else into a run)",
                force_helps=False,
                way="choose a folder outside it",
            )
    _check_creatable(path, option)


# ---------------------------------------------------------------------------- writing
@contextlib.contextmanager
def owned_file(
    path: str | os.PathLike,
    mode: str = "w",
    *,
    force: bool = False,
    option: str | None = None,
    by: str = "embedlab",
    html: bool = False,
    **kwargs,
) -> Iterator[IO]:
    """Write a file under the rule: checked now, created exclusively, put in place only if
    the path is still new or still embedlab's at that moment, then listed with its SHA-256 in
    its folder's manifest so a later embedlab command may replace it."""
    from embedlab.io.atomic import atomic_file

    path = Path(path)
    check_file(path, force=force, option=option, html=html)
    with atomic_file(path, mode, may_replace=_may_replace_file(path, force), **kwargs) as fh:
        yield fh
    _record([path], by)


def write_owned_html(path: str | os.PathLike, doc: str, *, force: bool = False, option: str | None = None) -> Path:
    """Write an HTML document under the rule; it carries :data:`HTML_MARK` (added if missing)
    and is recorded, so only these exact bytes are later replaced without ``force``."""
    path = Path(path)
    doc = mark_html(doc)
    with owned_file(path, "w", force=force, option=option, by="embedlab report", html=True, encoding="utf-8") as fh:
        fh.write(doc)
    return path


def write_owned_text(
    path: str | os.PathLike, text: str, *, force: bool = False, option: str | None = None, by: str = "embedlab"
) -> Path:
    with owned_file(path, "w", force=force, option=option, by=by, encoding="utf-8", newline="") as fh:
        fh.write(text)
    return Path(path)
