"""numba in a process that also runs torch: where compiled code is cached, how its threads wait.

:func:`configure_numba` is called before embedlab's own numba code (the fused collab step) and
before umap-learn is imported (:func:`embedlab.toolkit.projection.import_umap`):

* **cache**: numba's on-disk cache goes to ``<embedlab cache>/numba`` (``$EMBEDLAB_CACHE``,
  default ``~/.cache/embedlab``; see :func:`embedlab.io.download.cache_dir`) unless
  ``NUMBA_CACHE_DIR`` is set, so functions compiled with ``cache=True`` (the fused step's
  kernels, umap-learn's code imported through ``import_umap``) are compiled once per machine
  and loaded afterwards, also where the installed packages' folders are read-only;
* **threads**: numba's parallel code (UMAP's layout, pynndescent) runs on its OpenMP layer,
  the same GNU OpenMP runtime torch uses, and sets that runtime's thread count to all cores.
  torch then runs with every core too, whatever ``--threads`` said: measured on 2 loaded cores,
  a 1-thread torch loop ran 18x slower after a numba-parallel call in the same process. Wrap
  numba-parallel code in :func:`numba_threads` (``umap_layout`` does), which restores torch's
  thread count afterwards (measured: back to 1.0x). :func:`configure_numba` also sets
  ``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP workers sleep instead of spinning; measured to
  remove the slowdown too) unless set, which takes effect only where the OpenMP runtime is not
  loaded yet (numba used before torch is imported).

Nothing here imports numba or torch at module level (the CLI starts without them).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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
    if "torch" not in sys.modules:  # else the runtime is loaded: the variable would only reach children
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    path = numba_cache_dir()
    if path is None:
        return
    os.environ.setdefault("NUMBA_CACHE_DIR", str(path))
    config = sys.modules.get("numba.core.config")
    if config is not None:  # numba already imported: its config read the environment then
        config.CACHE_DIR = str(path)


@contextmanager
def numba_threads() -> Iterator[None]:
    """Around numba-parallel code: torch's thread count (when torch is loaded) is what it was
    before, afterwards (numba's OpenMP layer sets the shared runtime's to all cores)."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        if torch is not None and before is not None and torch.get_num_threads() != before:
            torch.set_num_threads(before)
