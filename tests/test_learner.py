"""The learner: optimizers, weight-decay modes, schedules and the lr finder, against hand sums.

Every optimizer update is checked on a tiny linear model whose gradient is written out by hand
(``2/n X^T (Xw - y)`` for the mean squared error), and the optimizer recursions (momentum
buffer, RMSprop's and Adam's moving averages, AdamW's decoupled decay) are re-done in numpy.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn
from conftest import one_cycle

from embedlab.errors import UsageError
from embedlab.training import (
    DEFAULT_BETAS,
    DEFAULT_EPS,
    RMSPROP_ALPHA,
    DefaultsOption,
    FitConfig,
    FitDefaults,
    Learner,
    LRFindResult,
    fit_config,
    fit_options,
    l2_penalty,
)

X = np.array([[1.0, 2.0, -1.0], [0.5, -1.0, 2.0], [-1.5, 0.3, 0.7], [2.0, 1.0, 1.0]])
Y = np.array([1.0, -2.0, 0.5, 3.0])
W0 = np.array([0.3, -0.2, 0.5])
V0 = np.array([-0.4, 0.1])  # the second layer group
Z = np.array([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0], [0.2, 0.3]])


class Tiny(nn.Module):
    """``x @ w + z @ v`` with two layer groups, ``w`` and ``v`` (float64 for exact checks)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(W0))
        self.v = nn.Parameter(torch.tensor(V0))

    def layer_groups(self):
        return {"w": [self.w], "v": [self.v]}

    def forward(self, x, z):
        return x @ self.w + z @ self.v


def tiny_learner(n_rows: int = 4, bs: int | None = None) -> Learner:
    reps = n_rows // 4
    x, z, y = (torch.tensor(np.tile(a, (reps, 1)) if a.ndim == 2 else np.tile(a, reps)) for a in (X, Z, Y))
    return Learner(Tiny(), (x, z, y), None, loss_fn=nn.functional.mse_loss, bs=bs or n_rows, seed=0)


def hand_grads(w, v):
    err = X @ w + Z @ v - Y
    return 2 / len(Y) * X.T @ err, 2 / len(Y) * Z.T @ err


def hand_fit(
    opt: str,
    mode: str,
    steps: int,
    lr: float,
    wd: float,
    momentum: float | None = None,
    betas=DEFAULT_BETAS,
    eps: float = DEFAULT_EPS,
):
    """The optimizer recursions of torch.optim written out in numpy (constant lr, full batch)."""
    params = [W0.copy(), V0.copy()]
    state = [dict(buf=None, m=np.zeros_like(p), s=np.zeros_like(p)) for p in params]
    for t in range(1, steps + 1):
        grads = hand_grads(*params)  # the gradient is taken before any decay
        for p, g, st in zip(params, grads, state):
            if mode == "l2":
                g = g + wd * p  # d/dp of wd/2 * sum(p**2)
            else:
                p *= 1 - lr * wd  # decoupled: shrink first, as AdamW does
            if opt == "sgd":
                p -= lr * g
            elif opt == "momentum":
                st["buf"] = g.copy() if st["buf"] is None else momentum * st["buf"] + g
                p -= lr * st["buf"]
            elif opt == "rmsprop":
                st["s"] = RMSPROP_ALPHA * st["s"] + (1 - RMSPROP_ALPHA) * g * g
                p -= lr * g / (np.sqrt(st["s"]) + eps)
            else:  # adam, adamw
                b1, b2 = betas
                st["m"] = b1 * st["m"] + (1 - b1) * g
                st["s"] = b2 * st["s"] + (1 - b2) * g * g
                m_hat, s_hat = st["m"] / (1 - b1**t), st["s"] / (1 - b2**t)
                p -= lr * m_hat / (np.sqrt(s_hat) + eps)
    return params


def learner_fit(opt: str, mode: str, steps: int, lr: float, wd: float, **extra):
    learner = tiny_learner()
    learner.fit(
        FitConfig(epochs=steps, lr=lr, wd=wd, opt=opt, wd_mode=mode, schedule="constant", **extra), progress=False
    )
    return learner.model.w.detach().numpy(), learner.model.v.detach().numpy()


