"""Run groups: replicates of one training, one run per seed, in one folder.

``embedlab train DATASET --seeds 1,2,3 --out runs/x`` writes::

    runs/x/
      group.json     marks the folder as a run group: dataset, trainer, seeds, members, options
      seed-1/        an ordinary run folder (run.json, weights.safetensors, <table>.csv)
      seed-2/
      seed-3/

Every command that reads several runs (``analyze``, ``compare --runs``) accepts the group
folder in place of its members (:func:`expand_runs`). Members are trained in parallel
processes (:func:`train_replicates`: a pool of ``min(len(seeds), cores)`` workers, one torch
thread each), each saved atomically as it finishes; ``group.json`` is written last, so a
group folder lists only members that are complete.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from embedlab.errors import RunFormatError, UsageError

GROUP_FILE = "group.json"
GROUP_KIND = "embedlab-run-group"
GROUP_FORMAT = 1
#: the most replicates one ``--seeds`` trains (a typo such as ``0-4294967295`` is refused at once)
MAX_SEEDS = 1000


def member_name(seed: int) -> str:
    """The folder of one seed's run inside a group: ``seed-1``."""
    return f"seed-{int(seed)}"


def parse_seeds(text: str | Sequence[int]) -> list[int]:
    """``"1,2,3"`` or ``"1-3"`` (or a list) -> ``[1, 2, 3]``; distinct, in the order given."""
    if not isinstance(text, str):
        items = [int(s) for s in text]
    else:
        items = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            try:
                if sep and lo.strip():
                    a, b = int(lo), int(hi)
                    if b < a:
                        raise ValueError
                    if b - a + 1 > MAX_SEEDS or len(items) + b - a + 1 > MAX_SEEDS:
                        raise UsageError(
                            f"--seeds {text!r}: {part!r} is {b - a + 1:,} seeds; one --seeds trains "
                            f"at most {MAX_SEEDS:,} replicates"
                        )
                    items.extend(range(a, b + 1))
                else:
                    items.append(int(part))
            except ValueError:
                raise UsageError(f"--seeds {text!r}: {part!r} is not a seed or a range A-B of seeds") from None
    seeds = list(dict.fromkeys(items))
    if len(seeds) > MAX_SEEDS:
        raise UsageError(f"--seeds: {len(seeds):,} seeds; one --seeds trains at most {MAX_SEEDS:,} replicates")
    if not seeds:
        raise UsageError("--seeds: give at least one seed, e.g. --seeds 1,2,3")
    if any(s < 0 or s > 2**32 - 1 for s in seeds):  # the range of --seed (training.fitconfig.MAX_SEED)
        raise UsageError(f"--seeds {text!r}: seeds must be between 0 and 4294967295")
    return seeds


def is_run_group(path: str | Path) -> bool:
    return (Path(path) / GROUP_FILE).is_file()


