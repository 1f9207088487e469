"""Per-epoch checkpoints and ``embedlab train --resume`` (embedlab/checkpoint.py).

* A ``train`` killed with SIGKILL mid-epoch leaves the previous run in ``--out`` byte for byte,
  nothing half-written beside it but the complete hidden checkpoint, and ``--resume`` then
  finishes with exactly the weights and history of an uninterrupted run (CPU, one thread):
  on synthetic-collab through a real subprocess, on synthetic-rossmann (dropout, batch norm)
  and with other optimizers/schedules through an in-process interruption.
* ``--resume`` with other options or other data, or without a checkpoint, is a one-line error
  naming what differs; a planted pickle is refused and never runs.
* Under torchrun only rank 0 writes checkpoints; two gloo processes resume to the same weights
  as an uninterrupted two-process run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import embedlab
import embedlab.training.learner
from embedlab.training import checkpoint
from embedlab.training.checkpoint import CheckpointError, checkpoint_dir, load_checkpoint
from embedlab.authoring.testing import invoke

ROOT = Path(__file__).resolve().parents[1]
TIMING = {"epoch_seconds", "rows_per_second"}
TIMED_METRICS = {"train_seconds", "seconds_per_epoch"}

COLLAB = [
    "--users",
    "60",
    "--items",
    "40",
    "--ratings",
    "1500",
    "--epochs",
    "3",
    "--bs",
    "64",
    "--n-factors",
    "8",
    "--seed",
    "5",
    "-q",
]
ROSSMANN = ["--stores", "24", "--days", "90", "--epochs", "3", "--bs", "128", "--layers", "16,8", "--seed", "2", "-q"]


# ---------------------------------------------------------------------------- helpers
def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_same_run(a: Path, b: Path) -> None:
    """Same weights bit for bit, same history and metrics but for wall times."""
    wa, wb = load_file(str(a / "weights.safetensors")), load_file(str(b / "weights.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    ma, mb = (json.loads((p / "run.json").read_text()) for p in (a, b))
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING} for r in rows]  # noqa: E731
    assert strip(ma["history"]) == strip(mb["history"]) and len(ma["history"]) == ma["config"]["epochs"]
    assert {k: v for k, v in ma["metrics"].items() if k not in TIMED_METRICS} == {
        k: v for k, v in mb["metrics"].items() if k not in TIMED_METRICS
    }
    assert ma["config"] == mb["config"]


def clean_error(result) -> str:
    """A clean one-line failure (no traceback); returns the Error: line."""
    assert result.exit_code in (1, 2), (result.exit_code, result.output)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.fixture
def stop_after(monkeypatch):
    """``stop_after(n)``: the next training raises KeyboardInterrupt (Ctrl-C) right after the
    checkpoint of epoch ``n`` is written, as a user pressing Ctrl-C in epoch n+1 would."""
    real = checkpoint.FitKeeper.save

    def arm(n: int) -> None:
        def save(self, learner, opt, sched, result, epoch, *args):
            real(self, learner, opt, sched, result, epoch, *args)
            if epoch == n:
                monkeypatch.setattr(checkpoint.FitKeeper, "save", real)
                raise KeyboardInterrupt

        monkeypatch.setattr(checkpoint.FitKeeper, "save", save)

    return arm


def interrupted(tmp_path: Path, stop_after, args: list[str], epoch: int = 1, name: str = "run") -> Path:
    out = tmp_path / name
    stop_after(epoch)
    result = invoke(["train", *args, "--out", out])
    assert result.exit_code == 1 and not out.exists()
    assert f"checkpoint of epoch {epoch}/" in result.stderr and "--resume" in result.stderr
    return out


def wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 180.0) -> None:
    """Poll (a slow, loaded machine: generous timeout, short steps) until ``predicate()``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"embedlab train exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# ---------------------------------------------------------------------------- the kill test