CASES = [
    ("sgd", "l2"),
    ("sgd", "decoupled"),
    ("momentum", "l2"),
    ("momentum", "decoupled"),
    ("rmsprop", "l2"),
    ("rmsprop", "decoupled"),
    ("adam", "l2"),
    ("adam", "decoupled"),
    ("adamw", "decoupled"),
]


# ---------------------------------------------------------------------------- updates by hand
@pytest.mark.parametrize("opt,mode", CASES)
def test_updates_match_the_hand_computation(opt, mode):
    lr, wd = 0.05, 0.3
    momentum = 0.8 if opt in ("momentum",) else None
    for steps in (1, 3):
        got = learner_fit(opt, mode, steps, lr, wd, momentum=momentum)
        want = hand_fit(opt, mode, steps, lr, wd, momentum=momentum)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, err_msg=f"{opt}/{mode} after {steps} steps")
    assert not np.allclose(got[0], W0)


def test_rmsprop_momentum_and_adam_betas_and_eps_reach_the_update():
    got = learner_fit("adam", "l2", 2, 0.01, 0.0, betas=(0.5, 0.9), eps=0.1)
    want = hand_fit("adam", "l2", 2, 0.01, 0.0, betas=(0.5, 0.9), eps=0.1)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-10)
    default = learner_fit("adam", "l2", 2, 0.01, 0.0)
    assert not np.allclose(got[0], default[0])
    # rmsprop with momentum: torch's buffer b = m*b + g/(sqrt(s)+eps); check it moves differently
    with_m = learner_fit("rmsprop", "l2", 3, 0.01, 0.0, momentum=0.9)
    without = learner_fit("rmsprop", "l2", 3, 0.01, 0.0)
    assert not np.allclose(with_m[0], without[0])


def test_l2_and_decoupled_differ_under_momentum_and_adam_but_not_plain_sgd():
    lr, wd = 0.05, 0.5
    sgd_l2 = learner_fit("sgd", "l2", 3, lr, wd)
    sgd_dec = learner_fit("sgd", "decoupled", 3, lr, wd)
    np.testing.assert_allclose(sgd_l2[0], sgd_dec[0], rtol=1e-12)
    np.testing.assert_allclose(sgd_l2[1], sgd_dec[1], rtol=1e-12)
    # momentum: the first step is the same (the buffer is just the gradient), later ones differ
    one_l2, one_dec = learner_fit("momentum", "l2", 1, lr, wd), learner_fit("momentum", "decoupled", 1, lr, wd)
    np.testing.assert_allclose(one_l2[0], one_dec[0], rtol=1e-12)
    mom_l2 = learner_fit("momentum", "l2", 3, lr, wd)
    mom_dec = learner_fit("momentum", "decoupled", 3, lr, wd)
    assert np.abs(mom_l2[0] - mom_dec[0]).max() > 1e-3
    # with momentum the L2 term is carried in the buffer: after 3 steps it has decayed more
    assert np.linalg.norm(mom_l2[0]) < np.linalg.norm(mom_dec[0])
    adam_l2 = learner_fit("adam", "l2", 1, lr, wd)
    adam_dec = learner_fit("adam", "decoupled", 1, lr, wd)
    assert np.abs(adam_l2[0] - adam_dec[0]).max() > 1e-3
    adamw = learner_fit("adamw", "decoupled", 3, lr, wd)
    np.testing.assert_allclose(adamw[0], learner_fit("adam", "decoupled", 3, lr, wd)[0], rtol=1e-12)


