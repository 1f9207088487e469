"""Sparse embedding gradients (``--sparse auto|on|off``): the rule, the optimizer, lazy decay.

Sparse mode cannot equal dense mode (its Adam moments and weight decay are lazy), so these
tests check what it promises instead: it learns the planted truth, ``auto`` leaves small
sets exactly on the dense path, the optimizer is the configured one's sparse form with the
Learner's layer groups, frozen tables stay bit-identical, and weight decay touches only the
rows a batch looked up, by exactly the documented amount.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from datasets import synthetic_collab as S
from embedlab import training as L
from embedlab.cli import make_cli
from embedlab.errors import UsageError
from embedlab.training import FitConfig, Learner, resolve_sparse
from embedlab.training.models import DotBias
from embedlab.trainers.collab import CollabTrainer, _row_l2

DATA = {"users": 200, "items": 120, "ratings": 12000}


@pytest.fixture(scope="module")
def ds():
    return S.load(**DATA)


# ---------------------------------------------------------------- the auto rule
def test_auto_turns_sparse_on_strictly_above_the_threshold():
    t = L.SPARSE_AUTO_PARAMS
    assert resolve_sparse("auto", t, "adamw") == (False, None)
    assert resolve_sparse("auto", t + 1, "adamw") == (True, None)
    assert resolve_sparse("on", 10, "adamw") == (True, None)
    assert resolve_sparse("off", 10 * t, "adamw") == (False, None)
    for opt in ("adam", "sgd"):
        assert resolve_sparse("auto", t + 1, opt) == (True, None)


def test_optimizers_without_a_sparse_form_stay_dense_on_auto_and_refuse_on():
    for opt in ("momentum", "rmsprop"):
        assert resolve_sparse("auto", 10 * L.SPARSE_AUTO_PARAMS, opt) == (False, None)
        with pytest.raises(UsageError, match=f"--sparse on --opt {opt}"):
            resolve_sparse("on", 10, opt)


def test_nccl_falls_back_to_dense_with_a_notice_gloo_does_not():
    on, notice = resolve_sparse("on", 10, "adamw", backend="nccl")
    assert not on and "nccl" in notice and "dense" in notice
    assert resolve_sparse("on", 10, "adamw", backend="gloo") == (True, None)


def test_trainer_auto_picks_dense_for_small_tables_and_sparse_for_big_ones(ds):
    """The rule counts (users + items) x (factors + 1) table parameters: 320 entities x 9
    is dense, 320 x 16001 (5.1M, no big data needed) is sparse."""
    trainer = CollabTrainer()
    n = len(ds.entities["user"]) + len(ds.entities["item"])
    small = {**trainer.default_config(), "n_factors": 8}
    k_big = L.SPARSE_AUTO_PARAMS // n  # (k_big + 1) * n > threshold >= k_big * n
    big = {**trainer.default_config(), "n_factors": k_big}
    assert (k_big + 1) * n > L.SPARSE_AUTO_PARAMS
    _, _, model, learner, _ = trainer._prepare(ds, small, progress=False)
    assert not model.sparse and not model.user_emb.sparse
    assert isinstance(learner.make_optimizer(L.fit_config(small, trainer.options)), torch.optim.AdamW)
    _, _, model, learner, _ = trainer._prepare(ds, big, progress=False)
    assert model.sparse and all(e.sparse for e in (model.user_emb, model.item_emb, model.user_bias, model.item_bias))
    assert isinstance(learner.make_optimizer(L.fit_config(big, trainer.options)), L.LazyAdam)


# ---------------------------------------------------------------- optimizer and groups
def _learner(sparse: bool = True, **kw) -> Learner:
    torch.manual_seed(0)
    model = DotBias(30, 20, 4, sparse=sparse)
    g = torch.Generator().manual_seed(1)
    users, items = torch.randint(0, 30, (400,), generator=g), torch.randint(0, 20, (400,), generator=g)
    target = torch.rand(400, generator=g) * 4 + 1
    return Learner(
        model,
        (users, items, target),
        None,
        loss_fn=nn.functional.mse_loss,
        bs=64,
        regularizer=kw.pop("regularizer", None),
        **kw,
    )


def test_sparse_groups_get_the_sparse_form_of_the_configured_optimizer():
    learn = _learner()
    opt = learn.make_optimizer(FitConfig(opt="adamw", lr=1e-2, wd=0.05))
    assert isinstance(opt, L.LazyAdam)
    assert [(g["name"], g["sparse"], g["lr"], g["wd"], g["wd_mode"]) for g in opt.param_groups] == [
        ("embeddings", True, 1e-2, 0.05, "decoupled"),
        ("biases", True, 1e-2, 0.05, "decoupled"),
    ]
    assert opt.param_groups[0]["params"] == [learn.model.user_emb.weight, learn.model.item_emb.weight]
    assert opt.param_groups[0]["betas"] == (0.9, 0.99)
    opt = learn.make_optimizer(FitConfig(opt="adam", lr={"embeddings": 1e-3, "biases": 1e-2}))
    assert isinstance(opt, L.LazyAdam) and opt.param_groups[0]["wd_mode"] == "l2"
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-2]
    sgd = learn.make_optimizer(FitConfig(opt="sgd"))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.0
    with pytest.raises(UsageError, match="no sparse-gradient form"):
        learn.make_optimizer(FitConfig(opt="rmsprop"))
    # the dense model keeps its dense optimizer and unflagged groups
    dense = _learner(sparse=False).make_optimizer(FitConfig(opt="adamw"))
    assert isinstance(dense, torch.optim.AdamW) and not any("sparse" in g for g in dense.param_groups)


def test_lazy_adam_equals_torch_sparse_adam():
    """LazyAdam is SparseAdam's update with index ops: same weights and moments after steps
    with repeated rows, rows never seen and a changing lr and beta1 (as one-cycle does)."""
    torch.manual_seed(0)
    a = nn.Embedding(50, 3, sparse=True)
    b = nn.Embedding(50, 3, sparse=True)
    b.weight.data.copy_(a.weight.data)
    ref = torch.optim.SparseAdam(a.parameters(), lr=0.01, betas=(0.9, 0.99), eps=1e-5)
    ours = L.LazyAdam(b.parameters(), lr=0.01, betas=(0.9, 0.99), eps=1e-5)
    g = torch.Generator().manual_seed(1)
    for step in range(25):
        idx = torch.randint(0, 40, (30,), generator=g)  # rows 40.. never looked up
        for emb, opt in ((a, ref), (b, ours)):
            opt.param_groups[0]["lr"] = 0.01 * (1 + step % 3)
            opt.param_groups[0]["betas"] = (0.85 + 0.005 * (step % 4), 0.99)
            opt.zero_grad()
            (emb(idx) ** 2 * torch.arange(1.0, 4.0)).sum().backward()
            opt.step()
    torch.testing.assert_close(b.weight, a.weight, atol=1e-6, rtol=1e-5)
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(ours.state[b.weight][key], ref.state[a.weight][key], atol=1e-7, rtol=1e-5)
    assert torch.equal(b.weight[40:], a.weight[40:])
    with pytest.raises(RuntimeError, match="sparse gradients only"):
        dense = nn.Linear(2, 1)
        opt = L.LazyAdam(dense.parameters())
        dense(torch.ones(1, 2)).sum().backward()
        opt.step()


def test_a_group_or_model_mixing_sparse_and_dense_parameters_is_refused():
    class Mixed(nn.Module):
        def __init__(self, split: bool):
            super().__init__()
            self.emb = nn.Embedding(5, 2, sparse=True)
            self.lin = nn.Linear(2, 1)
            self.split = split

        def layer_groups(self):
            if self.split:
                return {"emb": [self.emb.weight], "head": list(self.lin.parameters())}
            return {"all": [self.emb.weight, *self.lin.parameters()]}

    one = Learner(Mixed(False), (torch.zeros(2, dtype=torch.long), torch.zeros(2)), None, loss_fn=None)
    with pytest.raises(UsageError, match="'all' mixes sparse"):
        one.param_groups(1e-3, 0.0)
    two = Learner(Mixed(True), (torch.zeros(2, dtype=torch.long), torch.zeros(2)), None, loss_fn=None)
    with pytest.raises(UsageError, match="emb have sparse gradients and head dense"):
        two.make_optimizer(FitConfig())


def test_sparse_mode_trains_with_one_cycle_and_records_its_schedule():
    learn = _learner()
    fit = learn.fit(FitConfig(epochs=3, lr=1e-2, opt="adamw", schedule="one-cycle"), progress=False)
    lrs = fit.lrs["embeddings"]
    assert len(lrs) == 3 * 7 and max(lrs) == pytest.approx(1e-2, rel=0.01) and lrs[0] == pytest.approx(1e-2 / 25)
    assert fit.moms["embeddings"][0] == pytest.approx(0.95)  # beta1 cycles as for dense Adam
    assert learn.model.user_emb.weight.grad.is_sparse
    assert fit.history[-1]["train_loss"] < fit.history[0]["train_loss"]


# ---------------------------------------------------------------- lazy weight decay
def _one_step(opt: str, wd: float, wd_mode: str = "auto") -> tuple[DotBias, torch.Tensor, torch.Tensor]:
    """One step on a batch that looks up users 0-9 and items 0-4 only."""
    torch.manual_seed(0)
    model = DotBias(30, 20, 4, sparse=True)
    before = model.user_emb.weight.detach().clone()
    users, items = torch.arange(10), torch.arange(10) % 5
    learn = Learner(model, (users, items, torch.full((10,), 4.0)), None, loss_fn=nn.functional.mse_loss, bs=10)
    o = learn.make_optimizer(FitConfig(opt=opt, lr=0.1, wd=wd, wd_mode=wd_mode))
    learn._step(o, (users, items), torch.full((10,), 4.0))
    return model, before, model.user_emb.weight.detach().clone()


@pytest.mark.parametrize("opt,mode", [("adamw", "decoupled"), ("adam", "decoupled"), ("sgd", "l2"), ("adam", "l2")])
def test_weight_decay_is_lazy_on_the_looked_up_rows_only(opt, mode):
    _, before, plain = _one_step(opt, 0.0, mode)
    _, _, decayed = _one_step(opt, 0.5, mode)
    # rows 10.. were not looked up: untouched, decay or not
    assert torch.equal(decayed[10:], before[10:]) and torch.equal(plain[10:], before[10:])
    assert not torch.equal(decayed[:10], plain[:10])
    if mode == "decoupled" or opt == "sgd":
        # decoupled: w * (1 - lr*wd) before the step; sgd + l2: lr * wd * w added to the step:
        # the same amount, lr * wd * w, on every looked-up row
        torch.testing.assert_close(plain[:10] - decayed[:10], 0.1 * 0.5 * before[:10], atol=1e-6, rtol=1e-4)


def test_l2_penalty_leaves_sparse_groups_to_the_lazy_hook():
    learn = _learner()
    opt = learn.make_optimizer(FitConfig(opt="adam", wd=0.1, wd_mode="l2"))
    assert L.l2_penalty(opt) is None  # a dense sum(w**2) would make the gradient dense


# ---------------------------------------------------------------- the trainer
def test_sparse_mode_learns_the_planted_truth(ds):
    config = {"epochs": 5, "n_factors": 16, "bs": 256}
    run = CollabTrainer().train(ds, {**config, "sparse": "on"}, progress=False)
    dense = CollabTrainer().train(ds, {**config, "sparse": "off"}, progress=False)
    rmse = [h["valid_rmse"] for h in run.history]
    constant = float(((ds.valid["rating"] - ds.train["rating"].mean()) ** 2).mean() ** 0.5)  # ~1.04
    assert run.meta["model"]["sparse"] is True and dense.meta["model"]["sparse"] is False
    assert rmse[0] - rmse[-1] > 0.15, rmse  # improves clearly over the epochs
    assert rmse[-1] < 0.8 * constant, rmse  # well past the mean predictor (noise 0.5 is the floor)
    assert abs(rmse[-1] - dense.metrics["valid_rmse"]) < 0.05  # measured: 0.722 vs 0.707
    # the planted item biases come back
    item = run.tables["item"]
    corr = np.corrcoef(item.bias_values, item.metadata["true_bias"].to_numpy())[0, 1]
    assert corr > 0.8  # measured 0.90 (120 items, 5 epochs)


@pytest.mark.parametrize("frozen,trained", [("embeddings", "biases"), ("biases", "embeddings")])
def test_frozen_tables_stay_bit_identical_in_sparse_mode(ds, frozen, trained):
    trainer = CollabTrainer()
    config = {**trainer.default_config(), "sparse": "on", "n_factors": 8, "epochs": 2, "freeze": frozen}
    *_, model, _, _ = trainer._prepare(ds, config, progress=False)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    run = trainer.train(ds, config, progress=False)
    tensors = run.tensors()
    for key in init:
        same = torch.equal(tensors[f"model.{key}"], init[key])
        assert same == (("emb" in key) == (frozen == "embeddings")), key
    assert run.meta["frozen_groups"] == [frozen]


def test_row_l2_reuses_the_forward_lookups_in_sparse_mode_only():
    users, items = torch.tensor([0, 1, 1]), torch.tensor([2, 0, 2])
    pen = _row_l2(0.5)
    for sparse in (True, False):
        torch.manual_seed(0)
        model = DotBias(3, 3, 2, sparse=sparse)
        model(users, items)
        assert (model.looked_up is not None) == sparse
        value = pen(model, (users, items))
        expected = (
            0.5 * (model.user_emb.weight[users].pow(2).sum(1) + model.item_emb.weight[items].pow(2).sum(1)).mean()
        )
        torch.testing.assert_close(value, expected)
        assert model.looked_up is None  # consumed: no stale rows for the next batch
    model.eval()
    DotBias(3, 3, 2, sparse=True).eval()(users, items)  # eval keeps nothing


def test_cli_sparse_option_is_recorded_in_the_run(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        make_cli(),
        [
            "train",
            "synthetic-collab",
            "--users",
            "60",
            "--items",
            "40",
            "--ratings",
            "1500",
            "--epochs",
            "2",
            "--bs",
            "128",
            "--n-factors",
            "8",
            "-q",
            "--sparse",
            "on",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["sparse"] == "on" and meta["model"]["sparse"] is True
    help_text = CliRunner().invoke(make_cli(), ["train", "synthetic-collab", "--help"]).output
    assert "--sparse" in help_text and "lazy" in help_text
    bad = CliRunner().invoke(
        make_cli(),
        ["train", "synthetic-collab", "--sparse", "on", "--opt", "rmsprop", "--out", str(tmp_path / "x"), "-q"],
    )
    assert bad.exit_code != 0 and "no sparse-gradient form" in bad.output


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_sparse_mode_on_cuda(ds):
    run = CollabTrainer().train(ds, {"sparse": "on", "epochs": 3, "n_factors": 16, "device": "cuda"}, progress=False)
    rmse = [h["valid_rmse"] for h in run.history]
    assert run.meta["model"]["sparse"] is True and rmse[-1] < rmse[0] - 0.1, rmse
