"""Tests for embedlab.io.download: checksummed fetch, safe extraction, dataset cache reuse."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import socket
import stat
import tarfile
import threading
import uuid
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from embedlab.io import download
from embedlab.io.download import Archive, cache_dir, ensure_dataset, fetch, file_digest, safe_extract
from embedlab.errors import DataError, EmbedlabError
from embedlab_datasets.movielens import MOVIELENS_ARCHIVES, MOVIELENS_SUBDIRS

U_DATA = b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n"
U_ITEM = b"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


class Server:
    def __init__(self, root: Path, url: str, requests: list[str]) -> None:
        self.root = root
        self.url = url
        self.requests = requests

    def publish(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return f"{self.url}/{name}"


@pytest.fixture
def server(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield Server(root, f"http://127.0.0.1:{httpd.server_address[1]}", requests)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("EMBEDLAB_CACHE", str(path))
    return path


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def ml100k_zip() -> bytes:
    return zip_bytes({"ml-100k/": b"", "ml-100k/u.data": U_DATA, "ml-100k/u.item": U_ITEM})


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")) if folder.exists() else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# cache_dir, file_digest, Archive
# --------------------------------------------------------------------------------------------


def test_cache_dir_uses_env_and_creates_it(cache: Path) -> None:
    assert not cache.exists()
    assert cache_dir() == cache
    assert cache.is_dir()


def test_cache_dir_default_is_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMBEDLAB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "embedlab"
    assert cache_dir().is_dir()


def test_file_digest(tmp_path: Path) -> None:
    data = os.urandom(3 * download.CHUNK_SIZE // 2)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert file_digest(path, "sha256") == sha256(data)
    assert file_digest(path, "md5") == md5(data)
    with pytest.raises(ValueError):
        file_digest(path, "sha1")


def test_archive_validates_fields() -> None:
    a = Archive(url="http://x/a.zip", filename="a.zip", sha256="AB" * 32)
    assert a.sha256 == "ab" * 32 and a.pinned == {"sha256": "ab" * 32}
    with pytest.raises(ValueError):
        Archive(url="http://x/a.zip", filename="a.zip", md5="abc")
    with pytest.raises(ValueError):
        Archive(url="http://x/a.zip", filename="../a.zip", md5="a" * 32)


def test_errors_are_click_exceptions() -> None:
    assert issubclass(DataError, EmbedlabError)


# --------------------------------------------------------------------------------------------
# fetch + ensure_dataset: the good path
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["sha256", "md5"])
def test_good_zip_downloads_verifies_extracts_and_is_reused(server: Server, cache: Path, algo: str) -> None:
    data = ml100k_zip()
    url = server.publish("ml-100k.zip", data)
    digest = sha256(data) if algo == "sha256" else md5(data)
    archive = Archive(url=url, filename="ml-100k.zip", **{algo: digest})

    folder = ensure_dataset(archive, "ml-100k")
    assert folder == cache / "datasets" / "ml-100k" / "ml-100k"
    assert (folder / "u.data").read_bytes() == U_DATA
    assert (folder / "u.item").read_bytes() == U_ITEM
    assert (cache / "downloads" / "ml-100k.zip").read_bytes() == data
    assert (cache / "datasets" / "ml-100k" / download.MARKER_NAME).is_file()
    assert server.requests == ["/ml-100k.zip"]
    # No leftover temporary files or folders anywhere in the cache.
    assert not [p for p in all_files(cache) if p.name.startswith(".") and "ml-100k" in p.name]

    assert ensure_dataset(archive, "ml-100k") == folder
    assert fetch(archive) == cache / "downloads" / "ml-100k.zip"
    assert server.requests == ["/ml-100k.zip"]


def test_tar_gz_dataset(server: Server, cache: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, payload in {"ds/a.csv": b"x,y\n1,2\n", "ds/sub/b.csv": b"z\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    data = buf.getvalue()
    archive = Archive(url=server.publish("ds.tar.gz", data), filename="ds.tar.gz", sha256=sha256(data))
    folder = ensure_dataset(archive, "ds")
    assert folder == cache / "datasets" / "ds" / "ds"
    assert (folder / "sub" / "b.csv").read_bytes() == b"z\n"


def test_large_download_with_progress_bar(server: Server, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = os.urandom(1_500_000)
    archive = Archive(url=server.publish("big.bin", data), filename="big.bin", md5=md5(data))
    path = fetch(archive, progress=True)
    assert path.read_bytes() == data
    assert capsys.readouterr().out == ""  # progress goes to stderr, never stdout


def test_corrupt_cached_file_is_downloaded_again(server: Server, cache: Path) -> None:
    data = ml100k_zip()
    archive = Archive(url=server.publish("ml-100k.zip", data), filename="ml-100k.zip", sha256=sha256(data))
    (cache / "downloads").mkdir(parents=True)
    (cache / "downloads" / "ml-100k.zip").write_bytes(b"truncated")
    assert fetch(archive, progress=False).read_bytes() == data
    assert server.requests == ["/ml-100k.zip"]


def test_half_extracted_folder_is_not_reused(server: Server, cache: Path) -> None:
    data = ml100k_zip()
    archive = Archive(url=server.publish("ml-100k.zip", data), filename="ml-100k.zip", md5=md5(data))
    stale = cache / "datasets" / "ml-100k" / "ml-100k"
    stale.mkdir(parents=True)
    (stale / "u.data").write_bytes(b"half")  # no marker: must not be trusted
    folder = ensure_dataset(archive, "ml-100k")
    assert (folder / "u.data").read_bytes() == U_DATA


def test_missing_subdir_is_an_error(server: Server) -> None:
    data = ml100k_zip()
    archive = Archive(url=server.publish("ml-100k.zip", data), filename="ml-100k.zip", md5=md5(data))
    with pytest.raises(DataError, match="no folder ml-1m/"):
        ensure_dataset(archive, "ml-1m")


# --------------------------------------------------------------------------------------------
# fetch: refusals
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["sha256", "md5"])
def test_checksum_mismatch_leaves_nothing(server: Server, cache: Path, algo: str) -> None:
    good = ml100k_zip()
    bad = good[:-10] + b"\0" * 10
    url = server.publish("ml-100k.zip", bad)
    expected = sha256(good) if algo == "sha256" else md5(good)
    actual = sha256(bad) if algo == "sha256" else md5(bad)
    archive = Archive(url=url, filename="ml-100k.zip", **{algo: expected})

    with pytest.raises(DataError) as info:
        ensure_dataset(archive, "ml-100k")
    message = info.value.format_message()
    assert url in message and expected in message and actual in message
    assert "\n" not in message
    assert all_files(cache / "downloads") == []
    assert all_files(cache / "datasets") == []


def test_no_pinned_checksum_is_refused(server: Server, cache: Path) -> None:
    url = server.publish("ml-100k.zip", ml100k_zip())
    archive = Archive(url=url, filename="ml-100k.zip")
    with pytest.raises(DataError, match="--data-dir") as info:
        fetch(archive)
    assert url in info.value.format_message()
    assert server.requests == []
    assert all_files(cache / "downloads") == []


def test_network_failure_mentions_data_dir(cache: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/ml-100k.zip"
    archive = Archive(url=url, filename="ml-100k.zip", md5="0" * 32)
    with pytest.raises(DataError, match="--data-dir") as info:
        fetch(archive, progress=False)
    assert url in info.value.format_message()
    assert all_files(cache / "downloads") == []


def test_http_404_is_a_data_error(server: Server, cache: Path) -> None:
    archive = Archive(url=f"{server.url}/missing.zip", filename="missing.zip", md5="0" * 32)
    with pytest.raises(DataError, match="HTTP 404.*--data-dir"):
        fetch(archive)
    assert all_files(cache / "downloads") == []


# --------------------------------------------------------------------------------------------
# safe_extract: hostile archives
# --------------------------------------------------------------------------------------------

EVIL_ABS = f"/tmp/embedlab-test-evil-{uuid.uuid4().hex}"


def _zip_with_info(info: zipfile.ZipInfo, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok/readme.txt", b"fine")
        zf.writestr(info, data)
    return buf.getvalue()


def _tar_with(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def _tarinfo(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def _zip_symlink() -> bytes:
    info = zipfile.ZipInfo("ok/link")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip_with_info(info, b"/etc/passwd")


def _zip_device() -> bytes:
    info = zipfile.ZipInfo("ok/dev")
    info.create_system = 3
    info.external_attr = (stat.S_IFCHR | 0o666) << 16
    return _zip_with_info(info, b"")


HOSTILE = {
    "zip-dotdot": ("a.zip", lambda: zip_bytes({"ok/x": b"1", "../evil.txt": b"evil"}), "../evil.txt"),
    "zip-nested-dotdot": ("a.zip", lambda: zip_bytes({"ok/../../evil.txt": b"evil"}), "ok/../../evil.txt"),
    "zip-absolute": ("a.zip", lambda: zip_bytes({EVIL_ABS: b"evil"}), EVIL_ABS),
    "zip-symlink": ("a.zip", _zip_symlink, "ok/link"),
    "zip-device": ("a.zip", _zip_device, "ok/dev"),
    "zip-too-big": ("a.zip", lambda: zip_bytes({"ok/big": b"\0" * 5000}), "5000 bytes"),
    "tar-dotdot": ("a.tar", lambda: _tar_with((_tarinfo("../x"), b"evil")), "../x"),
    "tar-absolute": ("a.tar", lambda: _tar_with((_tarinfo(EVIL_ABS), b"evil")), EVIL_ABS),
    "tar-symlink": (
        "a.tar",
        lambda: _tar_with((_tarinfo("ok/f"), b"1"), (_tarinfo("ok/link", tarfile.SYMTYPE, "/etc/passwd"), None)),
        "ok/link",
    ),
    "tar-hardlink": (
        "a.tar",
        lambda: _tar_with((_tarinfo("ok/f"), b"1"), (_tarinfo("ok/hard", tarfile.LNKTYPE, "ok/f"), None)),
        "ok/hard",
    ),
    "tar-device": ("a.tar", lambda: _tar_with((_tarinfo("ok/dev", tarfile.CHRTYPE), None)), "ok/dev"),
    "tgz-too-big": ("a.tgz", None, "5000 bytes"),
}


def _tgz_too_big() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("ok/big")
        info.size = 5000
        tf.addfile(info, io.BytesIO(b"\0" * 5000))
    return buf.getvalue()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused(tmp_path: Path, case: str) -> None:
    filename, build, expected_in_message = HOSTILE[case]
    data = (build or _tgz_too_big)()
    work = tmp_path / "work"
    work.mkdir()
    archive_path = work / filename
    archive_path.write_bytes(data)
    target = work / "out" / "target"

    with pytest.raises(DataError) as info:
        safe_extract(archive_path, target, max_bytes=1000)
    message = info.value.format_message()
    assert str(archive_path) in message
    assert expected_in_message in message
    assert not target.exists()
    assert all_files(work / "out") == []  # no temporary folder left beside the target
    assert [p.name for p in work.iterdir()] == [filename] + (["out"] if (work / "out").exists() else [])
    assert not any("evil" in p.name for p in tmp_path.rglob("*"))
    assert not Path(EVIL_ABS).exists()


def test_refused_archive_keeps_existing_target(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "old.txt").write_text("old")
    archive_path = tmp_path / "a.zip"
    archive_path.write_bytes(zip_bytes({"new.txt": b"new", "../evil.txt": b"evil"}))
    with pytest.raises(DataError):
        safe_extract(archive_path, target, max_bytes=1000)
    assert [p.name for p in target.iterdir()] == ["old.txt"]


def test_lying_sizes_are_caught_while_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Disable the up-front check to show the byte counter alone stops the extraction.
    monkeypatch.setattr(download, "_check_total", lambda *args: None)
    archive_path = tmp_path / "a.zip"
    archive_path.write_bytes(zip_bytes({"d/a": b"\0" * 800, "d/b": b"\0" * 800}))
    target = tmp_path / "out" / "target"
    with pytest.raises(DataError, match="d/b"):
        safe_extract(archive_path, target, max_bytes=1000)
    assert all_files(tmp_path / "out") == []


def test_safe_extract_replaces_existing_target(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "old.txt").write_text("old")
    archive_path = tmp_path / "a.zip"
    archive_path.write_bytes(zip_bytes({"new/x.txt": b"new"}))
    assert safe_extract(archive_path, target, max_bytes=1000) == target
    assert [p.relative_to(target).as_posix() for p in all_files(target)] == ["new", "new/x.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "target"]


def test_damaged_and_unknown_archives(tmp_path: Path) -> None:
    bad = tmp_path / "a.zip"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match="damaged"):
        safe_extract(bad, tmp_path / "t", max_bytes=1000)
    odd = tmp_path / "a.rar"
    odd.write_bytes(b"x")
    with pytest.raises(DataError, match="unknown archive type"):
        safe_extract(odd, tmp_path / "t", max_bytes=1000)
    assert not (tmp_path / "t").exists()


# --------------------------------------------------------------------------------------------
# Interrupted extraction
# --------------------------------------------------------------------------------------------


def _interrupt_on_second_file(monkeypatch: pytest.MonkeyPatch) -> None:
    real = download._copy_stream
    calls = []

    def flaky(src, dst, budget):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            dst.write(b"partial")
            raise KeyboardInterrupt
        return real(src, dst, budget)

    monkeypatch.setattr(download, "_copy_stream", flaky)


def test_interrupted_extraction_leaves_no_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive_path = tmp_path / "a.zip"
    archive_path.write_bytes(ml100k_zip())
    out = tmp_path / "out"
    _interrupt_on_second_file(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        safe_extract(archive_path, out / "target", max_bytes=10_000)
    assert all_files(out) == []


def test_interrupted_dataset_is_extracted_again(server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = ml100k_zip()
    archive = Archive(url=server.publish("ml-100k.zip", data), filename="ml-100k.zip", sha256=sha256(data))
    with monkeypatch.context() as m:
        _interrupt_on_second_file(m)
        with pytest.raises(KeyboardInterrupt):
            ensure_dataset(archive, "ml-100k")
    assert all_files(cache / "datasets") == []
    folder = ensure_dataset(archive, "ml-100k")
    assert (folder / "u.item").read_bytes() == U_ITEM
    assert server.requests == ["/ml-100k.zip"]  # the verified download was kept


# --------------------------------------------------------------------------------------------
# The pinned MovieLens table
# --------------------------------------------------------------------------------------------


def test_movielens_archives_are_pinned_or_say_why_not() -> None:
    assert set(MOVIELENS_ARCHIVES) == {
        "movielens-100k",
        "movielens-latest-small",
        "movielens-1m",
        "movielens-25m",
        "movielens-32m",
    }
    assert set(MOVIELENS_SUBDIRS) == set(MOVIELENS_ARCHIVES)
    for key, archive in MOVIELENS_ARCHIVES.items():
        assert archive.url.startswith("https://files.grouplens.org/datasets/movielens/"), key
        assert archive.url.endswith("/" + archive.filename), key
        assert archive.filename == MOVIELENS_SUBDIRS[key] + ".zip", key
        assert archive.source, key
        if archive.md5 is not None:
            assert len(archive.md5) == 32 and int(archive.md5, 16) >= 0, key
        if archive.sha256 is not None:
            assert len(archive.sha256) == 64 and int(archive.sha256, 16) >= 0, key
        if archive.md5 is None and archive.sha256 is None:
            assert "no published checksum found" in archive.source, key
    assert "rolling" in MOVIELENS_ARCHIVES["movielens-latest-small"].source


def test_download_module_knows_no_dataset() -> None:
    # the archive table is the dataset plugin's; the core keeps only the generic machinery
    text = Path(download.__file__).read_text(encoding="utf-8").lower()
    assert "movielens" not in text and "grouplens" not in text
    assert not hasattr(download, "MOVIELENS_ARCHIVES")


def test_every_movielens_dataset_fetches_a_pinned_archive() -> None:
    from embedlab.registry import datasets

    names = {n for n in datasets() if n.startswith("movielens-")}
    assert names == set(MOVIELENS_ARCHIVES)