# ---------------------------------------------------------------------------- param groups
@pytest.mark.parametrize("opt,mode", CASES)
def test_param_groups_carry_name_lr_and_weight_decay(opt, mode):
    learner = tiny_learner()
    cfg = FitConfig(lr={"w": 0.1, "v": 0.02}, wd=0.3, opt=opt, wd_mode=mode)
    optimizer = learner.make_optimizer(cfg)
    expected_cls = {
        "sgd": torch.optim.SGD,
        "momentum": torch.optim.SGD,
        "rmsprop": torch.optim.RMSprop,
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
    }[opt]
    assert type(optimizer) is expected_cls
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert list(groups) == ["w", "v"]
    assert groups["w"]["params"] == [learner.model.w] and groups["v"]["params"] == [learner.model.v]
    assert groups["w"]["lr"] == 0.1 and groups["v"]["lr"] == 0.02
    for g in groups.values():
        assert g["wd"] == 0.3 and g["wd_mode"] == mode
        # torch's own (coupled) weight_decay is used only where torch decouples it
        native = opt == "adamw" or (opt == "adam" and mode == "decoupled")
        assert g["weight_decay"] == (0.3 if native else 0.0)
        if opt == "adam":
            assert g["decoupled_weight_decay"] is (mode == "decoupled")
        if opt == "momentum":
            assert g["momentum"] == 0.9
        if opt == "sgd":
            assert g["momentum"] == 0.0
        if opt == "rmsprop":
            assert g["momentum"] == 0.0 and g["alpha"] == RMSPROP_ALPHA and g["eps"] == DEFAULT_EPS
        if opt in ("adam", "adamw"):
            assert tuple(g["betas"]) == DEFAULT_BETAS and g["eps"] == DEFAULT_EPS
    penalty = l2_penalty(optimizer)
    if mode == "l2":
        want = 0.5 * 0.3 * (np.sum(W0**2) + np.sum(V0**2))
        assert float(penalty.detach()) == pytest.approx(want)
    else:
        assert penalty is None


def test_a_model_without_layer_groups_is_one_group_and_frozen_params_are_left_out():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    learner = Learner(model, (torch.zeros(4, 3), torch.zeros(4, 1)), None, nn.functional.mse_loss)
    opt = learner.make_optimizer(FitConfig(lr=0.1))
    assert [g["name"] for g in opt.param_groups] == ["all"] and len(opt.param_groups[0]["params"]) == 4
    learner = tiny_learner()
    learner.model.v.requires_grad_(False)
    opt = learner.make_optimizer(FitConfig(lr=0.1))
    assert [g["name"] for g in opt.param_groups] == ["w"]
    with pytest.raises(UsageError, match="missing groups"):
        tiny_learner().make_optimizer(FitConfig(lr={"w": 0.1}))


def test_per_group_weight_decay_is_read_at_every_step():
    """The group's ``wd`` is the one source of truth (a later issue sets it per group)."""
    learner = tiny_learner()
    opt = learner.make_optimizer(FitConfig(lr=0.1, wd=0.0, opt="adamw"))
    opt.param_groups[1]["wd"] = 0.5
    learner._step(opt, (torch.tensor(X), torch.tensor(Z)), torch.tensor(Y))
    assert opt.param_groups[0]["weight_decay"] == 0.0 and opt.param_groups[1]["weight_decay"] == 0.5


# ---------------------------------------------------------------------------- schedules
def test_one_cycle_lr_of_each_group_at_every_step():
    learner = tiny_learner(n_rows=40, bs=4)  # 10 steps per epoch
    fit = learner.fit(FitConfig(epochs=2, lr={"w": 0.1, "v": 0.004}, wd=0.0, opt="adamw"), progress=False)
    assert len(fit.lrs["w"]) == len(fit.lrs["v"]) == 20
    for name, max_lr in (("w", 0.1), ("v", 0.004)):
        want = [one_cycle(s, 20, max_lr) for s in range(20)]
        np.testing.assert_allclose(fit.lrs[name], want, rtol=1e-9)
    assert max(fit.lrs["w"]) == pytest.approx(0.1, rel=0.05) and fit.lrs["w"][0] == pytest.approx(0.1 / 25)
    # beta1 goes down while the lr goes up, and back
    moms = fit.moms["w"]
    assert moms[0] == pytest.approx(0.95) and min(moms) == pytest.approx(0.85, abs=0.01)
    assert np.argmin(moms) == np.argmax(fit.lrs["w"]) and moms[-1] > 0.94


