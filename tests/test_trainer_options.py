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
    ranks: int = option(1, min=1, section="distributed", help="Processes (listed under Distributed).")


def test_flags_defaults_and_types_come_from_the_declaration():
    opts = {o.name: o for o in TypedOptions.click_options()}
    assert list(opts) == ["n_factors", "wd", "opt", "sparse", "epochs", "ranks"]
    assert opts["n_factors"].opts == ["--n-factors"] and opts["epochs"].opts == ["--epochs", "--n-epochs"]
    assert opts["sparse"].secondary_opts == ["--no-sparse"]
    cmd = click.Command("t", params=list(opts.values()), callback=lambda **kw: kw)
    parsed = cmd.main(["--n-factors", "8", "--n-epochs", "3", "--opt", "SGD", "--sparse"], standalone_mode=False)
    assert TypedOptions.from_config(parsed) == TypedOptions(n_factors=8, wd=0.1, opt="sgd", sparse=True, epochs=3)
    assert opts["ranks"].section == "Distributed" and opts["n_factors"].section == "Model"
    with pytest.raises(click.BadParameter):
        cmd.main(["--n-factors", "0"], standalone_mode=False)


def test_the_api_gets_the_same_defaults_and_checks_as_the_flags():
    assert TypedOptions.from_config({}) == TypedOptions()
    assert TypedOptions.from_config({"n_factors": "7", "seed": 3, "data_dir": "x"}).n_factors == 7
    for bad, word in (
        ({"n_factors": 0}, "n_factors=0"),
        ({"opt": "lamb"}, "opt='lamb'"),
        ({"wd": "much"}, "wd='much'"),
        ({"sparse": "yes"}, "sparse='yes'"),
    ):
        with pytest.raises(UsageError, match=word):
            TypedOptions.from_config(bad)
    assert TypedOptions(n_factors=3).record() == {
        "n_factors": 3,
        "wd": 0.1,
        "opt": "adamw",
        "sparse": False,
        "epochs": 2,
        "ranks": 1,
    }


class TypedTrainer:
    """A trainer declared with TypedOptions; it trains with the built-in collab trainer."""

    name, kind = "typed-collab", "collab"
    options = TypedOptions  # the registry derives the flags (TypedOptions.click_options())

    def train(self, dataset, config, progress=True):
        from embedlab.registry import trainers

        opts = TypedOptions.from_config(config)
        builtin = next(t for t in trainers().values() if t.kind == "collab" and t.name != self.name)
        return builtin.train(
            dataset, {**config, **opts.record(), "sparse": "on" if opts.sparse else "off"}, progress=progress
        )


class TypedPlugin:
    @hookimpl
    def embedlab_register_trainers(self, register):
        register(TypedTrainer())


def test_a_trainer_declared_by_dataclass_trains_from_the_cli_and_the_api(tmp_path):
    from embedlab.testing import invoke, plugin_registered

    small = ["--users", "30", "--items", "20", "--ratings", "600"]
    with plugin_registered(TypedPlugin(), name="typed-options-test"):
        res = invoke(
            [
                "train",
                "synthetic-collab",
                "--trainer",
                "typed-collab",
                *small,
                "--n-factors",
                "3",
                "--n-epochs",
                "1",
                "--out",
                str(tmp_path / "cli"),
                "-q",
            ]
        )
        assert res.exit_code == 0, res.output
        config = json.loads((tmp_path / "cli" / "run.json").read_text())["config"]
        assert config["n_factors"] == 3 and config["epochs"] == 1
        # --trainer (read by click's parser, so `--trainer=NAME` works too) chooses whose options --help lists
        helped = invoke(["train", "synthetic-collab", "--trainer=typed-collab", "--help"]).output
        assert "--ranks" in helped.split("Distributed:")[1].split("Output:")[0] and "--n-epochs" in helped
        assert "--n-factors" in invoke(["train", "synthetic-collab", "--help"]).output
        assert "--ranks" not in invoke(["train", "synthetic-collab", "--help"]).output
        run = embedlab.train(
            "synthetic-collab",
            trainer="typed-collab",
            users=30,
            items=20,
            ratings=600,
            n_factors=4,
            epochs=1,
            progress=False,
        )
        assert run.table("item").dim == 4
        with pytest.raises(UsageError, match="n_factors=0"):
            embedlab.train(
                "synthetic-collab", trainer="typed-collab", users=30, items=20, ratings=600, n_factors=0, progress=False
            )


