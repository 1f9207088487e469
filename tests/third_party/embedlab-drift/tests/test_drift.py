"""embedlab-drift on embedlab.testing's synthetic run and a same-data run with another seed."""

from __future__ import annotations

import json

from embedlab.testing import invoke, plugin_registered, same_data_other_seed, synthetic_run

import embedlab_drift as plugin


def test_two_seeds_drift_less_than_shuffled_vectors_and_one_run_says_why_not(tmp_path):
    a = synthetic_run(tmp_path / "a")
    same_data_other_seed(a, seed=1, out=tmp_path / "b")
    with plugin_registered(plugin):
        done = invoke(["analyze", tmp_path / "a", tmp_path / "b", "--only", "drift", "--json"])
        assert done.exit_code == 0, done.output
        [result] = json.loads(done.stdout)["several_runs"]
        assert result["error"] is None and 0 < result["metrics"]["item_median_shift_b"] < 1.0
        alone = invoke(["analyze", tmp_path / "a", "--only", "drift", "--json"])
        assert "compares several runs" in json.loads(alone.stdout)["results"][0]["skipped"]