def test_sigkill_mid_epoch_keeps_the_old_run_and_resume_equals_a_straight_run(tmp_path):
    args = [
        "synthetic-collab",
        "--users",
        "200",
        "--items",
        "100",
        "--ratings",
        "20000",
        "--epochs",
        "6",
        "--bs",
        "64",
        "--n-factors",
        "8",
        "--seed",
        "1",
        "--threads",
        "1",
        "-q",
    ]
    runs = tmp_path / "runs"
    out = runs / "demo"
    first = invoke(["train", *args, "--out", out])  # a complete run: the straight run as well
    assert first.exit_code == 0, first.output
    before = files(out)
    assert sorted(p.name for p in runs.iterdir()) == ["demo"]  # its checkpoint was removed

    ckdir = checkpoint_dir(out)
    assert ckdir == runs / ".demo.checkpoint"
    log = (tmp_path / "stderr.txt").open("w")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "embedlab", "train", *args, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
        cwd=tmp_path,
    )
    try:
        wait_for(lambda: any(p.name[:1].isdigit() for p in ckdir.glob("*")), proc, "the first checkpoint")
        time.sleep(0.1)  # a moment into the next epoch
        assert proc.poll() is None, "training finished before it could be killed: give it more epochs"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        log.close()
    assert proc.returncode == -signal.SIGKILL

    # the previous run is untouched; beside it only the complete, hidden checkpoint
    assert files(out) == before
    assert embedlab.load_run(out).table("item").vectors.shape == (100, 8)
    assert sorted(p.name for p in runs.iterdir()) == [".demo.checkpoint", "demo"]
    found = load_checkpoint(ckdir)
    assert found is not None and 1 <= found.epoch < 6 and found.epochs == 6
    assert any(k.startswith("model.") for k in found.tensors) and found.meta["history"]
    assert len(found.meta["history"]) == found.epoch

    resumed = invoke(["train", *args, "--out", out, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert sorted(p.name for p in runs.iterdir()) == ["demo"]  # checkpoint gone once saved
    straight = tmp_path / "straight"
    straight.mkdir()
    for name, data in before.items():
        (straight / name).write_bytes(data)
    assert_same_run(out, straight)


# ---------------------------------------------------------------------------- equal to a straight run
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["synthetic-rossmann", *ROSSMANN], id="rossmann"),
        pytest.param(
            ["synthetic-collab", *COLLAB, "--opt", "momentum", "--schedule", "cosine"], id="collab-momentum-cosine"
        ),
        pytest.param(
            ["synthetic-collab", *COLLAB, "--opt", "adam", "--wd-mode", "l2", "--freeze", "biases"],
            id="collab-adam-l2-frozen",
        ),
        pytest.param(["synthetic-collab", *COLLAB, "--opt", "adamw", "--sparse", "on"], id="collab-sparse-adam"),
        pytest.param(["synthetic-collab", *COLLAB, "--kernel", "fused"], id="collab-fused-adamw"),
        pytest.param(
            ["synthetic-collab", *COLLAB, "--kernel", "fused", "--opt", "sgd", "--wd-mode", "decoupled"],
            id="collab-fused-sgd",
        ),
        pytest.param(
            ["synthetic-collab", *COLLAB, "--kernel", "autograd", "--sparse", "on"], id="collab-sparse-autograd"
        ),
    ],
)
def test_resume_after_an_interruption_equals_a_straight_run(tmp_path, stop_after, args):
    straight = tmp_path / "straight"
    assert invoke(["train", *args, "--out", straight]).exit_code == 0
    out = interrupted(tmp_path, stop_after, args, epoch=2)
    found = load_checkpoint(checkpoint_dir(out))
    assert found.epoch == 2
    result = invoke(["train", *args, "--out", out, "--resume"])
    assert result.exit_code == 0, result.output
    assert not checkpoint_dir(out).exists()
    assert_same_run(out, straight)


def test_a_checkpoint_after_the_last_epoch_resumes_without_training(tmp_path, stop_after):
    args = ["synthetic-collab", *COLLAB]
    straight = tmp_path / "straight"
    assert invoke(["train", *args, "--out", straight]).exit_code == 0
    out = interrupted(tmp_path, stop_after, args, epoch=3)
    result = invoke(["train", *args, "--out", out, "--resume"])
    assert result.exit_code == 0, result.output
    assert_same_run(out, straight)


# ---------------------------------------------------------------------------- refusals
def test_resume_with_other_settings_is_refused_naming_them(tmp_path, stop_after):
    args = ["synthetic-collab", *COLLAB]
    out = interrupted(tmp_path, stop_after, args)
    line = clean_error(invoke(["train", *args, "--epochs", "4", "--lr", "0.01", "--out", out, "--resume"]))
    assert "--epochs 4 (checkpoint: 3)" in line and "--lr" in line and "(checkpoint: default)" in line
    assert "--bs" not in line and "other settings" in line
    line = clean_error(invoke(["train", *args, "--ratings", "1400", "--out", out, "--resume"]))
    assert "--ratings 1400 (checkpoint: 1500)" in line
    line = clean_error(invoke(["train", "synthetic-rossmann", *ROSSMANN, "--out", out, "--resume"]))
    assert "--dataset" in line
    assert load_checkpoint(checkpoint_dir(out)).epoch == 1  # a refusal never touches it


