"""Freezing, discriminative learning rates, the time-cut splits and the ``finetune`` analysis.

The learner tests use a three-group model and check, step by step, the lr each optimizer param
group received under one-cycle against fastai's formula; frozen groups must come out of
training bit-identical (weights, batch-norm statistics) with no optimizer state. The synthetic
scenario plants the situation pretraining is for: a large earlier dataset and a small later
one over the same users and items.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
from torch import nn

import embedlab
from embedlab.runner import run_analyses
from embedlab.errors import UsageError
from embedlab.training import FitConfig, Learner, LRSlice, fit_config, fit_options
from embedlab.training.models import EntityEmbeddingNet

from conftest import data_dir, one_cycle


class Three(nn.Module):
    """Three layer groups, ``a`` -> ``b`` -> ``c`` (earliest first)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a = nn.Parameter(torch.randn(3, generator=g, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(3, generator=g, dtype=torch.float64))
        self.c = nn.Parameter(torch.randn(1, generator=g, dtype=torch.float64))

    def layer_groups(self):
        return {"a": [self.a], "b": [self.b], "c": [self.c]}

    def forward(self, x):
        return x @ self.a + (x**2) @ self.b + self.c


def three_learner(n: int = 40, bs: int = 4) -> Learner:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.3
    return Learner(Three(), (x, y), None, loss_fn=nn.functional.mse_loss, bs=bs, seed=0)


# ---------------------------------------------------------------------------- lr specs
def test_lr_slice_spreads_geometrically_earliest_lowest_and_parses():
    assert LRSlice(1e-3, 1e-5).spread(3) == pytest.approx([1e-5, 1e-4, 1e-3])
    assert LRSlice(1e-3, 1e-5).spread(2) == [1e-5, 1e-3]
    assert LRSlice(1e-3).spread(3) == pytest.approx([1e-4, 1e-4, 1e-3])  # fastai's slice(HI)
    assert LRSlice(1e-3, 1e-5).spread(1) == [1e-3] and LRSlice(1e-3).spread(1) == [1e-3]
    assert LRSlice.parse("1e-3") == 1e-3 and LRSlice.parse("1e-5:1e-3") == LRSlice(1e-3, 1e-5)
    assert LRSlice.parse(":0.01") == LRSlice(0.01) and str(LRSlice(1e-3, 1e-5)) == "1e-05:0.001"
    assert f"{LRSlice(1e-3, 1e-5):.0e}" == "1e-05:1e-03"
    for bad in ("fast", "1e-3:1e-5", "0", "-1:2", "1:"):
        with pytest.raises(UsageError):
            LRSlice.parse(bad)


@pytest.mark.parametrize(
    "spec,want",
    [
        ("1e-4:1e-2", {"a": 1e-4, "b": 1e-3, "c": 1e-2}),
        (":1e-2", {"a": 1e-3, "b": 1e-3, "c": 1e-2}),
        (1e-2, {"a": 1e-2, "b": 1e-2, "c": 1e-2}),
    ],
)
def test_each_param_group_gets_its_lr_at_every_one_cycle_step(spec, want):
    learner = three_learner()  # 10 steps per epoch
    fit = learner.fit(FitConfig(epochs=2, lr=spec, wd=0.0, opt="adamw"), progress=False)
    for name, max_lr in want.items():
        assert len(fit.lrs[name]) == 20
        np.testing.assert_allclose(fit.lrs[name], [one_cycle(s, 20, max_lr) for s in range(20)], rtol=1e-9)
        assert fit.groups[name]["lr"] == pytest.approx(max_lr)


def test_plain_lr_means_slice_when_fine_tuning_pretrained_tables_unless_something_is_frozen():
    opts = fit_options(lr=1e-2)
    defaults = {o.name: o.default for o in opts}
    assert fit_config({**defaults}, opts).lr == 1e-2
    assert fit_config({**defaults, "init_from": "runs/x"}, opts).lr == LRSlice(1e-2)
    assert fit_config({**defaults, "init_from": "runs/x", "lr": 3e-3}, opts).lr == LRSlice(3e-3)
    assert fit_config({**defaults, "init_from": "runs/x", "freeze": "embeddings"}, opts).lr == 1e-2
    assert fit_config({**defaults, "init_from": "runs/x", "lr": LRSlice(1e-2, 1e-2)}, opts).lr == LRSlice(1e-2, 1e-2)
    cfg = fit_config({**defaults, "lr": "1e-5:1e-3", "freeze": "a,b"}, opts)
    assert cfg.lr == LRSlice(1e-3, 1e-5) and cfg.freeze == ("a", "b")
    saved = cfg.to_config()
    assert saved["lr"] == "1e-05:0.001" and saved["freeze"] == ["a", "b"]
    assert FitConfig.from_config(saved).resolved() == cfg
    with pytest.raises(UsageError, match="give one of them"):
        FitConfig(freeze=("a",), freeze_to=1).resolved()


def test_the_cli_lr_option_takes_lo_hi():
    lr = next(o for o in fit_options() if o.name == "lr")
    assert lr.type.convert("1e-5:1e-3", None, None) == LRSlice(1e-3, 1e-5)
    assert lr.type.convert("2e-3", None, None) == 2e-3


# ---------------------------------------------------------------------------- freezing
@pytest.mark.parametrize("opt,mode", [("adamw", "decoupled"), ("adam", "l2"), ("momentum", "decoupled"), ("sgd", "l2")])
def test_frozen_group_is_bit_identical_after_training_with_weight_decay(opt, mode):
    learner = three_learner()
    before = {n: p.detach().clone() for n, p in learner.model.named_parameters()}
    fit = learner.fit(FitConfig(epochs=2, lr=1e-2, wd=0.5, opt=opt, wd_mode=mode, freeze=("a", "b")), progress=False)
    assert torch.equal(learner.model.a, before["a"]) and torch.equal(learner.model.b, before["b"])
    assert not torch.equal(learner.model.c, before["c"])
    assert not learner.model.a.requires_grad and learner.model.a.grad is None
    assert learner.frozen_groups == ["a", "b"] and fit.frozen == ["a", "b"]
    assert list(fit.lrs) == ["c"] and fit.groups["a"] == {"lr": None, "wd": None, "frozen": True, "n_params": 3}
    opt_ = learner.make_optimizer(FitConfig(lr=1e-2, opt=opt, wd_mode=mode))
    assert [g["name"] for g in opt_.param_groups] == ["c"]  # no optimizer state for frozen groups


def test_freeze_unfreeze_freeze_to_follow_fastai():
    learner = three_learner()
    learner.freeze()
    assert learner.frozen_groups == ["a", "b"]
    learner.freeze_to(1)
    assert learner.frozen_groups == ["a"]
    learner.freeze_to(-2)
    assert learner.frozen_groups == ["a"]
    learner.unfreeze()
    assert learner.frozen_groups == []
    with pytest.raises(UsageError, match="no layer group 'head'; its groups are: a, b, c"):
        learner.freeze_groups(["head"])
    with pytest.raises(UsageError, match="has 3 layer groups"):
        learner.freeze_to(4)
    learner.freeze_to(3)
    with pytest.raises(UsageError, match="nothing to train"):
        learner.fit(FitConfig(epochs=3, lr=0.1), progress=False)
    # a config without freeze settings leaves the learner's freezing alone
    learner.freeze_to(1)
    learner.fit(FitConfig(epochs=3, lr=0.1), progress=False)
    assert learner.frozen_groups == ["a"]
    learner.fit(FitConfig(epochs=3, lr=0.1, freeze_to=0), progress=False)
    assert learner.frozen_groups == []


def test_frozen_tabular_body_keeps_batchnorm_statistics_and_optimizer_state_is_absent():
    torch.manual_seed(0)
    model = EntityEmbeddingNet([5, 4], [3, 2], 2, layers=[8, 4], ps=[0.1, 0.1], emb_drop=0.1)
    g = torch.Generator().manual_seed(0)
    cats = torch.stack([torch.randint(0, 5, (64,), generator=g), torch.randint(0, 4, (64,), generator=g)], 1)
    conts = torch.randn(64, 2, generator=g)
    y = cats[:, 0].float() * 0.3 + conts[:, 0]
    learner = Learner(model, (cats, conts, y), None, nn.functional.mse_loss, bs=16)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(("embeds", "body", "bn_cont"))}
    fit = learner.fit(FitConfig(epochs=2, lr=1e-2, wd=0.3, freeze=("embeddings", "body")), progress=False)
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in frozen.items())  # running means/vars included
    assert any(k.startswith("body") and "running_mean" in k for k in frozen) or any("bn_cont" in k for k in frozen)
    assert fit.frozen == ["embeddings", "body"] and list(fit.lrs) == ["head"]


