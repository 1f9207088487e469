"""numba in a process that also runs torch: where compiled code is cached, how its threads wait.

:func:`configure_numba` is called before embedlab's own numba code (the fused collab step) and
before umap-learn is imported (:func:`embedlab.toolkit.projection.import_umap`):

* **cache**: numba's on-disk cache goes to ``<embedlab cache>/numba`` (``$EMBEDLAB_CACHE``,
  default ``~/.cache/embedlab``; see :func:`embedlab.io.download.cache_dir`) unless
  ``NUMBA_CACHE_DIR`` is set, so functions compiled with ``cache=True`` (the fused step's
  kernels, umap-learn's code imported through ``import_umap``) are compiled once per machine
  and loaded afterwards, also where the installed packages' folders are read-only;
* **threads**: numba's parallel code (UMAP's layout, pynndescent) runs on a threading layer
  whose workers, by default, keep spinning after each parallel region. In the same process as
  torch, whose own OpenMP workers then compete with them for the cores, later torch work was
  observed 10-20x slower. ``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP workers sleep) is set for
  numba's OpenMP layer and ``KMP_BLOCKTIME=0`` for an Intel OpenMP runtime, unless set already,
  before numba starts its threads; torch's runtime, initialised when torch was imported, is
  not changed.

Nothing here imports numba or torch at module level (the CLI starts without them).
"""
from __future__ import annotations

import os
from pathlib import Path

_DONE = False


def numba_cache_dir() -> Path | None:
    """Where numba caches compiled code: ``$NUMBA_CACHE_DIR`` if set, else
    ``<embedlab cache>/numba``; None when neither can be created (numba's default applies)."""
    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        return Path(env)
    try:
        from embedlab.io.download import cache_dir

        path = cache_dir() / "numba"
        path.mkdir(parents=True, exist_ok=True)
        return path
    except Exception:  # noqa: BLE001 - an unwritable cache only costs compile time
        return None


def configure_numba() -> None:
    """Set numba's cache folder and the idle policy of its worker threads (once a process)."""
    global _DONE
    if _DONE:
        return
    _DONE = True
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("KMP_BLOCKTIME", "0")
    path = numba_cache_dir()
    if path is None:
        return
    os.environ.setdefault("NUMBA_CACHE_DIR", str(path))
    import sys

    config = sys.modules.get("numba.core.config")
    if config is not None:  # numba already imported: its config read the environment then
        config.CACHE_DIR = str(path)