def test_the_built_in_trainers_derive_flags_defaults_and_record_from_one_declaration():
    from embedlab.registry import get_trainer
    from embedlab.trainers.collab import CollabOptions, CollabTrainer
    from embedlab.trainers.options import FitOptions
    from embedlab.trainers.tabular import TabularOptions

    for name, cls in (("collab", CollabOptions), ("tabular", TabularOptions)):
        entry = get_trainer(name)
        assert entry.declaration is cls and issubclass(cls, FitOptions)
        assert [o.name for o in entry.options] == cls.names()  # the flags, in the declaration's order
        assert {"epochs", "lr", "wd", "opt", "seed", "init_from", "threads"} <= set(cls.names())
        lr = next(o for o in entry.options if o.name == "lr")
        assert lr.fit_defaults == cls.fit_defaults and lr.section == "Optimisation"
    opts = {o.name: o for o in get_trainer("collab").options}
    assert opts["epochs"].default is None and "hybrid: 7" in opts["epochs"].help  # the preset's
    assert opts["shard_data"].section == "Distributed" and opts["shard_data"].is_flag
    config = CollabTrainer().default_config()
    assert set(CollabOptions.names()) <= set(config) and config["n_factors"] == 100 and config["epochs"] == 5


@pytest.mark.parametrize(
    "given, word",
    [
        ({"n_factors": 0}, "n_factors=0"),
        ({"opt": "lamb"}, "opt='lamb'"),
        ({"model": "mlp"}, "model='mlp'"),
        ({"y_range": "low"}, "y_range='low'"),
        ({"shard_data": "yes"}, "shard_data='yes'"),
    ],
)
def test_the_api_checks_the_built_in_collab_options_as_its_flags(given, word):
    with pytest.raises(UsageError, match=word):
        embedlab.train("synthetic-collab", users=30, items=20, ratings=600, epochs=1, progress=False, **given)


def test_the_tabular_declaration_checks_and_records():
    from embedlab.trainers.tabular import TabularOptions

    for given, word in (
        ({"loss": "huber"}, "loss='huber'"),
        ({"train_sample": -1}, "train_sample=-1"),
        ({"categorical_encoding": "hash"}, "categorical_encoding='hash'"),
    ):
        with pytest.raises(UsageError, match=word):
            TabularOptions.from_config(given)
    opts = TabularOptions.from_config(
        {"layers": [100, 50], "emb_size": {"Store": 10}, "batchnorm": False, "y_range": [0, 12], "lr": "1e-4:1e-2"}
    )
    record = opts.record()
    assert record["layers"] == [100, 50] and record["emb_size"] == {"Store": 10}  # free text is the trainer's
    assert record["y_range"] == (0.0, 12.0) and record["batchnorm"] is False and record["epochs"] is None
    assert str(record["lr"]) == "0.0001:0.01"


def test_a_keyword_no_option_declares_is_a_one_line_error_before_loading(tmp_path):
    with pytest.raises(UsageError, match=r"n_factor=8: .*take no option 'n_factor'; did you mean n_factors=\?"):
        embedlab.train("synthetic-collab", n_factor=8, progress=False)
    dataset = embedlab.load_dataset("synthetic-collab", users=30, items=20, ratings=600)
    with pytest.raises(UsageError, match="epoch=1: trainer 'collab' takes no option 'epoch'; did you mean epochs="):
        embedlab.train(dataset, epoch=1, progress=False)
    with pytest.raises(UsageError, match="n_factor=3: "):  # a run group too, before any replicate starts
        embedlab.train("synthetic-collab", seeds=[1, 2], out=tmp_path / "group", n_factor=3, progress=False)
    assert not (tmp_path / "group").exists()


#: every flag the built-in trainers declared as click options before the typed declarations
#: (fde07abd): a public contract, so each still parses (the declaration derives them from field names)
FLAGS_BEFORE_THE_DECLARATIONS = {
    "collab": "--preset --features --sparse --model --layers --ps --emb-drop --n-factors --reg --bias-wd --y-range --threads --device "
    "--shard-data --kernel --init-std",
    "tabular": "--preset --layers --ps --emb-drop --emb-size --batchnorm --no-batchnorm --loss --y-range --init-std "
    "--rmspe-scale --no-rmspe-scale --train-sample --exclude --categorical-encoding --threads",
    "fit": "--epochs --opt --lr --wd --wd-mode --momentum --betas --eps --schedule --bs --seed --freeze --freeze-to "
    "--init-from --init-table --init-keys",
}


@pytest.mark.parametrize("trainer", ["collab", "tabular"])
def test_every_flag_users_could_type_before_still_parses(trainer):
    from embedlab.trainers.collab import CollabOptions
    from embedlab.trainers.tabular import TabularOptions

    declared = (CollabOptions if trainer == "collab" else TabularOptions).click_options()
    flags = {f for o in declared for f in [*o.opts, *o.secondary_opts]}
    missing = set((FLAGS_BEFORE_THE_DECLARATIONS[trainer] + " " + FLAGS_BEFORE_THE_DECLARATIONS["fit"]).split()) - flags
    assert not missing, f"flags users could type before, gone: {sorted(missing)}"