def test_momentum_cycles_around_the_configured_momentum_and_plain_sgd_does_not_cycle():
    learner = tiny_learner(n_rows=40, bs=4)
    fit = learner.fit(FitConfig(epochs=2, lr=0.01, wd=0.0, opt="momentum", momentum=0.8), progress=False)
    assert fit.moms["w"][0] == pytest.approx(0.85) and min(fit.moms["w"]) == pytest.approx(0.75, abs=0.01)
    fit = tiny_learner(n_rows=40, bs=4).fit(FitConfig(epochs=2, lr=0.01, wd=0.0, opt="sgd"), progress=False)
    assert set(fit.moms["w"]) == {0.0}
    fit = tiny_learner(n_rows=40, bs=4).fit(FitConfig(epochs=2, lr=0.01, wd=0.0, opt="rmsprop"), progress=False)
    assert set(fit.moms["w"]) == {0.0}  # rmsprop without momentum stays without


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_constant_and_cosine_schedules(schedule):
    learner = tiny_learner(n_rows=40, bs=4)
    fit = learner.fit(FitConfig(epochs=1, lr={"w": 0.1, "v": 0.01}, opt="momentum", schedule=schedule), progress=False)
    for name, max_lr in (("w", 0.1), ("v", 0.01)):
        if schedule == "constant":
            want = [max_lr] * 10
        else:
            want = [max_lr * (1 + math.cos(math.pi * s / 10)) / 2 for s in range(10)]
        np.testing.assert_allclose(fit.lrs[name], want, rtol=1e-9)
    assert set(fit.moms["w"]) == {0.9}  # no cycling outside one-cycle


def test_one_cycle_needs_three_steps():
    with pytest.raises(UsageError, match="at least 3 optimizer steps"):
        tiny_learner().fit(FitConfig(epochs=2, lr=0.1), progress=False)
    tiny_learner().fit(FitConfig(epochs=3, lr=0.1), progress=False)  # 3 steps are enough


def test_fit_one_cycle_is_adamw_one_cycle():
    a = tiny_learner(n_rows=40, bs=4)
    ra = a.fit_one_cycle(2, 0.05, wd=0.2, progress=False)
    b = tiny_learner(n_rows=40, bs=4)
    rb = b.fit(FitConfig(epochs=2, lr=0.05, wd=0.2, opt="adamw", wd_mode="decoupled"), progress=False)
    assert torch.equal(a.model.w, b.model.w) and ra.lrs == rb.lrs
    assert ra.config["opt"] == "adamw" and ra.config["wd_mode"] == "decoupled"
    c = tiny_learner(n_rows=40, bs=4)
    c.fit_one_cycle(2, 0.05, wd=0.2, progress=False, opt="sgd")
    assert not torch.equal(a.model.w, c.model.w)


