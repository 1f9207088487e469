"""Tests for embedlab-dotmf: the trainer contract, checked by embedlab.testing on small
synthetic ratings (a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest

import embedlab
from embedlab.testing import assert_trainer_contract, invoke, plugin_registered, same_data_other_seed, synthetic_run

import embedlab_dotmf as plugin

NAME = "dotmf"


@pytest.fixture
def registered():
    """The plugin, registered for one test (already registered when the package is installed)."""
    with plugin_registered(plugin):
        yield


def test_keeps_the_trainer_contract(registered, tmp_path):
    run = assert_trainer_contract(NAME, workdir=tmp_path)  # train, save/reload, seed, resume, neighbours
    assert run.metrics["valid_loss"] < 2.0


def test_another_seed_trains_other_vectors_on_the_same_data(registered):
    first = synthetic_run(trainer=NAME)
    second = same_data_other_seed(first, seed=1)
    assert second.meta["dataset_info"] == first.meta["dataset_info"]
    assert not np.array_equal(first.table("item").vectors, second.table("item").vectors)


def test_installing_it_changes_no_default(registered, tmp_path):
    assert synthetic_run().meta["trainer"] != NAME  # the built-in trainer, unless asked for
    helped = invoke(["train", "synthetic-collab", "--trainer", NAME, "--help"])
    assert helped.exit_code == 0 and "--n-factors" in helped.output
    found = invoke(
        ["lr-find", "synthetic-collab", "--trainer", NAME, "--users", "40", "--items", "30", "--ratings", "800", "-q"]
    )
    assert found.exit_code == 0, found.output
    assert (
        embedlab.train("synthetic-collab", trainer=NAME, users=40, items=30, ratings=800, epochs=1).meta["trainer"]
        == NAME
    )