def test_resume_on_changed_data_is_refused(tmp_path, stop_after):
    csv = tmp_path / "ratings.csv"
    rows = [f"{u},{i},{1 + (u * 7 + i * 3) % 5}" for u in range(30) for i in range(20) if (u + i) % 3]
    csv.write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    args = [
        "ratings-csv",
        "--file",
        csv,
        "--user",
        "user",
        "--item",
        "item",
        "--rating",
        "rating",
        "--epochs",
        "2",
        "--bs",
        "32",
        "--n-factors",
        "4",
        "-q",
    ]
    out = interrupted(tmp_path, stop_after, args)
    csv.write_text("user,item,rating\n" + "\n".join(rows[:-1] + ["29,19,1"]) + "\n")  # one rating changed
    line = clean_error(invoke(["train", *args, "--out", out, "--resume"]))
    assert "other data" in line and ("dataset train" in line or "dataset valid" in line)


def test_resume_without_a_checkpoint_is_a_one_line_error(tmp_path):
    out = tmp_path / "never"
    line = clean_error(invoke(["train", "synthetic-collab", *COLLAB, "--out", out, "--resume"]))
    assert "no checkpoint" in line and ".never.checkpoint" in line and "drop --resume" in line
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_without_resume_an_old_checkpoint_is_reported_then_replaced(tmp_path, stop_after):
    args = ["synthetic-collab", *COLLAB]
    out = interrupted(tmp_path, stop_after, args)
    result = invoke(["train", *args, "--epochs", "4", "--out", out])
    assert result.exit_code == 0, result.output
    assert "holds the checkpoint of an interrupted run" in result.stderr
    assert not checkpoint_dir(out).exists() and len(json.loads((out / "run.json").read_text())["history"]) == 4


def test_no_checkpoint_keeps_none(tmp_path, monkeypatch):
    import embedlab.io.atomic

    real, written = embedlab.io.atomic.make_temp_dir, []

    def spy(path):
        if Path(path).parent.name.endswith(".checkpoint"):
            written.append(Path(path))
        return real(path)

    monkeypatch.setattr(embedlab.io.atomic, "make_temp_dir", spy)
    assert invoke(["train", "synthetic-collab", *COLLAB, "--out", tmp_path / "a"]).exit_code == 0
    assert [p.parent.name for p in written] == [".a.checkpoint"] * 3  # one per epoch (the control)
    written.clear()
    result = invoke(["train", "synthetic-collab", *COLLAB, "--out", tmp_path / "b", "--no-checkpoint"])
    assert result.exit_code == 0 and written == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_only_rank_zero_writes_checkpoints(tmp_path, monkeypatch):
    from embedlab.training import distributed

    monkeypatch.setattr(distributed, "is_writer", lambda: False)
    assert invoke(["train", "synthetic-collab", *COLLAB, "--out", tmp_path / "run"]).exit_code == 0
    assert list(tmp_path.iterdir()) == []  # neither the run nor a checkpoint: rank 0's job


# ---------------------------------------------------------------------------- safety
def test_a_checkpoint_is_json_and_safetensors_only(tmp_path, stop_after):
    out = interrupted(tmp_path, stop_after, ["synthetic-collab", *COLLAB, "--opt", "adamw"], epoch=2)
    ckdir = checkpoint_dir(out)
    [entry] = checkpoint._entries(ckdir)  # the older checkpoint was deleted once the newer was in place
    assert sorted(p.name for p in entry.iterdir()) == ["checkpoint.json", "state.safetensors"]
    meta = json.loads((entry / "checkpoint.json").read_text())
    assert meta["format"] == "embedlab-checkpoint" and meta["epoch"] == 2 and meta["step"] > 0
    assert meta["fingerprint"]["options"]["epochs"] == 3 and meta["fingerprint"]["dataset"]["train"]
    tensors = load_file(str(entry / "state.safetensors"))
    assert {"rng.generator", "rng.torch"} <= set(tensors)
    assert any(k.startswith("optimizer.") and k.endswith("exp_avg") for k in tensors)
    assert any(k.startswith("model.") for k in tensors)
    for path in entry.iterdir():  # neither a pickle (protocol 2+ starts with 0x80) nor a torch zip
        head = path.read_bytes()[:4]
        assert head[:1] != b"\x80" and head != b"PK\x03\x04"


