"""embedlab.testing.assert_trainer_contract: the built-in trainer keeps the contract, and a
trainer that breaks a promise fails with that promise named."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import EmbeddingTable, Run, hookimpl, run_meta
from embedlab.testing import assert_trainer_contract, plugin_registered


def test_the_builtin_collab_trainer_keeps_the_contract(tmp_path):
    run = assert_trainer_contract("collab", workdir=tmp_path)
    assert run.meta["trainer"] == "collab" and set(run.table_names) == {"user", "item"}


class _Unseeded:
    """Draws its vectors from an unseeded generator: two runs with one seed differ."""

    name = "tmp-unseeded"
    kind = "collab"
    options: list = []

    def train(self, dataset, config, progress=True):
        items = np.sort(dataset.train[dataset.roles["item"]].unique())
        vectors = np.random.default_rng().normal(size=(len(items), 2)).astype(np.float32)
        table = EmbeddingTable("item", items, [f"item {i}" for i in items], vectors)
        return Run(run_meta(dataset, self, dict(config), 0, {}, []), {"item": table}, {})


class _Plugin:
    @hookimpl
    def embedlab_register_trainers(self, register):
        register(_Unseeded())


def test_a_trainer_that_ignores_its_seed_fails_naming_the_promise(tmp_path):
    with plugin_registered(_Plugin(), name="tmp-unseeded-plugin"):
        with pytest.raises(AssertionError, match="the same seed trained twice: table 'item' has other vectors"):
            assert_trainer_contract("tmp-unseeded", workdir=tmp_path)