# ---------------------------------------------------------------------------- time-cut splits
def test_time_before_and_after_splits_partition_the_ratings():
    opts = dict(users=100, items=60, ratings=4000, seed=5, time_cut="0.75")
    before = embedlab.load_dataset("synthetic-collab", split="time-before", **opts)
    after = embedlab.load_dataset("synthetic-collab", split="time-after", **opts)
    assert len(before.train) + len(before.valid) == 3000 and len(after.train) + len(after.valid) == 1000
    assert before.valid["timestamp"].max() < after.train["timestamp"].min()
    assert before.train["timestamp"].max() <= before.valid["timestamp"].min()
    assert after.train["timestamp"].max() <= after.valid["timestamp"].min()
    assert after.split["name"] == "time-after" and after.split["rows_before"] == 3000
    cut = after.split["cut_at"]
    dated = embedlab.load_dataset("synthetic-collab", split="time-after", **{**opts, "time_cut": cut})
    assert dated.split["rows_after"] == 1000
    for bad in ("1.5", "yesterday-ish"):
        with pytest.raises(UsageError, match="--time-cut"):
            embedlab.load_dataset("synthetic-collab", split="time-after", **{**opts, "time_cut": bad})


# ---------------------------------------------------------------------------- the scenario
SCENARIO = dict(users=300, items=200, ratings=30000, time_cut="0.9", seed=3)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """Pretrain on the earliest 90% of the ratings, fine-tune on the last 10% (2,700 rows)."""
    tmp = tmp_path_factory.mktemp("ft")
    embedlab.train("synthetic-collab", out=tmp / "src", split="time-before", epochs=5, **SCENARIO)
    embedlab.train(
        "synthetic-collab",
        out=tmp / "ft",
        split="time-after",
        epochs=5,
        init_from=str(tmp / "src"),
        lr="1e-4:5e-3",
        **SCENARIO,
    )
    run = embedlab.load_run(tmp / "ft")
    return tmp, run, run_analyses(run, ["finetune"], {}, render=True)[0]