@pytest.mark.parametrize("how", ["pickle-0", "pickle-5", "torch-zip", "torch-legacy"])
def test_a_planted_pickle_is_refused_and_never_executed(tmp_path, stop_after, how):
    from test_safety import BESIDE, pickled  # the run-loading safety test's trap

    args = ["synthetic-collab", *COLLAB]
    out = interrupted(tmp_path, stop_after, args)
    [entry] = checkpoint._entries(checkpoint_dir(out))
    marker = tmp_path / "pwned"
    (entry / "state.safetensors").write_bytes(pickled(marker, how))
    for name in BESIDE:  # tempting fallbacks a careless loader might try
        (entry / name).write_bytes(pickled(marker, how))
    with pytest.raises(CheckpointError, match="never loads pickled checkpoints"):
        load_checkpoint(checkpoint_dir(out))
    line = clean_error(invoke(["train", *args, "--out", out, "--resume"]))
    assert "not a valid safetensors file" in line and "never loads pickled" in line
    assert not marker.exists()


def test_a_damaged_checkpoint_json_is_a_clean_error(tmp_path, stop_after):
    args = ["synthetic-collab", *COLLAB]
    out = interrupted(tmp_path, stop_after, args)
    [entry] = checkpoint._entries(checkpoint_dir(out))
    (entry / "checkpoint.json").write_text('{"format": "embedlab-checkpoint", "vers')
    line = clean_error(invoke(["train", *args, "--out", out, "--resume"]))
    assert "not a readable checkpoint" in line and "to start over" in line


# ---------------------------------------------------------------------------- torchrun (gloo)
DDP_DATA = {"users": 60, "items": 40, "ratings": 1500}
DDP_CONFIG = {"n_factors": 8, "epochs": 3, "bs": 64, "seed": 3, "threads": 1, "device": "cpu"}


def _ddp_worker(rank: int, world: int, port: int, out: str, resume: bool, stop: int) -> None:
    from datasets import synthetic_collab as S
    from embedlab.training import distributed
    from embedlab.trainers.collab import CollabTrainer

    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
        }
    )
    torch.set_num_threads(1)
    if stop:
        real = checkpoint.FitKeeper.save

        def save(self, learner, opt, sched, result, epoch, *args):
            real(self, learner, opt, sched, result, epoch, *args)
            if epoch == stop:  # every rank stops here, as a killed job would
                raise KeyboardInterrupt

        checkpoint.FitKeeper.save = save
    try:
        ds = S.load(**DDP_DATA)
        plan = checkpoint.plan(out, {"dataset": "synthetic-collab", **DDP_DATA, **DDP_CONFIG}, resume=resume)
        try:
            with checkpoint.checkpointing(plan, ds):
                run = CollabTrainer().train(ds, dict(DDP_CONFIG), progress=False, checkpoint=plan)
        except KeyboardInterrupt:
            return
        torch.save({k: v.clone() for k, v in run.tensors().items()}, Path(out).parent / f"{Path(out).name}-{rank}.pt")
    finally:
        distributed.teardown()


def _ddp(out: Path, resume: bool = False, stop: int = 0, world: int = 2) -> list[dict]:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(
        _ddp_worker, args=(world, port, str(out), resume, stop), nprocs=world, join=True, start_method="fork"
    )
    if stop:
        return []
    return [torch.load(out.parent / f"{out.name}-{r}.pt", weights_only=True) for r in range(world)]


def test_two_gloo_processes_resume_to_the_uninterrupted_weights(tmp_path):
    straight = _ddp(tmp_path / "straight")
    out = tmp_path / "run"
    _ddp(out, stop=1)
    found = load_checkpoint(checkpoint_dir(out))
    assert found.epoch == 1 and len(checkpoint._entries(checkpoint_dir(out))) == 1
    resumed = _ddp(out, resume=True)
    for name, ref in straight[0].items():
        for r in range(2):
            assert torch.equal(resumed[r][name], ref), name