def read_group(path: str | Path) -> dict[str, Any]:
    """group.json of a run group (checked: it names its members, each a folder inside)."""
    path = Path(path)
    gfile = path / GROUP_FILE
    from embedlab.io.strictjson import read_json

    try:
        meta = read_json(gfile)
    except OSError as exc:
        raise RunFormatError(f"{str(gfile)!r} is not a readable run group file: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RunFormatError(f"{str(gfile)!r} is not a readable run group file: it {exc}") from None
    members = meta.get("runs") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or meta.get("kind") != GROUP_KIND or not isinstance(members, list) or not members:
        raise RunFormatError(f"{str(gfile)!r} does not describe a run group (no 'runs')")
    for m in members:
        if not isinstance(m, str) or "/" in m or "\\" in m or m.startswith("."):
            raise RunFormatError(f"{str(gfile)!r}: member {m!r} is not a folder inside the group")
    return meta


def complete_members(meta: dict[str, Any]) -> list[str]:
    """The members of a group that are complete: group.json's ``complete`` (written by an
    interrupted ``train --seeds``), else all of its ``runs``."""
    done = meta.get("complete")
    if isinstance(done, list):
        return [m for m in meta["runs"] if m in done]
    return list(meta["runs"])


def expand_runs(paths: Sequence[str | Path], warn: Callable[[str], None] | None = None) -> list[tuple[str, Path]]:
    """Run folders and run-group folders -> ``[(label, run folder)]``, groups replaced by
    their members. Labels are short and distinct: the member folder (``seed-1``) when one
    group is given, ``group/seed-1`` when several folders are. A group left partial by an
    interrupted ``train --seeds`` gives its complete members, and ``warn`` (default: a
    Python warning) says which are missing."""
    from embedlab.run import is_run_dir

    if warn is None:
        import warnings

        def warn(message: str) -> None:
            warnings.warn(message, stacklevel=3)

    found: list[tuple[Path, Path | None]] = []  # (run folder, its group)
    for raw in paths:
        p = Path(raw)
        if is_run_group(p):
            meta = read_group(p)
            members = complete_members(meta)
            missing = [m for m in meta["runs"] if m not in members]
            if not members:
                raise RunFormatError(
                    f"run group {str(p)!r} has no complete member (its training was interrupted); "
                    f"rerun the same `embedlab train ... --seeds` command to train them"
                )
            if missing:
                warn(
                    f"run group {str(p)!r} is partial (its training was interrupted): using {', '.join(members)}; "
                    f"{', '.join(missing)} not trained (rerun the same command to train them)"
                )
            for m in members:
                if not is_run_dir(p / m):
                    raise RunFormatError(f"{str(p / m)!r}: member of run group {str(p)!r} is missing or incomplete")
                found.append((p / m, p))
        elif p.is_dir() and is_run_dir(p):
            found.append((p, None))
        elif p.is_dir():
            raise RunFormatError(f"{str(p)!r} is neither an embedlab run (run.json) nor a run group ({GROUP_FILE})")
        else:
            raise RunFormatError(f"{str(p)!r} is not a folder; give run folders or run-group folders")
    seen: set[Path] = set()
    unique = []
    for run_dir, group in found:
        key = run_dir.resolve()
        if key in seen:
            raise UsageError(f"{str(run_dir)!r} is given twice")
        seen.add(key)
        unique.append((run_dir, group))
    single_group = len(paths) == 1 and unique and unique[0][1] is not None
    labels = []
    for run_dir, group in unique:
        if single_group:
            labels.append(run_dir.name)
        elif group is not None:
            labels.append(f"{group.name}/{run_dir.name}")
        else:
            labels.append(run_dir.name)
    if len(set(labels)) < len(labels):  # same names in different places: use the paths
        labels = [str(run_dir) for run_dir, _ in unique]
    return [(label, run_dir) for label, (run_dir, _) in zip(labels, unique)]


def check_group_out(out: Path, seeds: Sequence[int] = (), force: bool = False) -> None:
    """``--out`` of ``--seeds``, under the write rule of single runs (:mod:`embedlab.io.ownership`):
    new, empty, or a run group embedlab wrote (its ``group.json`` and member runs are then
    replaced, each member only once its new run is complete); a folder holding other files
    only with ``force``; never a file, a single run, or a folder inside a run."""
    from embedlab.io.ownership import check_file, check_run_dir, is_run_folder

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} is a file, not a folder")
    if is_run_folder(out):
        raise UsageError(
            f"--out {str(out)!r} is a single run, not a run group; choose a new folder for "
            f"--seeds (embedlab never overwrites other data)"
        )
    check_run_dir(out, force=True)  # creatable, not inside a run (its contents are checked below)
    if out.is_dir() and not force and not is_run_group(out):
        others = [p.name for p in out.iterdir() if not p.name.startswith(".")]
        if others:
            raise UsageError(
                f"--out {str(out)!r} exists and is not an embedlab run group (it holds "
                f"{others[0]!r}); choose a new folder, or --force"
            )
    if (out / GROUP_FILE).exists():
        check_file(out / GROUP_FILE, force=force, option="--out")
    for seed in seeds:
        check_run_dir(out / member_name(seed), force=force)


def write_group(out: Path, meta: dict[str, Any], force: bool = False) -> Path:
    """Write group.json (atomically, recorded as embedlab's file) naming the members."""
    from embedlab.io.ownership import write_owned_text

    payload = {"kind": GROUP_KIND, "format_version": GROUP_FORMAT, **meta}
    return write_owned_text(
        out / GROUP_FILE, json.dumps(payload, indent=2, default=str) + "\n", force=force, option="--out"
    )


@dataclass
class MemberResult:
    seed: int
    path: str
    metrics: dict[str, Any]
    seconds: float