# ---------------------------------------------------------------------------- configuration
def test_resolve_fills_per_optimizer_defaults_and_checks_combinations():
    d = FitDefaults.scaled(lr=5e-3, wd=0.1)
    assert d.lr["adamw"] == 5e-3 and d.lr["sgd"] > 100 * d.lr["adamw"] and d.lr["momentum"] > d.lr["adam"]
    assert d.wd[("adamw", "decoupled")] == 0.1 and d.wd[("sgd", "l2")] < 1e-2
    c = FitConfig(opt="momentum").resolved(d)
    assert (c.lr, c.wd, c.wd_mode, c.momentum, c.betas, c.eps) == (
        d.lr["momentum"],
        d.wd[("momentum", "l2")],
        "l2",
        0.9,
        None,
        None,
    )
    c = FitConfig(opt="adam", wd_mode="decoupled").resolved(d)
    assert c.wd == 0.1 and c.betas == DEFAULT_BETAS and c.eps == DEFAULT_EPS
    assert FitConfig(opt="adamw").resolved(d).wd_mode == "decoupled"
    assert FitConfig(opt="sgd", lr=0.3, wd=0.0).resolved(d).lr == 0.3
    override = FitDefaults.scaled(lr=1e-2, wd=0.05, lrs={"sgd": 2.0}, wds={"momentum:decoupled": 0.01})
    assert override.lr["sgd"] == 2.0 and override.lr["adamw"] == 1e-2 and override.lr["adam"] == 2e-2
    assert override.wd[("momentum", "decoupled")] == 0.01 and override.wd[("adamw", "decoupled")] == 0.05
    for bad, match in [
        (dict(opt="sgd", momentum=0.9), "use --opt momentum"),
        (dict(opt="adam", momentum=0.9), "betas"),
        (dict(opt="momentum", betas=(0.9, 0.99)), "only adam and adamw"),
        (dict(opt="sgd", eps=1e-8), "only rmsprop, adam and adamw"),
        (dict(opt="adamw", wd_mode="l2"), "--opt adam --wd-mode l2"),
        (dict(opt="lion"), "unknown optimizer"),
        (dict(schedule="linear"), "--schedule"),
        (dict(momentum=1.0, opt="momentum"), r"\[0, 1\)"),
        (dict(lr=-1.0), "positive"),
    ]:
        with pytest.raises(UsageError, match=match):
            FitConfig(**bad).resolved(d)


def test_fit_options_are_defined_once_and_round_trip_through_fit_config():
    opts = fit_options(epochs=7, lr=1e-2, wd=0.2, bs=64)
    names = [o.name for o in opts]
    assert names == [
        "epochs",
        "opt",
        "lr",
        "wd",
        "wd_mode",
        "momentum",
        "betas",
        "eps",
        "schedule",
        "bs",
        "seed",
        "freeze",
        "freeze_to",
        "init_from",
        "init_table",
        "init_keys",
    ]
    defaults = {o.name: o.default for o in opts}
    assert defaults["epochs"] == 7 and defaults["bs"] == 64 and defaults["lr"] is None and defaults["wd"] is None
    assert all(isinstance(o, DefaultsOption) for o in opts if o.name in ("lr", "wd"))
    cfg = fit_config({**defaults, "n_factors": 3}, opts)
    assert (cfg.opt, cfg.lr, cfg.wd, cfg.wd_mode, cfg.epochs, cfg.bs) == ("adamw", 1e-2, 0.2, "decoupled", 7, 64)
    sgd = fit_config({**defaults, "opt": "sgd"}, opts)
    assert sgd.lr == FitDefaults.scaled(1e-2, 0.2).lr["sgd"]
    saved = cfg.to_config()
    assert json.loads(json.dumps(saved)) == saved
    assert FitConfig.from_config(saved).resolved() == cfg


def test_collab_trainer_uses_the_shared_options():
    from embedlab.registry import trainer_for

    trainer = trainer_for("collab")
    names = [o.name for o in trainer.options]
    assert len(names) == len(set(names))
    assert {
        "n_factors",
        "y_range",
        "init_std",
        "epochs",
        "lr",
        "wd",
        "bs",
        "seed",
        "opt",
        "momentum",
        "betas",
        "eps",
        "wd_mode",
        "schedule",
    } <= set(names)


# ---------------------------------------------------------------------------- lr finder
def synthetic_curve(noise: float = 0.0, seed: int = 0):
    """Flat at 2.0, a sigmoid fall (in log10 lr, centred at 1e-3) to 0.5, blowing up after 1e-1."""
    lrs = np.logspace(-6, 0, 121)
    x = np.log10(lrs)
    loss = 0.5 + 1.5 / (1 + np.exp(3.0 * (x + 3.0))) + 40 * np.clip(x + 1.0, 0, None) ** 2
    loss += np.random.default_rng(seed).normal(0, noise, len(lrs))
    return LRFindResult(lrs=list(lrs), losses=list(loss))


