"""numba beside torch (embedlab.io.jit): the cache folder and torch's thread count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from embedlab.io.jit import numba_cache_dir, numba_threads

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="numba's thread count equals torch's on one core")
def test_numba_parallel_code_leaves_torch_thread_count_alone():
    import numba

    @numba.njit(parallel=True)
    def total(x):
        s = 0.0
        for i in numba.prange(x.shape[0]):
            s += x[i]
        return s

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with numba_threads():
            assert total(np.ones(10_000)) == 10_000
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_numba_cache_goes_under_embedlab_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("EMBEDLAB_CACHE", str(tmp_path))
    assert numba_cache_dir() == tmp_path / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert numba_cache_dir() == tmp_path / "mine"


def test_fused_kernels_are_cached_on_disk_for_the_next_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["EMBEDLAB_CACHE"] = str(tmp_path)
    code = (
        "import numpy as np; from embedlab.training.fused_collab import _compile; k = _compile(); "
        "s = np.full(5, -1, np.int32); r = np.empty(3, np.int32); "
        "print(k['collect'](np.array([3, 1, 3], np.int32), 5, s, r, False), r[:2].tolist())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["2", "[1,", "3]"]
    assert list((tmp_path / "numba").rglob("*.nbi")), "no numba cache index written"
