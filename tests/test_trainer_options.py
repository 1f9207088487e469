"""A trainer's options declared once as a dataclass (embedlab.trainers.options): the flags, the
API's defaults and checks, and run.json's record all come from it."""
from __future__ import annotations

import json
from dataclasses import dataclass

import click
import pytest

import embedlab
from embedlab import hookimpl
from embedlab.errors import UsageError
from embedlab.trainers.options import TrainerOptions, option


@dataclass
class TypedOptions(TrainerOptions):
    n_factors: int = option(5, help="Embedding size.", min=1)
    wd: float = option(0.1, help="Weight decay.", min=0)
    opt: str = option("adamw", choices=("sgd", "adam", "adamw"), help="Optimizer.")
    sparse: bool = option(False, help="Sparse gradients.")
    epochs: int = option(2, flags=("--epochs", "--n-epochs"), min=1, help="Epochs (--n-epochs: its old name).")


def test_flags_defaults_and_types_come_from_the_declaration():
    opts = {o.name: o for o in TypedOptions.click_options()}
    assert list(opts) == ["n_factors", "wd", "opt", "sparse", "epochs"]
    assert opts["n_factors"].opts == ["--n-factors"] and opts["epochs"].opts == ["--epochs", "--n-epochs"]
    assert opts["sparse"].secondary_opts == ["--no-sparse"]
    cmd = click.Command("t", params=list(opts.values()), callback=lambda **kw: kw)
    parsed = cmd.main(["--n-factors", "8", "--n-epochs", "3", "--opt", "SGD", "--sparse"], standalone_mode=False)
    assert TypedOptions.from_config(parsed) == TypedOptions(n_factors=8, wd=0.1, opt="sgd", sparse=True, epochs=3)
    with pytest.raises(click.BadParameter):
        cmd.main(["--n-factors", "0"], standalone_mode=False)


def test_the_api_gets_the_same_defaults_and_checks_as_the_flags():
    assert TypedOptions.from_config({}) == TypedOptions()
    assert TypedOptions.from_config({"n_factors": "7", "seed": 3, "data_dir": "x"}).n_factors == 7
    for bad, word in (({"n_factors": 0}, "n_factors=0"), ({"opt": "lamb"}, "opt='lamb'"),
                      ({"wd": "much"}, "wd='much'"), ({"sparse": "yes"}, "sparse='yes'")):
        with pytest.raises(UsageError, match=word):
            TypedOptions.from_config(bad)
    assert TypedOptions(n_factors=3).record() == {"n_factors": 3, "wd": 0.1, "opt": "adamw", "sparse": False,
                                                  "epochs": 2}


class TypedTrainer:
    """A trainer declared with TypedOptions; it trains with the built-in collab trainer."""

    name, kind = "typed-collab", "collab"
    options = TypedOptions.click_options()

    def train(self, dataset, config, progress=True):
        from embedlab.registry import trainers

        opts = TypedOptions.from_config(config)
        builtin = next(t for t in trainers().values() if t.kind == "collab" and t.name != self.name)
        return builtin.train(dataset, {**config, **opts.record(), "sparse": "on" if opts.sparse else "off"},
                             progress=progress)


class TypedPlugin:
    @hookimpl
    def embedlab_register_trainers(self, register):
        register(TypedTrainer())


def test_a_trainer_declared_by_dataclass_trains_from_the_cli_and_the_api(tmp_path):
    from embedlab.testing import invoke, plugin_registered

    small = ["--users", "30", "--items", "20", "--ratings", "600"]
    with plugin_registered(TypedPlugin(), name="typed-options-test"):
        res = invoke(["train", "synthetic-collab", "--trainer", "typed-collab", *small, "--n-factors", "3",
                      "--n-epochs", "1", "--out", str(tmp_path / "cli"), "-q"])
        assert res.exit_code == 0, res.output
        config = json.loads((tmp_path / "cli" / "run.json").read_text())["config"]
        assert config["n_factors"] == 3 and config["epochs"] == 1
        run = embedlab.train("synthetic-collab", trainer="typed-collab", users=30, items=20, ratings=600,
                             n_factors=4, epochs=1, progress=False)
        assert run.table("item").dim == 4
        with pytest.raises(UsageError, match="n_factors=0"):
            embedlab.train("synthetic-collab", trainer="typed-collab", users=30, items=20, ratings=600,
                           n_factors=0, progress=False)