def test_suggestion_rules_on_a_synthetic_curve():
    r = synthetic_curve()
    s = r.suggestions()
    assert set(s) == {"valley", "steep", "min10"}
    i_min = int(np.argmin(r.losses))
    assert s["min10"] == pytest.approx(r.lrs[i_min] / 10)
    assert 0.05 < r.lrs[i_min] < 0.15  # the minimum sits where the blow-up starts
    assert s["steep"] == pytest.approx(1e-3, rel=0.15)  # the sigmoid's inflection
    assert 1e-4 < s["valley"] < 3e-2  # on the long descent, not on the plateau or the wall
    assert r.suggested("steep") == s["steep"] and r.suggested("nope") is None
    assert r.loss_at(s["steep"]) == pytest.approx(1.25, abs=0.02)


def test_valley_tolerates_noise_and_degenerate_sweeps_suggest_nothing():
    for seed in range(5):
        s = synthetic_curve(noise=0.02, seed=seed).suggestions()
        assert 1e-4 < s["valley"] < 3e-2, s
        assert 1e-5 < s["steep"] < 1e-1
    assert LRFindResult([1e-3, 1e-2, 1e-1], [1.0, 0.5, float("nan")]).suggestions() == {}
    s = LRFindResult(list(np.logspace(-5, -1, 20)), [float("nan")] * 2 + list(np.linspace(2, 1, 18))).suggestions()
    assert set(s) == {"valley", "steep", "min10"}


def test_suggestions_ignore_the_warm_up_and_a_long_noisy_plateau():
    """The shape lr-find gives on ml-100k: a quick drop while the smoothing settles, a long noisy
    plateau, a descent between 1e-2 and 2e-1, then the blow-up."""
    lrs = np.logspace(-7, 1, 100)
    x = np.log10(lrs)
    rng = np.random.default_rng(0)
    loss = 1.84 + rng.normal(0, 0.006, 100)
    loss[:8] += np.linspace(0.2, 0.0, 8)  # the smoothed loss settling
    fall = (x > -2) & (x <= -0.7)
    loss[fall] -= 0.12 * (x[fall] + 2) / 1.3
    loss[x > -0.7] = 1.72 + 3 * (x[x > -0.7] + 0.7) ** 2
    s = LRFindResult(list(lrs), list(loss)).suggestions()
    assert 1e-2 <= s["steep"] <= 2e-1, s
    assert 1e-2 <= s["valley"] <= 2e-1, s
    assert s["min10"] == pytest.approx(lrs[np.argmin(loss)] / 10)


def test_lr_find_uses_the_configured_optimizer_and_restores_the_model():
    learner = tiny_learner(n_rows=40, bs=4)
    before = learner.model.w.detach().clone()
    result = learner.lr_find(start_lr=1e-5, end_lr=1.0, num=30, progress=False, config=FitConfig(opt="sgd", wd=0.0))
    assert torch.equal(learner.model.w, before)
    assert len(result.lrs) >= 5 and np.all(np.diff(result.lrs) > 0)
    assert result.lrs[0] == pytest.approx(1e-5)


def test_lr_plot_marks_every_rule(tmp_path):
    from embedlab.report.lrplot import write_lr_plot

    r = synthetic_curve()
    s = r.suggestions()
    out = write_lr_plot(tmp_path / "lr.html", r, s, "steep", "lr-find: test")
    text = out.read_text()
    for rule, lr in s.items():
        assert f"{rule}: {lr:.1e}" in text
    assert "steep: " + f"{s['steep']:.1e}" + " (recommended)" in text
    assert text.count('"type":"object","name":"Span"') == 3 or text.count("Span") >= 3


# ---------------------------------------------------------------------------- the CLI
SYNTH = ["--users", "60", "--items", "40", "--ratings", "2000", "--epochs", "1", "-q"]


