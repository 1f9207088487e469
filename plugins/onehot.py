"""``onehot``: an embedding lookup is one-hot @ weight, only cheaper; and does embedding beat one-hot?

Lesson 5's argument, and Guo & Berkhahn's (2016) Tables 3 and 4, in two parts.

**The equivalence (every run, collab or tabular).** For each embedding table ``W`` (n x d, the
vectors the run stores), every entity's lookup ``W[i]`` is compared with ``one_hot(i, n) @ W``
(torch: ``F.embedding`` against ``F.one_hot(...).float() @ W``), all n entities, in blocks of at
most 2**24 one-hot elements. The result is ``lookup_equals_onehot`` (1 when the largest absolute
difference is within 4 float32 epsilons of the table's largest magnitude, else 0; a non-finite
weight makes it 0: ``0 * inf`` is NaN, so one-hot @ W then differs from the lookup). What the
lookup saves is measured on a batch of ``--onehot-batch`` random codes (fewer when the one-hot
batch would pass 2**24 elements): the seconds of each (best of 7 repeats, the one-hot
construction included), and the bytes of each input (the one-hot float32 matrix against the
int64 codes; both outputs are the same batch x d matrix).

**The retraining (tabular runs whose trainer declares ``categorical_encodings`` with
"onehot").** The run's dataset is reloaded (its loader options, split and seed), and the run's
own config is trained once per arm of ``--onehot-arms``, in this process, one after another:

* ``embedding``: the run's network again (a lookup table per categorical input);
* ``onehot``: each categorical input as a real one-hot float vector through ``nn.Linear(levels,
  width)`` with its bias and PyTorch's default initialisation, the same width as the embedding,
  then the same layers;
* ``onehot-direct`` (not by default): the one-hot vectors straight into the first hidden layer,
  as the paper's one-hot network.

Same rows (``--train-sample`` drawn with the run's seed), split, epochs, optimizer, schedule and
seed; no ``--init-from`` or freezing (every arm starts from scratch). Before the measured arms
every arm trains one unmeasured epoch on 512 rows (warm-up: lazy imports and first allocations
would otherwise be charged to whichever arm trains first). For each arm: every
validation metric, parameters (total and those that map categorical inputs), training seconds
(the trainer's fit time, and the wall time of the whole call), peak memory (the growth of this
process's resident set over its level before the arm, sampled every 5 ms from /proc: includes
the tensors of the rows, so compare the arms, not the absolute figure), the CPU seconds of the
process during the call (``time.process_time``: on a shared machine the wall time follows the
load, which may change between arms) and the 1-minute load average before and after. Metrics: ``<arm>_<metric>`` with the arm's
name, "-" as "_" (``onehot_valid_mape``, ``embedding_valid_mape``, ``onehot_direct_valid_mape``),
plus ratios ``onehot_over_embedding_<metric>``. The paper's network row is shown beside:
time-based split (latest 10 % as test, Table 4) MAPE one-hot 0.101, embedding 0.093; shuffled
(Table 3) 0.070 and 0.070.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
import time
from typing import Any

import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.analysis import RUN_LEVEL, Analysis, AnalysisOption, AnalysisResult
from embedlab.errors import EmbedlabError, UsageError
from embedlab.run import Run
from embedlab.trainers.base import torch_threads

from embedlab.toolkit.options import SEED
from embedlab.toolkit.retrain import reload_dataset, trainer_of

ARMS = ("embedding", "onehot", "onehot-direct")
ARM_LABELS = {
    "embedding": "entity embedding (lookup)",
    "onehot": "one-hot -> linear layer (same width)",
    "onehot-direct": "one-hot -> first hidden layer (paper's)",
}
#: Guo & Berkhahn 2016, the neural network's MAPE: (one-hot, entity embedding)
PAPER = {"time": (0.101, 0.093), "random": (0.070, 0.070)}
PAPER_TABLE = {"time": "Table 4, time-based split (latest 10% as test)", "random": "Table 3, shuffled data"}
METRIC_PREFERENCE = ("valid_mape", "valid_rmspe", "valid_rmse", "valid_rmse_log", "valid_logloss", "valid_loss")
MAX_ONEHOT_ELEMENTS = 2**24  # 64 MB of float32 per one-hot block
CLEARED = {"init_from": None, "init_table": (), "init_keys": None, "freeze": None, "freeze_to": None}

ONEHOT_ARMS = AnalysisOption(
    "onehot_arms",
    str,
    "embedding,onehot",
    "Comma-separated arms to train: embedding, onehot, onehot-direct (the paper's "
    "one-hot network: one-hot vectors straight into the first hidden layer).",
)
ONEHOT_RETRAIN = AnalysisOption(
    "onehot_retrain",
    bool,
    True,
    "Tabular runs: retrain the network one-hot and embedded (false: the lookup equivalence only).",
)
ONEHOT_BATCH = AnalysisOption("onehot_batch", int, 4096, "Codes per timed lookup / one-hot product.")


def _slug(arm: str) -> str:
    return arm.replace("-", "_")


# ---------------------------------------------------------------------------- the equivalence
def lookup_equivalence(vectors: np.ndarray, batch: int = 4096, seed: int = 0, repeats: int = 7) -> dict[str, Any]:
    """Compare ``W[i]`` with ``one_hot(i, n) @ W`` for every row i of ``vectors`` (n x d), and
    time both on a batch of random codes. Returns the checked rows, the largest absolute
    difference, the tolerance, ``equal`` and the measured seconds and input bytes."""
    with torch_threads(1):  # one thread: a busy shared machine makes OpenMP threads spin
        return _lookup_equivalence(vectors, batch, seed, repeats)


def _lookup_equivalence(vectors: np.ndarray, batch: int, seed: int, repeats: int) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    w = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    if w.ndim == 1:
        w = w[:, None]
    n, d = w.shape
    block = max(1, min(n, MAX_ONEHOT_ELEMENTS // max(n, 1)))
    worst, nonfinite = 0.0, False
    with torch.no_grad():
        for s in range(0, n, block):
            idx = torch.arange(s, min(n, s + block))
            looked = F.embedding(idx, w)
            product = F.one_hot(idx, n).to(torch.float32) @ w
            diff = (looked - product).abs()
            if not torch.isfinite(diff).all():
                nonfinite = True
            else:
                worst = max(worst, float(diff.max()) if diff.numel() else 0.0)
        scale = float(w.abs().max()) if n and torch.isfinite(w).all() else float("nan")
        tol = 4 * float(np.finfo(np.float32).eps) * (scale if np.isfinite(scale) else 0.0)
        equal = (not nonfinite) and worst <= tol
        b = max(1, min(int(batch), MAX_ONEHOT_ELEMENTS // max(n, 1)))
        codes = (
            torch.from_numpy(np.random.default_rng(seed).integers(0, n, size=b))
            if n
            else torch.zeros(0, dtype=torch.long)
        )

        def timed(fn) -> tuple[float, Any]:
            times, out = [], fn()  # one unmeasured call first (first-call set-up)
            for _ in range(repeats):
                t0 = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t0)
            return float(min(times)), out  # the best of the repeats: the least disturbed by load

        t_lookup, _ = timed(lambda: F.embedding(codes, w))
        hot = F.one_hot(codes, n).to(torch.float32)
        t_onehot, _ = timed(lambda: F.one_hot(codes, n).to(torch.float32) @ w)
    return {
        "rows": int(n),
        "dim": int(d),
        "max_abs_diff": float("nan") if nonfinite else worst,
        "tolerance": tol,
        "equal": bool(equal),
        "batch": int(b),
        "lookup_seconds": t_lookup,
        "onehot_seconds": t_onehot,
        "lookup_input_bytes": int(codes.element_size() * codes.nelement()),
        "onehot_input_bytes": int(hot.element_size() * hot.nelement()),
        "output_bytes": int(b * d * w.element_size()),
        "onehot_multiply_adds": int(b) * int(n) * int(d),
    }


# ---------------------------------------------------------------------------- memory while training
class PeakRSS:
    """Peak growth of this process's resident set inside a ``with`` block, in bytes (sampled
    every ``interval`` s from /proc/self/statm; NaN where there is no /proc)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = float("nan")
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def _rss(self) -> float:
        try:
            with open("/proc/self/statm") as fh:
                return float(fh.read().split()[1]) * self._page
        except (OSError, IndexError, ValueError):
            return float("nan")

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._top = max(self._top, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRSS":
        gc.collect()
        try:  # hand freed heap back to the system, so the next arm starts from a fair level
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        self._base = self._rss()
        self._top = self._base
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._top = max(self._top, self._rss())
        self.peak = self._top - self._base


def _load() -> float:
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return float("nan")


def _parameters(trained: Run) -> tuple[float, float]:
    """(all parameters, those that map categorical inputs) as the trainer reports them in its
    metrics (``n_parameters``, ``n_categorical_parameters``), else NaN."""
    m = trained.metrics
    return float(m.get("n_parameters", np.nan)), float(m.get("n_categorical_parameters", np.nan))


class OneHot(Analysis):
    name = "onehot"
    by_default = False  # retrains the network (minutes on real data): run with --only onehot
    requires = ("training_data",)  # retrains the network on the run's data
    title = "One-hot encoding against entity embeddings"
    description = (
        "Checks that each table's embedding lookup equals one-hot @ weight for every entity and "
        "measures what the lookup saves; for tabular runs retrains the network with one-hot "
        "inputs and with embeddings (same rows, split, epochs, seed) and compares validation "
        "metric, parameters, time and memory with Guo & Berkhahn 2016's Tables 3/4."
    )
    options = [ONEHOT_ARMS, ONEHOT_RETRAIN, ONEHOT_BATCH, SEED]

    def applies_to(self, run: Run) -> list:
        return [RUN_LEVEL] if run.table_names else []

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _arms(options: dict[str, Any]) -> list[str]:
        arms = [a.strip() for a in str(options.get("onehot_arms") or "embedding,onehot").split(",") if a.strip()]
        bad = [a for a in arms if a not in ARMS]
        if bad:
            raise UsageError(f"--onehot-arms: unknown arm {bad[0]!r}; choose from {', '.join(ARMS)}")
        return list(dict.fromkeys(arms))

    @staticmethod
    def _retrainable(run: Run) -> tuple[Any, str]:
        """(trainer entry or None, why not)."""
        if run.kind != "tabular":
            return None, f"a {run.kind} run has no network of categorical inputs to retrain one-hot"
        try:
            trainer = trainer_of(run)
        except EmbedlabError as exc:
            return None, str(exc)
        if "onehot" not in trainer.categorical_encodings:
            return None, (
                f"trainer {trainer.name!r} declares no 'onehot' categorical encoding "
                f"(categorical_encodings: {', '.join(trainer.categorical_encodings)})"
            )
        return trainer, ""

    # ------------------------------------------------------------------ run
    def run(self, run: Run, table: str | None, options: dict[str, Any]) -> AnalysisResult:
        seed = int(options.get("seed") if options.get("seed") is not None else 0)
        batch = int(options.get("onehot_batch") or 4096)
        arms = self._arms(options)
        eq_rows = []
        for name in run.table_names:
            t = run.table(name)
            res = lookup_equivalence(t.vectors, batch=batch, seed=seed)
            eq_rows.append(
                {
                    "table": name,
                    "entities checked": res["rows"],
                    "width": res["dim"],
                    "max |lookup - onehot @ W|": res["max_abs_diff"],
                    "tolerance": res["tolerance"],
                    "equal": res["equal"],
                    "batch": res["batch"],
                    "lookup ms": 1e3 * res["lookup_seconds"],
                    "one-hot @ W ms": 1e3 * res["onehot_seconds"],
                    "speed-up": res["onehot_seconds"] / max(res["lookup_seconds"], 1e-9),
                    "lookup input KB": res["lookup_input_bytes"] / 1024,
                    "one-hot input KB": res["onehot_input_bytes"] / 1024,
                    "memory ratio": res["onehot_input_bytes"] / max(res["lookup_input_bytes"], 1),
                    "one-hot multiply-adds": res["onehot_multiply_adds"],
                }
            )
        eq = pd.DataFrame(eq_rows)
        largest = eq.loc[eq["entities checked"].idxmax()]
        metrics: dict[str, float] = {
            "lookup_equals_onehot": float(bool(eq["equal"].all())),
            "lookup_max_abs_diff": float(eq["max |lookup - onehot @ W|"].max(skipna=False)),
            "entities_checked": float(eq["entities checked"].sum()),
            "lookup_speedup": float(largest["speed-up"]),
            "lookup_memory_ratio": float(largest["memory ratio"]),
            "lookup_ms": float(largest["lookup ms"]),
            "onehot_matmul_ms": float(largest["one-hot @ W ms"]),
        }
        failed = eq.loc[~eq["equal"], "table"].tolist()
        eq_text = (
            f"Lookup = one-hot @ W: {'holds' if not failed else 'FAILS'} for every entity of "
            f"{'all ' + str(len(eq)) + ' tables' if len(eq) > 1 else 'the table'} "
            f"({int(eq['entities checked'].sum()):,} entities; largest difference "
            f"{metrics['lookup_max_abs_diff']:.3g})"
            + (f"; not for {', '.join(failed)} (non-finite or differing weights)" if failed else "")
            + f". For {largest['table']} ({int(largest['entities checked']):,} x {int(largest['width'])}), a "
            f"batch of {int(largest['batch']):,} codes: lookup {largest['lookup ms']:.3f} ms against "
            f"one-hot @ W {largest['one-hot @ W ms']:.3f} ms ({largest['speed-up']:.0f}x), input "
            f"{largest['lookup input KB']:.0f} KB of codes against {largest['one-hot input KB']:,.0f} KB of "
            f"one-hot floats ({largest['memory ratio']:,.0f}x); load average {_load():.1f} (times on a "
            f"shared machine vary)."
        )
        tables = {"lookup against one-hot @ W (every entity)": eq}
        data: dict[str, Any] = {"equivalence": eq}
        parts = [eq_text]
        finding = eq_text.split(". ")[0]
        trainer, why = self._retrainable(run)
        retrain = options.get("onehot_retrain")
        if trainer is not None and (retrain is None or retrain):
            frame, arm_metrics, words, finding = self._retrain(run, trainer, arms)
            metrics.update(arm_metrics)
            tables["one-hot against embedding (retrained, this process)"] = frame
            data["arms"] = frame
            parts = words + parts
        elif trainer is None:
            parts.append(f"No retraining: {why}.")
        else:
            parts.append("No retraining (--onehot-retrain false).")
        return AnalysisResult(
            self.name,
            table,
            self.title,
            summary=" ".join(parts),
            metrics=metrics,
            tables=tables,
            data=data,
            finding=finding,
            headline=[k for k in ("onehot_valid_mape", "embedding_valid_mape", "lookup_equals_onehot") if k in metrics],
        )

    def _retrain(self, run: Run, trainer, arms: list[str]):
        dataset = reload_dataset(run)
        if dataset.valid is None or not len(dataset.valid):
            raise UsageError(f"run {run.path or ''}: its split ({dataset.split.get('name')}) has no validation rows")
        unsupported = [a for a in arms if a not in trainer.categorical_encodings]
        if unsupported:
            raise UsageError(
                f"--onehot-arms {unsupported[0]}: trainer {trainer.name!r} honours only "
                f"{', '.join(trainer.categorical_encodings)}"
            )
        rows, trained = [], {}
        # warm-up, unmeasured: one epoch of every arm on 512 rows, so one-off costs (lazy imports,
        # first allocations) do not land on whichever arm happens to train first
        small = dataclasses.replace(dataset, train=dataset.train.iloc[:512], valid=dataset.valid.iloc[:128])
        for arm in arms:
            # a constant schedule: 512 rows at the run's batch size may be fewer steps than one-cycle needs
            trainer.train(
                small,
                {
                    **run.config,
                    **CLEARED,
                    "categorical_encoding": arm,
                    "epochs": 1,
                    "train_sample": 0,
                    "schedule": "constant",
                },
                progress=False,
            )
        for arm in arms:
            cfg = {**run.config, **CLEARED, "categorical_encoding": arm}
            load_before = _load()
            t0, c0 = time.perf_counter(), time.process_time()
            with PeakRSS() as mem:
                out = trainer.train(dataset, cfg, progress=False)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            trained[arm] = out
            params, cat_params = _parameters(out)
            rows.append(
                {
                    "arm": arm,
                    "how": ARM_LABELS[arm],
                    **{k: float(v) for k, v in out.metrics.items() if k.startswith("valid_")},
                    "parameters": params,
                    "categorical parameters": cat_params,
                    "train seconds": float(out.metrics.get("train_seconds", np.nan)),
                    "wall seconds": wall,
                    "cpu seconds": cpu,
                    "peak memory MB": mem.peak / 2**20,
                    "load before": load_before,
                    "load after": _load(),
                }
            )
        frame = pd.DataFrame(rows)
        metric = next((m for m in METRIC_PREFERENCE if m in frame and frame[m].notna().all()), None)
        split = (dataset.split or {}).get("name")
        paper = PAPER.get(split)
        frame["paper"] = [
            (paper[0] if a.startswith("onehot") else paper[1]) if paper and metric == "valid_mape" else np.nan
            for a in frame["arm"]
        ]
        metrics: dict[str, float] = {}
        for _, r in frame.iterrows():
            p = _slug(r["arm"])
            for k in frame.columns:
                if k.startswith("valid_"):
                    metrics[f"{p}_{k}"] = float(r[k])
            metrics[f"{p}_parameters"] = float(r["parameters"])
            metrics[f"{p}_categorical_parameters"] = float(r["categorical parameters"])
            metrics[f"{p}_train_seconds"] = float(r["train seconds"])
            metrics[f"{p}_cpu_seconds"] = float(r["cpu seconds"])
            metrics[f"{p}_peak_memory_mb"] = float(r["peak memory MB"])
        by = frame.set_index("arm")
        if "embedding" in by.index:
            for arm in (a for a in arms if a != "embedding"):
                p = _slug(arm)
                if metric:
                    metrics[f"{p}_over_embedding_{metric}"] = float(by.loc[arm, metric] / by.loc["embedding", metric])
                for col, key in (
                    ("train seconds", "train_seconds"),
                    ("cpu seconds", "cpu_seconds"),
                    ("parameters", "parameters"),
                    ("peak memory MB", "peak_memory"),
                ):
                    metrics[f"{p}_over_embedding_{key}"] = float(by.loc[arm, col] / by.loc["embedding", col])
        train_rows = int(next(iter(trained.values())).metrics.get("train_rows", len(dataset.train)))
        cfg = next(iter(trained.values())).config
        setting = (
            f"{run.dataset}, split {split or '?'}"
            + (
                f" (validation {dataset.split.get('valid_start')} .. {dataset.split.get('valid_end')})"
                if dataset.split.get("valid_start")
                else ""
            )
            + f", {train_rows:,} training rows, {len(dataset.valid):,} validation rows, "
            f"{cfg.get('epochs')} epochs, batch {cfg.get('bs')}, seed {cfg.get('seed')}"
        )
        words = [f"Setting: {setting}; each arm trained from scratch in this process, in the order {', '.join(arms)}."]
        finding = ""
        if metric and "embedding" in by.index:
            e = float(by.loc["embedding", metric])
            for arm in (a for a in arms if a != "embedding"):
                o = float(by.loc[arm, metric])
                rel = (o - e) / e if e else float("nan")
                verdict = (
                    "embeddings better"
                    if rel > 0.02
                    else "one-hot better"
                    if rel < -0.02
                    else "about equal (within 2%)"
                )
                line = (
                    f"{ARM_LABELS[arm]}: {metric} {o:.4f} against embedding {e:.4f} ({rel:+.1%}: {verdict}); "
                    f"{by.loc[arm, 'parameters']:,.0f} against {by.loc['embedding', 'parameters']:,.0f} parameters, "
                    f"{by.loc[arm, 'train seconds']:.1f} s against {by.loc['embedding', 'train seconds']:.1f} s "
                    f"of training ({by.loc[arm, 'train seconds'] / by.loc['embedding', 'train seconds']:.2f}x; "
                    f"load average {by.loc[arm, 'load before']:.1f}-{by.loc[arm, 'load after']:.1f} against "
                    f"{by.loc['embedding', 'load before']:.1f}-{by.loc['embedding', 'load after']:.1f}, shared "
                    f"machine) and {by.loc[arm, 'cpu seconds']:.1f} against {by.loc['embedding', 'cpu seconds']:.1f} "
                    f"CPU seconds (process time: less sensitive to the machine's load), peak memory +{by.loc[arm, 'peak memory MB']:.0f} MB against "
                    f"+{by.loc['embedding', 'peak memory MB']:.0f} MB."
                )
                words.append(line)
                if not finding:
                    finding = f"one-hot {metric} {o:.4f} vs embedding {e:.4f} ({rel:+.1%}: {verdict})"
        if paper and metric == "valid_mape":
            words.append(
                f"Paper (Guo & Berkhahn 2016, {PAPER_TABLE[split]}): MAPE one-hot {paper[0]:.3f}, "
                f"entity embedding {paper[1]:.3f}."
            )
        else:
            words.append(
                "The paper's network rows (MAPE; Table 4, time-based: one-hot 0.101, embedding 0.093; "
                "Table 3, shuffled: 0.070 and 0.070) are for Rossmann's --split time and --split random "
                "with --preset guo2016; this run's setting differs, so compare the direction only."
            )
        return frame, metrics, words, finding

    # ------------------------------------------------------------------ figures
    def render(self, result: AnalysisResult) -> list:
        from embedlab.toolkit.plotting import bar_chart

        figs = []
        frame = result.data.get("arms")
        if frame is not None and len(frame):
            metric = next((m for m in METRIC_PREFERENCE if m in frame and frame[m].notna().all()), None)
            if metric:
                series = {"this run": frame[metric].to_numpy(dtype=float)}
                if frame["paper"].notna().any():
                    series["paper"] = frame["paper"].to_numpy(dtype=float)
                figs.append(bar_chart(frame["arm"].tolist(), series, f"validation {metric} (lower is better)", metric))
            figs.append(
                bar_chart(
                    frame["arm"].tolist(),
                    {"train seconds": frame["train seconds"].to_numpy(float)},
                    "training seconds (shared machine)",
                    "seconds",
                )
            )
        eq = result.data["equivalence"]
        figs.append(
            bar_chart(
                eq["table"].tolist(),
                {"lookup": eq["lookup ms"].to_numpy(float), "one-hot @ W": eq["one-hot @ W ms"].to_numpy(float)},
                "milliseconds per batch of codes",
                "ms",
            )
        )
        return figs


@hookimpl
def embedlab_register_analyses(register):
    register(OneHot())