def test_run_records_init_frozen_groups_and_lrs(scenario):
    tmp, run, _ = scenario
    assert run.meta["init"]["from"] == str((tmp / "src").resolve())
    assert run.meta["init"]["tables"]["item"]["coverage"] > 0.95
    assert run.meta["layer_groups"]["embeddings"]["lr"] == pytest.approx(1e-4)
    assert run.meta["layer_groups"]["biases"]["lr"] == pytest.approx(5e-3)
    assert run.meta["frozen_groups"] == [] and run.config["lr"] == "0.0001:0.005"
    assert run.meta["dataset_info"]["options"]["split"] == "time-after"


def test_pretraining_beats_scratch_with_little_target_data(scenario):
    _, _, result = scenario
    assert result.error is None, result.error
    m = result.metrics
    scratch = m["scratch_valid_rmse"]
    assert m["frozen_valid_rmse"] < 0.8 * scratch and m["discriminative_valid_rmse"] < 0.8 * scratch
    assert m["gain_vs_scratch"] > 0.1
    table = result.tables["strategies (best first)"]
    assert set(table["strategy"]) == {"scratch", "frozen", "full", "discriminative"}
    assert table["valid_rmse"].is_monotonic_increasing
    assert "Winner: pretrained" in result.summary and "better than the runner-up" in result.summary
    assert "pretraining gained" in result.summary