def test_train_cli_with_each_optimizer_records_the_resolved_config(tmp_path):
    from embedlab.cli import make_cli

    runner = CliRunner()
    for opt, extra in [
        ("sgd", ["--lr", "0.5"]),
        ("momentum", ["--momentum", "0.8"]),
        ("rmsprop", []),
        ("adam", ["--wd", "0.1", "--wd-mode", "l2"]),
        ("adamw", ["--schedule", "cosine"]),
    ]:
        out = tmp_path / opt
        res = runner.invoke(make_cli(), ["train", "synthetic-collab", *SYNTH, "--opt", opt, *extra, "--out", str(out)])
        assert res.exit_code == 0, res.output
        cfg = json.loads((out / "run.json").read_text())["config"]
        assert cfg["opt"] == opt and cfg["lr"] > 0 and cfg["wd_mode"] in ("l2", "decoupled")
        if opt == "sgd":
            assert cfg["lr"] == 0.5 and cfg["momentum"] is None
        if opt == "momentum":
            assert cfg["momentum"] == 0.8
        if opt == "adam":
            assert cfg["wd"] == 0.1 and cfg["wd_mode"] == "l2" and cfg["betas"] == list(DEFAULT_BETAS)
        if opt == "adamw":
            assert cfg["schedule"] == "cosine" and cfg["wd_mode"] == "decoupled"
    bad = runner.invoke(
        make_cli(),
        ["train", "synthetic-collab", *SYNTH, "--opt", "sgd", "--momentum", "0.9", "--out", str(tmp_path / "bad")],
    )
    assert bad.exit_code == 2 and "--opt momentum" in bad.output
    helptext = runner.invoke(make_cli(), ["train", "synthetic-collab", "--help"]).output
    assert "Under plain sgd the two give the same update" in " ".join(helptext.split())


