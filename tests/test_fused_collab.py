"""The fused collab step (embedlab.training.fused_collab) against the autograd reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from embedlab.training import Learner, fit_config
from embedlab.training.fused_collab import FusedCollabStep, choose_kernel, make_fused
from embedlab.training.models import DotBias
from embedlab.trainers.collab import CollabOptions as OPTIONS, _row_l2, rating_metrics
from embedlab.errors import UsageError

N_USERS, N_ITEMS, K = 70, 45, 6


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    n = 3000
    users = torch.randint(0, N_USERS, (n,), generator=g)
    items = torch.randint(0, N_ITEMS, (n,), generator=g)
    pu, pi = torch.randn(N_USERS, 3, generator=g), torch.randn(N_ITEMS, 3, generator=g)
    ratings = ((pu[users] * pi[items]).sum(1) + 3.0).clamp(1, 5).to(torch.float32)
    return (users, items, ratings), (users[:300], items[:300], ratings[:300])


def _learner(data, fused: bool, reg=0.05, bs=128, seed=3):
    torch.manual_seed(seed)
    model = DotBias(N_USERS, N_ITEMS, K, (0.0, 5.5), init_std=0.1, sparse=True)
    lrn = Learner(
        model,
        data[0],
        data[1],
        loss_fn=nn.functional.mse_loss,
        metrics=rating_metrics,
        bs=bs,
        seed=seed,
        regularizer=_row_l2(reg) if reg else None,
    )
    return make_fused(lrn, reg) if fused else lrn


def _fit(data, fused, epochs=3, **cfg):
    lrn = _learner(data, fused, **{k: cfg.pop(k) for k in ("reg", "bs") if k in cfg})
    config = {"epochs": epochs, "seed": 3, **cfg}
    fit = lrn.fit(fit_config(config, OPTIONS), progress=False)
    return lrn, fit


CASES = [
    {"opt": "adamw"},  # decoupled, the default
    {"opt": "adamw", "wd": 0.0},
    {"opt": "adam", "wd_mode": "l2", "wd": 0.01},
    {"opt": "adam", "wd_mode": "decoupled", "lr": "1e-3:1e-2"},  # per-group lrs
    {"opt": "sgd", "wd_mode": "l2", "wd": 0.01},
    {"opt": "sgd", "wd_mode": "decoupled", "wd": 0.01, "schedule": "cosine"},
    {"opt": "adamw", "reg": 0.0, "schedule": "constant", "bs": 1000},
]


@pytest.mark.parametrize("cfg", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_fused_step_gives_the_autograd_weights(data, cfg):
    ref, ref_fit = _fit(data, False, **dict(cfg))
    fus, fus_fit = _fit(data, True, **dict(cfg))
    for name, p in ref.model.state_dict().items():
        q = fus.model.state_dict()[name]
        assert not torch.equal(p, torch.zeros_like(p))
        torch.testing.assert_close(q, p, rtol=1e-4, atol=2e-5, msg=name)
    assert fus_fit.final["valid_rmse"] == pytest.approx(ref_fit.final["valid_rmse"], abs=1e-5)
    np.testing.assert_allclose(fus_fit.losses, ref_fit.losses, rtol=1e-4)
    assert fus_fit.lrs == ref_fit.lrs and fus_fit.moms == ref_fit.moms


def test_frozen_tables_stay_bit_identical(data):
    lrn = _learner(data, True)
    before = {k: v.clone() for k, v in lrn.model.state_dict().items()}
    lrn.fit(fit_config({"epochs": 1, "freeze": "biases"}, OPTIONS), progress=False)
    after = lrn.model.state_dict()
    assert torch.equal(after["user_bias.weight"], before["user_bias.weight"])
    assert not torch.equal(after["user_emb.weight"], before["user_emb.weight"])


def test_a_batch_visits_rows_in_scan_and_sort_mode_alike(data):
    """Small batches collect their rows by sorting, big ones by a scan of the table: same result."""
    for bs in (16, 2000):
        ref, _ = _fit(data, False, epochs=1, bs=bs, schedule="constant")
        fus, _ = _fit(data, True, epochs=1, bs=bs, schedule="constant")
        torch.testing.assert_close(fus.model.user_emb.weight, ref.model.user_emb.weight, rtol=1e-4, atol=2e-5)


def test_choose_kernel_says_why_not():
    assert choose_kernel("auto", sparse=True, opt="adamw") == ("fused", None)
    kernel, why = choose_kernel("auto", sparse=False, opt="adamw")
    assert kernel == "autograd" and "dense" in why
    kernel, why = choose_kernel("auto", sparse=True, opt="adamw", distributed=True)
    assert kernel == "autograd" and "torchrun" in why
    assert choose_kernel("auto", sparse=True, opt="rmsprop")[0] == "autograd"
    assert choose_kernel("auto", sparse=True, opt="adamw", device="cuda:0")[0] == "autograd"
    assert choose_kernel("autograd", sparse=True, opt="adamw")[0] == "autograd"
    with pytest.raises(UsageError, match="--kernel fused: .*momentum"):
        choose_kernel("fused", sparse=True, opt="momentum")
    with pytest.raises(UsageError, match="--kernel"):
        choose_kernel("fast", sparse=True, opt="adamw")


def test_step_without_y_range_is_refused():
    with pytest.raises(ValueError, match="y_range"):
        FusedCollabStep(DotBias(3, 3, 2, None, sparse=True), 0.0)


def _train(tmp_path, name, *args):
    import json

    from embedlab.authoring.testing import invoke

    out = tmp_path / name
    result = invoke(
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
            "64",
            "--n-factors",
            "8",
            "--seed",
            "5",
            "-q",
            *args,
            "--out",
            out,
        ]
    )
    assert result.exit_code == 0, result.output
    return json.loads((out / "run.json").read_text()), result


def test_the_kernel_is_chosen_and_recorded_in_run_json(tmp_path):
    meta, _ = _train(tmp_path, "auto")  # small tables: dense, so autograd, with the reason recorded
    assert meta["config"]["kernel"] == "auto"
    assert meta["model"]["kernel"] == "autograd" and "dense" in meta["model"]["kernel_reason"]
    fused, _ = _train(tmp_path, "fused", "--kernel", "fused")  # fused turns the sparse path on
    assert fused["model"]["kernel"] == "fused" and fused["model"]["sparse"] is True
    assert "kernel_reason" not in fused["model"]
    autograd, _ = _train(tmp_path, "autograd", "--sparse", "on", "--kernel", "autograd")
    assert autograd["model"]["kernel"] == "autograd" and autograd["model"]["sparse"] is True
    assert fused["metrics"]["valid_rmse"] == pytest.approx(autograd["metrics"]["valid_rmse"], abs=1e-5)
    auto_sparse, result = _train(tmp_path, "auto-sparse", "--sparse", "on")
    assert auto_sparse["model"]["kernel"] == "fused"


def test_kernel_fused_where_it_cannot_apply_is_a_clean_error(tmp_path):
    from embedlab.authoring.testing import invoke

    result = invoke(
        [
            "train",
            "synthetic-collab",
            "--users",
            "30",
            "--items",
            "20",
            "--ratings",
            "300",
            "--kernel",
            "fused",
            "--opt",
            "rmsprop",
            "-q",
            "--out",
            tmp_path / "x",
        ]
    )
    assert result.exit_code != 0 and "--kernel fused" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_dense_adam_and_adamw_use_torch_fused_step_with_the_same_weights(data):
    from embedlab.training import optim

    results = {}
    for fused in (True, False):
        torch.manual_seed(3)
        model = DotBias(N_USERS, N_ITEMS, K, (0.0, 5.5), init_std=0.1)
        lrn = Learner(model, data[0], None, loss_fn=nn.functional.mse_loss, bs=128, seed=3, regularizer=_row_l2(0.05))
        real = optim._fused
        optim._fused = real if fused else (lambda groups: {})
        try:
            opt = lrn.make_optimizer(fit_config({"opt": "adamw"}, OPTIONS))
            assert opt.defaults.get("fused") is (True if fused else None)
            lrn.fit(fit_config({"epochs": 2, "opt": "adamw"}, OPTIONS), progress=False)
        finally:
            optim._fused = real
        results[fused] = model.state_dict()
    for name, p in results[False].items():
        torch.testing.assert_close(results[True][name], p, rtol=1e-5, atol=1e-6)


@pytest.mark.realdata
@pytest.mark.slow
def test_ml100k_u1_fused_equals_autograd_and_the_default_keeps_its_accuracy(tmp_path):
    import json

    from conftest import data_dir
    from embedlab.authoring.testing import invoke

    root = data_dir("ml-100k")
    rmse = {}
    for name, args in (
        ("default", []),
        ("fused", ["--kernel", "fused"]),
        ("autograd", ["--kernel", "autograd", "--sparse", "on"]),
    ):
        result = invoke(
            ["train", "movielens-100k", "--data-dir", root, "--split", "u1", "-q", *args, "--out", tmp_path / name]
        )
        assert result.exit_code == 0, result.output
        rmse[name] = json.loads((tmp_path / name / "run.json").read_text())["metrics"]["valid_rmse"]
    assert round(rmse["default"], 4) <= 0.9088  # seed 42, dense AdamW (torch's fused step)
    assert round(rmse["fused"], 4) == round(rmse["autograd"], 4)


def test_dataset_fingerprint_hashes_numeric_columns_raw_and_reads_the_old_form():
    import pandas as pd

    from embedlab.training.checkpoint import _frame_digest

    df = pd.DataFrame({"user": np.arange(5, dtype=np.int32), "rating": np.ones(5, np.float32)})
    raw = _frame_digest(df)
    assert raw.startswith("5 rows, sha256:raw ")
    changed = df.copy()
    changed.loc[3, "rating"] = 2.0
    assert _frame_digest(changed) != raw and _frame_digest(df.copy()) == raw
    assert _frame_digest(df, raw=False).startswith("5 rows, sha256 ")  # what older checkpoints hold
    text = df.assign(label=list("abcde"))  # any non-numeric column: the pandas row hashes
    assert "sha256 " in _frame_digest(text)


def test_resume_from_a_checkpoint_with_the_old_dataset_hash(tmp_path, monkeypatch):
    from embedlab.authoring.testing import invoke
    from embedlab.training import checkpoint

    args = [
        "train",
        "synthetic-collab",
        "--users",
        "40",
        "--items",
        "30",
        "--ratings",
        "900",
        "--epochs",
        "2",
        "--bs",
        "64",
        "--n-factors",
        "4",
        "-q",
        "--out",
        tmp_path / "run",
    ]
    real = checkpoint.dataset_fingerprint
    monkeypatch.setattr(checkpoint, "dataset_fingerprint", lambda ds, raw=True: real(ds, raw=False))
    real_save = checkpoint.FitKeeper.save

    def save_then_stop(self, learner, opt, sched, result, epoch, *a):
        real_save(self, learner, opt, sched, result, epoch, *a)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.FitKeeper, "save", save_then_stop)
    assert invoke(args).exit_code == 1  # interrupted after epoch 1's checkpoint, in the old form
    monkeypatch.setattr(checkpoint, "dataset_fingerprint", real)
    monkeypatch.setattr(checkpoint.FitKeeper, "save", real_save)
    result = invoke([*args, "--resume"])
    assert result.exit_code == 0, result.output