#: a worker's queue to the parent: (seed, epoch, epochs) after each epoch of its member
_EPOCHS_TO_PARENT: Any = None


def _train_member(
    dataset: str,
    trainer: str | None,
    values: dict[str, Any],
    seed: int,
    out: str,
    threads: int,
    on_epoch: Callable[[int, int, Any], None] | None = None,
) -> MemberResult:
    """One replicate, in a worker process: load with this seed, train, save; each epoch is
    reported through ``on_epoch(seed, epoch, epochs)`` (in a worker: to the parent's queue)."""
    from embedlab.training.learner import listen_to_epochs

    queue, total = _EPOCHS_TO_PARENT, values.get("epochs")

    def listener(row: dict) -> None:
        item = (seed, int(row.get("epoch", 0)), total)
        on_epoch(*item) if on_epoch is not None else queue.put(item)

    before = listen_to_epochs(listener if on_epoch is not None or queue is not None else None)
    try:
        return _train_one(dataset, trainer, values, seed, out, threads)
    finally:
        listen_to_epochs(before)


def _train_one(
    dataset: str, trainer: str | None, values: dict[str, Any], seed: int, out: str, threads: int
) -> MemberResult:
    import torch

    from embedlab.registry import get_dataset, trainer_for_dataset

    torch.set_num_threads(max(1, threads))
    t0 = time.perf_counter()
    entry = get_dataset(dataset)
    chosen = trainer_for_dataset(entry, trainer)
    ds_opts, cfg = entry.split_options(dict(values, seed=seed))
    cfg.pop("trainer", None)
    data = entry.load_dataset(ds_opts, seed=seed)
    run = chosen.train(data, cfg, progress=False)
    run.save(out)
    return MemberResult(seed, out, dict(run.metrics), time.perf_counter() - t0)


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def train_replicates(
    dataset: str,
    values: dict[str, Any],
    seeds: Sequence[int],
    out: str | Path,
    trainer: str | None = None,
    workers: int | None = None,
    echo: Callable[[str], None] | None = None,
    force: bool = False,
    on_epoch: Callable[[int, int, Any], None] | None = None,
) -> list[MemberResult]:
    """Train one run per seed into the group folder ``out`` (see the module docstring).

    ``values`` are the command's option values (dataset and trainer options, without the
    seed). ``workers``: parallel processes (default ``min(len(seeds), cores)``); each worker
    uses one torch thread. ``workers=1`` trains in this process, one seed after another.
    ``on_epoch(seed, epoch, epochs)``: called as each member finishes an epoch (live, from the
    workers too; the CLI draws one bar per member).
    """
    out = Path(out)
    seeds = parse_seeds(seeds)
    check_group_out(out, seeds, force=force)
    echo = echo or (lambda _msg: None)
    workers = min(len(seeds), available_cores()) if workers is None else max(1, int(workers))
    values = {k: v for k, v in values.items() if k != "seed"}
    out.mkdir(parents=True, exist_ok=True)
    group = _group_record(dataset, trainer, seeds, values, workers)
    kept = _kept_members(out, group)
    if kept:
        echo(f"resuming the interrupted run group {str(out)!r}: {', '.join(m.path for m in kept)} already complete")
    todo = [s for s in seeds if s not in {m.seed for m in kept}]
    how = (
        f"in {workers} parallel processes, 1 torch thread each" if workers > 1 else "one after another in this process"
    )
    echo(f"training {len(todo)} replicates (seeds {', '.join(map(str, todo))}) {how}")
    jobs = [(s, str(out / member_name(s))) for s in todo]
    done: list[MemberResult] = list(kept)

    def report(r: MemberResult) -> None:
        echo(f"[{len(done)}/{len(seeds)}] seed {r.seed}: {_finals(r)} ({r.seconds:.1f} s) -> {r.path}")

    try:
        _train_jobs(jobs, workers, (dataset, trainer, values), done, report, on_epoch)
    except KeyboardInterrupt:
        raise _interrupted(out, group, seeds, done) from None
    done.sort(key=lambda r: seeds.index(r.seed))
    write_group(out, group, force=True)  # checked before training (check_group_out)
    return done