def test_lr_find_cli_prints_the_recommended_rule(tmp_path):
    from embedlab.cli import make_cli

    res = CliRunner().invoke(
        make_cli(),
        [
            "lr-find",
            "synthetic-collab",
            "--users",
            "60",
            "--items",
            "40",
            "--ratings",
            "3000",
            "--bs",
            "32",
            "-q",
            "--suggest",
            "steep",
            "--opt",
            "momentum",
            "--plot",
            str(tmp_path / "lr.html"),
        ],
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["rule"] == "steep" and payload["suggested_lr"] == payload["suggestions"]["steep"]
    assert "<- recommended" in res.stderr and (tmp_path / "lr.html").is_file()


# ---------------------------------------------------------------------------- the loop of events
class _Log:
    """A callback (duck-typed: ``order`` and ``__call__``) that records every event."""

    order = 50

    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append(event)


def test_fit_is_a_loop_of_events_in_order():
    from embedlab.training import FitConfig

    log = _Log()
    fit = tiny_learner(n_rows=8, bs=4).fit(FitConfig(epochs=2, lr=0.01), progress=False, cbs=[log])
    epoch = ["before_epoch"] + ["before_batch", "after_step"] * 2 + ["after_epoch"]
    assert log.events == ["before_fit", *epoch, *epoch, "after_fit", "cleanup_fit"]
    assert len(fit.history) == 2 and len(fit.losses) == 4


def test_a_callback_can_cancel_the_fit_and_cleanup_still_runs():
    from embedlab.training import Callback, CancelFit, FitConfig

    class StopAfterOne(Callback):
        def after_epoch(self):
            raise CancelFit()

    log = _Log()
    learn = tiny_learner(n_rows=8, bs=4)
    fit = learn.fit(FitConfig(epochs=5, lr=0.01), progress=False, cbs=[StopAfterOne(), log])
    assert len(fit.history) == 1 and log.events[-2:] == ["after_cancel_fit", "cleanup_fit"]
    assert "after_fit" not in log.events and learn.cbs == []


def test_the_step_is_replaceable_and_the_default_is_autograd_step():
    from embedlab.training import FitConfig, autograd_step

    calls = []

    def counting_step(learn, opt, inputs, target):
        calls.append(len(target))
        return autograd_step(learn, opt, inputs, target)

    plain = tiny_learner(n_rows=8, bs=4)
    assert plain.step is autograd_step
    replaced = tiny_learner(n_rows=8, bs=4)
    replaced.step = counting_step
    a = plain.fit(FitConfig(epochs=3, lr=0.05), progress=False)
    b = replaced.fit(FitConfig(epochs=3, lr=0.05), progress=False)
    assert calls == [4] * 6 and a.losses == b.losses
    assert torch.equal(plain.model.w, replaced.model.w) and torch.equal(plain.model.v, replaced.model.v)


def test_lr_find_is_a_callback_that_restores_the_weights_and_the_optimizer():
    from embedlab.training import FitConfig

    learn = tiny_learner(n_rows=8, bs=4)
    learn.fit(FitConfig(epochs=2, lr=0.01), progress=False)
    opt, before = learn.opt, {k: v.clone() for k, v in learn.model.state_dict().items()}
    found = learn.lr_find(num=12, progress=False)
    assert 2 <= len(found.lrs) <= 12 and found.lrs == sorted(found.lrs)
    assert learn.opt is opt and all(torch.equal(v, learn.model.state_dict()[k]) for k, v in before.items())


def test_fit_stays_short():
    import inspect

    from embedlab.training import Learner

    for fn in (Learner.fit, Learner._fit):
        assert len(inspect.getsource(fn).splitlines()) <= 30, fn.__name__  # #22: "under about 30 lines"


def test_load_continues_the_optimizer_state_and_the_shuffling_as_resume_does(tmp_path):
    """fit 4 epochs == fit 2, save, a fresh learner loads, fit 2 (constant lr): bit for bit."""
    from embedlab.training import FitConfig

    half = FitConfig(epochs=2, lr=0.05, wd=0.1, opt="adamw", schedule="constant")
    whole = tiny_learner(n_rows=16, bs=4)
    whole.fit(half.replace(epochs=4), progress=False)
    first = tiny_learner(n_rows=16, bs=4)
    first.fit(half, progress=False)
    path = first.save(tmp_path / "half")
    resumed = tiny_learner(n_rows=16, bs=4).load(path)
    resumed.fit(half, progress=False)
    assert torch.equal(resumed.model.w, whole.model.w) and torch.equal(resumed.model.v, whole.model.v)
    assert [float(s["step"]) for s in resumed.opt.state.values()] == [16.0, 16.0]
    alone = tiny_learner(n_rows=16, bs=4).load(path, with_opt=False)  # the model only: a fresh optimizer
    alone.fit(half, progress=False)
    assert not torch.equal(alone.model.w, whole.model.w)
    assert [float(s["step"]) for s in alone.opt.state.values()] == [8.0, 8.0]
    other = tiny_learner(n_rows=16, bs=4).load(path)  # another optimizer cannot continue Adam's state
    with pytest.warns(UserWarning, match="AdamW's, this fit's optimizer is SGD: it starts afresh"):
        other.fit(half.replace(opt="sgd"), progress=False)


def test_fastai_style_fit_and_layer_groups_on_a_plain_learner():
    from embedlab.training import Callback

    learn = tiny_learner(n_rows=8, bs=4)
    assert learn.layer_groups == ["w", "v"] and list(learn.layer_groups()) == ["w", "v"]
    fit = learn.fit(2, slice(1e-3, 1e-2), 0.0, progress=False, schedule="constant")  # fit(epochs, lr, wd)
    assert fit.groups["w"]["lr"] == pytest.approx(1e-3) and fit.groups["v"]["lr"] == pytest.approx(1e-2)
    assert list(fit["epoch"]) == [1, 2] and len(fit) == 2 and "<table" in fit._repr_html_()

    class Counter(Callback):
        exports = ("epochs_seen",)
        epochs_seen = 0

        def after_epoch(self):
            self.epochs_seen += 1

    counter = Counter()
    learn.add_cb(counter)  # attached: joins every fit, its exports read as the learner's
    learn.fit_one_cycle(3, 0.01, progress=False)
    learn.fit_one_cycle(3, 0.01, progress=False)
    assert learn.epochs_seen == 6 and not hasattr(learn, "config")  # the FitConfig only while a fit runs
    learn.remove_cb(counter)
    with pytest.raises(AttributeError, match="epochs_seen"):
        learn.epochs_seen
    with pytest.raises(UsageError, match="predict\\(row\\) is the live learner's"):
        learn.predict({"user": 1, "item": 2})