def test_drift_is_zero_when_frozen_and_small_with_discriminative_lrs(scenario):
    _, _, result = scenario
    drift = result.tables["drift from the pretrained vectors"].set_index(["strategy", "table"])
    assert drift.loc[("frozen", "item"), "median drift"] == 0.0
    assert drift.loc[("frozen", "item"), "90th percentile"] == 0.0
    assert drift.loc[("discriminative", "item"), "median drift"] < drift.loc[("full", "item"), "median drift"]
    assert drift.loc[("full", "item"), "median drift"] > 0
    assert "item: moved most (discriminative)" in result.tables
    by_count = result.tables["drift by how often the entity appears in the target"]
    assert {"target count", "entities", "mean drift"} <= set(by_count.columns)
    assert len(result.figures) >= 2  # curves + drift scatter(s)
    assert "The frozen strategy left every pretrained vector exactly as it was" in result.summary


def test_finetune_needs_an_init_and_reproduces_the_run(scenario, synthetic_run):
    from embedlab.registry import analyses

    tmp, run, result = scenario
    from embedlab.analysis import RUN_LEVEL

    assert analyses()["finetune"].applies_to(embedlab.load_run(synthetic_run)) == []
    assert analyses()["finetune"].impl.applies_to(run) == [RUN_LEVEL]
    # the discriminative strategy is the run's own configuration: same seed, same result
    assert result.metrics["discriminative_valid_rmse"] == pytest.approx(run.metrics["valid_rmse"], rel=1e-6)


def test_tabular_scenario_time_cut_and_four_strategies(tmp_path):
    """synthetic-rossmann: pretrain on the first 60% of the days, adapt with 400 later rows."""
    common = dict(n_stores=12, days=200, valid_days=14, seed=2, preset="guo2016", epochs=1, bs=64, time_cut="0.6")
    embedlab.train("synthetic-rossmann", out=tmp_path / "early", split="time-before", train_sample=0, **common)
    run = embedlab.train(
        "synthetic-rossmann",
        out=tmp_path / "late",
        split="time-after",
        train_sample=400,
        init_from=str(tmp_path / "early"),
        **common,
    )
    assert run.split["name"] == "time-after" and run.split["cut_at"] > run.meta["init"]["run"]["split"]["valid_end"]
    tables = run.meta["init"]["tables"]
    assert tables["Store"]["coverage"] == 1.0 and tables["DayOfWeek"]["matched"] == 7
    groups = run.meta["layer_groups"]  # a plain lr with --init-from is fastai's slice(lr)
    assert (groups["embeddings"]["lr"], groups["body"]["lr"], groups["head"]["lr"]) == pytest.approx((1e-4, 1e-4, 1e-3))
    result = run_analyses(embedlab.load_run(tmp_path / "late"), ["finetune"], {}, render=False)[0]
    assert result.error is None, result.error
    table = result.tables["strategies (best first)"].set_index("strategy")
    assert table.loc["discriminative", "lr per group"] == "embeddings: 0.0001, body: 0.0001, head: 0.001"
    assert table.loc["frozen", "lr per group"] == "embeddings: frozen, body: 0.001, head: 0.001"
    assert "400 training rows" in result.summary
    assert result.metrics["discriminative_valid_rmspe"] == pytest.approx(run.metrics["valid_rmspe"], rel=1e-6)


# ---------------------------------------------------------------------------- real data
@pytest.mark.realdata
@pytest.mark.slow
def test_movielens_time_cut_scenario(tmp_path):
    folder = data_dir("ml-100k")
    common = dict(data_dir=str(folder), time_cut="0.5", epochs=3, seed=42)
    embedlab.train("movielens-100k", out=tmp_path / "early", split="time-before", **common)
    embedlab.train(
        "movielens-100k",
        out=tmp_path / "late",
        split="time-after",
        init_from=str(tmp_path / "early"),
        lr="5e-5:5e-3",
        **common,
    )
    result = run_analyses(embedlab.load_run(tmp_path / "late"), ["finetune"], {}, render=False)[0]
    assert result.error is None, result.error
    m = result.metrics
    assert min(m["frozen_valid_rmse"], m["discriminative_valid_rmse"], m["full_valid_rmse"]) < m["scratch_valid_rmse"]