def _group_record(
    dataset: str, trainer: str | None, seeds: list[int], values: dict[str, Any], workers: int
) -> dict[str, Any]:
    """group.json's content (without the progress of an interrupted group)."""
    return {
        "dataset": dataset,
        "trainer": trainer,
        "seeds": seeds,
        "runs": [member_name(s) for s in seeds],
        "options": json.loads(json.dumps({k: v for k, v in values.items() if v is not None}, default=str)),
        "workers": workers,
    }


def _finals(r: MemberResult) -> str:
    """A member's final validation metrics: 'valid_loss 0.8812, ...'."""
    return ", ".join(f"{k} {v:.4f}" for k, v in r.metrics.items() if k.startswith("valid_") and isinstance(v, float))


def _train_jobs(jobs: list, workers: int, common: tuple, done: list, report, on_epoch=None) -> None:
    """Train ``jobs`` (seed, path): in this process one after another (``workers == 1``, torch's
    thread count restored after), else in a pool; each result is appended to ``done`` and reported."""
    if workers == 1:
        import torch

        dataset, trainer, values = common
        before = torch.get_num_threads()
        try:
            for seed, path in jobs:
                done.append(_train_member(dataset, trainer, values, seed, path, 1, on_epoch=on_epoch))
                report(done[-1])
        finally:
            torch.set_num_threads(before)
    elif jobs:
        _train_in_pool(jobs, workers, common, done, report, on_epoch)


def _interrupted(out: Path, group: dict[str, Any], seeds: list[int], done: Sequence[MemberResult]) -> Exception:
    """After Ctrl-C: group.json records the complete members; the error that says what is left."""
    from embedlab.errors import EmbedlabError

    complete = [member_name(s) for s in seeds if s in {r.seed for r in done}]
    write_group(
        out, {**group, "complete": complete, "results": _results(done)}, force=True
    )  # ours: written above or just checked
    left = [member_name(s) for s in seeds if member_name(s) not in complete]
    return EmbedlabError(
        f"interrupted: run group {str(out)!r} is partial: "
        f"{', '.join(complete) or 'no member'} complete, {', '.join(left)} not; `analyze` uses "
        f"the complete ones; rerun the same command to train the rest"
    )


def _results(done: Sequence[MemberResult]) -> dict[str, Any]:
    return {member_name(r.seed): {"metrics": r.metrics, "seconds": r.seconds} for r in done}


def _kept_members(out: Path, group: dict[str, Any]) -> list[MemberResult]:
    """The members an interrupted run of the same command completed (group.json embedlab wrote,
    same dataset, trainer and options, each member still its run, unchanged)."""
    from embedlab.io.ownership import is_owned_run, is_recorded

    gfile = out / GROUP_FILE
    if not is_recorded(gfile):
        return []
    try:
        old = read_group(out)
    except RunFormatError:
        return []
    if not isinstance(old.get("complete"), list) or any(
        old.get(k) != group[k] for k in ("dataset", "trainer", "options")
    ):
        return []
    results = old.get("results") if isinstance(old.get("results"), dict) else {}
    kept = []
    for seed in group["seeds"]:
        name = member_name(seed)
        if name in old["complete"] and is_owned_run(out / name):
            info = results.get(name) if isinstance(results.get(name), dict) else {}
            kept.append(
                MemberResult(seed, str(out / name), dict(info.get("metrics") or {}), float(info.get("seconds") or 0.0))
            )
    return kept


def _quiet_worker(queue: Any = None) -> None:
    """A replicate worker ignores Ctrl-C: the parent stops it (no traceback from each worker);
    ``queue``: where it reports its members' epochs."""
    import signal

    global _EPOCHS_TO_PARENT
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _EPOCHS_TO_PARENT = queue


def _train_in_pool(jobs, workers: int, common: tuple, done: list, report, on_epoch=None) -> None:
    import multiprocessing
    import queue as queues
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads can hang
    epochs = ctx.Queue()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_quiet_worker, initargs=(epochs,))

    def drain() -> None:
        while True:
            try:
                seed, epoch, total = epochs.get_nowait()
            except (queues.Empty, OSError, ValueError):
                return
            if on_epoch is not None:
                on_epoch(seed, epoch, total)

    try:
        pending = {pool.submit(_train_member, *common, seed, path, 1) for seed, path in jobs}
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            drain()  # each member's epochs, live
            for fut in finished:
                done.append(fut.result())
                report(done[-1])
    except BaseException:
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()  # a member being trained is not saved: its folder never appears
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
