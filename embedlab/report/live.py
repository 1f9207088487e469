"""The Python API's notebook objects: an lr-find result, a live learner, a comparison.

Each displays inline in Jupyter (:mod:`embedlab.report.notebook`: BokehJS once per notebook)
and reads like fastai's: ``lr = embedlab.lr_find(...).suggestion``; ``learn.lr_find()``,
``learn.fit_one_cycle(5, 5e-3)``, ``learn.freeze()``, ``learn.fit_one_cycle(2, slice(1e-5, 1e-3))``,
``learn.plot_sched()``, ``learn.plot_loss()``, ``learn.run``.

The live learner wraps what a trainer's ``prepare`` returns (``Trainer.prepare``): the model
and the :class:`embedlab.training.Learner` that the trainer's own ``train`` uses, so every fit
here runs the same loop, and :attr:`LiveLearner.run` is the run the trainer itself would make.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from embedlab.report.notebook import Figures, ResultList
from embedlab.training.learner import FitResult
from embedlab.training.lr_find import SUGGESTION_RULES, LRFindResult


class LRFind:
    """An lr sweep: ``.suggestion`` (the ``rule``'s lr), ``.suggestions`` (every rule's),
    ``.plot()`` (loss against lr, each suggestion marked); displays as its plot."""

    def __init__(self, result: LRFindResult, rule: str = "valley", title: str = "lr find") -> None:
        if rule not in SUGGESTION_RULES:
            raise ValueError(f"rule {rule!r}: choose one of {', '.join(SUGGESTION_RULES)}")
        self.result, self.rule, self.title = result, rule, title

    lrs = property(lambda self: list(self.result.lrs))
    losses = property(lambda self: list(self.result.losses))

    @property
    def suggestions(self) -> dict[str, float]:
        return self.result.suggestions()

    @property
    def suggestion(self) -> float | None:
        """The learning rate the rule suggests (None when the sweep stopped too early)."""
        return self.suggestions.get(self.rule)

    def plot(self) -> Figures:
        from embedlab.report.lrplot import lr_figure

        return Figures([lr_figure(self.result, self.suggestions, self.rule, self.title)],
                       caption=self._text())

    def _text(self) -> str:
        sugg = self.suggestions
        if not sugg:
            return "the sweep stopped too early to suggest a learning rate"
        return "; ".join(f"{r} {lr:.1e}" + (" (suggested)" if r == self.rule else "") for r, lr in sugg.items())

    def _repr_html_(self) -> str:
        return self.plot()._repr_html_()

    def __repr__(self) -> str:
        s = self.suggestion
        return f"LRFind(suggestion={'None' if s is None else f'{s:.2e}'}, rule={self.rule!r}: {self._text()})"


def _lr(lr: Any):
    """fastai's ``slice(lo, hi)``/``slice(hi)`` -> :class:`LRSlice`; a number or a mapping stays."""
    from embedlab.training.fitconfig import LRSlice

    if isinstance(lr, slice):
        if lr.stop is None:
            raise ValueError("slice(lo, hi): give at least the highest learning rate")
        return LRSlice(hi=float(lr.stop), lo=None if lr.start is None else float(lr.start))
    if isinstance(lr, str):
        return LRSlice.parse(lr)
    return lr


class LiveLearner:
    """A trainer's model and Learner, trained step by step (``embedlab.learner(...)``).

    Each ``fit``/``fit_one_cycle`` continues from the model as it is (fastai's semantics);
    ``freeze()``/``unfreeze()``/``freeze_to(n)`` act on the model's layer groups (for collab:
    ``embeddings``, then ``biases``; :attr:`layer_groups`); :attr:`run` is the run of
    everything trained so far.
    """

    def __init__(self, prepared: Any, progress: bool | None = None, name: str = "") -> None:
        self.prepared = prepared
        self.progress = progress
        self.name = name
        self.fits: list = []
        #: the file :meth:`load` read last (None: the model is as trained here)
        self.loaded: str | None = None

    learner = property(lambda self: self.prepared.learner)
    model = property(lambda self: self.prepared.learner.model)
    config = property(lambda self: dict(self.prepared.config))
    #: the Learner's replaceable step and batches (:class:`embedlab.training.Learner`), read and set
    step = property(lambda self: self.learner.step, lambda self, fn: setattr(self.learner, "step", fn))
    batches = property(lambda self: self.learner.batches, lambda self, fn: setattr(self.learner, "batches", fn))

    def __getattr__(self, name: str) -> Any:
        """Everything else is the trainer's Learner's (``learn.opt``, ``learn.validate()``,
        ``learn.layer_groups()``...): one learner with notebook verbs, not a second loop."""
        if name.startswith("__") or name in ("prepared", "progress", "name", "fits"):
            raise AttributeError(name)
        return getattr(self.prepared.learner, name)

    @property
    def layer_groups(self) -> list[str]:
        return list(self.learner.layer_groups())

    @property
    def frozen_groups(self) -> list[str]:
        return self.learner.frozen_groups

    def freeze(self) -> None:
        """Train only the last layer group (fastai's ``freeze()``)."""
        self.learner.freeze()

    def unfreeze(self) -> None:
        self.learner.unfreeze()

    def freeze_to(self, n: int) -> None:
        self.learner.freeze_to(n)

    def _threads(self):
        from embedlab.trainers.base import torch_threads

        return torch_threads(self.prepared.threads)

    def lr_find(self, start_lr: float | None = None, end_lr: float | None = None, num: int = 100,
                rule: str = "valley") -> LRFind:
        """An lr sweep from the model as it is (restored afterwards), the frozen groups kept frozen."""
        with self._threads():
            result = self.learner.lr_find(start_lr, end_lr, num, progress=self.progress,
                                          config=self.prepared.fit_config.replace(freeze=None, freeze_to=None))
        return LRFind(result, rule, title=f"lr find: {self.name}" if self.name else "lr find")

    def fit(self, epochs: int, lr: Any = None, wd: float | None = None, cbs: Any = (), **changes: Any) -> pd.DataFrame:
        """Train ``epochs`` more epochs with the trainer's fit settings (``changes`` override
        them: ``schedule=``, ``opt=``, ``wd_mode=``...); ``lr`` may be fastai's
        ``slice(lo, hi)``; ``cbs``: more callbacks (:mod:`embedlab.training.callbacks`).
        Returns the per-epoch history of this fit."""
        config = self.prepared.fit_config.replace(epochs=int(epochs), freeze=None, freeze_to=None, **changes)
        if lr is not None:
            config = config.replace(lr=_lr(lr))
        if wd is not None:
            config = config.replace(wd=float(wd))
        with self._threads():
            fit = self.learner.fit(config, progress=self.progress, cbs=cbs)
        self.fits.append(fit)
        return pd.DataFrame(fit.history)

    def fit_one_cycle(self, epochs: int, lr: Any = None, wd: float | None = None, **changes: Any) -> pd.DataFrame:
        """fastai's ``fit_one_cycle``: :meth:`fit` with the one-cycle schedule."""
        return self.fit(epochs, lr, wd, schedule="one-cycle", **changes)

    def _combined(self) -> "_Fits":
        """Every fit so far as one FitResult (epochs numbered on, steps run on)."""
        if not self.fits:
            if not self.loaded:
                raise ValueError("nothing trained yet: call fit_one_cycle(...) first (or load(name))")
            with self._threads():  # a loaded model: its validation now is the run's metrics
                final = self.learner.validate()
            return _Fits(history=[], final=final, config=self.prepared.fit_config.to_config(),
                         merged=self.steps(), fit_configs=[], init=self.learner.init)
        last = self.fits[-1]
        history, epoch = [], 0
        for fit in self.fits:
            for row in fit.history:
                epoch += 1
                history.append({**row, "epoch": epoch})
        return _Fits(history=history, train_seconds=sum(f.train_seconds for f in self.fits),
                     final=dict(history[-1]) if history else {}, config=dict(last.config), lrs=last.lrs,
                     moms=last.moms, groups=last.groups, init=last.init, losses=last.losses,
                     merged=self.steps(), fit_configs=[dict(f.config, epochs=len(f.history)) for f in self.fits])

    @property
    def run(self):
        """The run of the model as it is now, recording every fit (unsaved: ``.save(path)``)."""
        combined = self._combined()
        self.prepared.config.update(combined.config)
        return self.prepared.finish(combined)

    def steps(self) -> dict[str, Any]:
        from embedlab.report.schedule import merge_steps

        return merge_steps([f.steps() for f in self.fits])

    def plot_sched(self) -> Figures:
        """Learning rate and momentum per step over every fit so far (fastai's ``plot_sched``)."""
        from embedlab.report.schedule import schedule_figures

        figs = schedule_figures(self.steps())
        return Figures([f for f in figs if "Training loss" not in f.title.text],
                       caption="one line per layer group; solid lines separate fits")

    def plot_loss(self) -> Figures:
        """The training loss of every step over every fit so far (fastai's ``plot_loss``)."""
        from embedlab.report.schedule import schedule_figures

        return Figures([f for f in schedule_figures(self.steps()) if "Training loss" in f.title.text])

    # ------------------------------------------------------------ predictions (fastai's verbs)
    def _set(self, ds: str):
        if ds in ("valid", "validation", 1):
            if self.learner.valid is None:
                raise ValueError("this learner has no validation rows (a split without them)")
            return self.learner.valid
        if ds in ("train", 0):
            return self.learner.train_inputs, self.learner.train_target
        raise ValueError(f"ds={ds!r}: choose 'valid' or 'train'")

    def get_preds(self, ds: str = "valid"):
        """fastai's ``get_preds``: ``(predictions, targets)`` of the validation rows (``ds="train"``:
        the training rows), as tensors in the rows' order (the dataset's order), on the CPU;
        from the model as it is now, in eval mode, exactly as validation computes them."""
        inputs, target = self._set(ds)
        with self._threads():
            preds = self.learner.predict(inputs)
        return preds.detach().cpu(), target.detach().cpu()

    def _codes(self, values, role: str):
        """Model rows of users or items given by key or label (the lookup rules of EmbeddingTable.find)."""
        return self.model.rows(values, is_item=role == "item")

    def predict(self, row: Any):
        """fastai's ``predict(row)`` for a collab learner: the predicted rating of one (user, item)
        pair, given as a mapping or Series with the data's user and item columns (or ``user`` and
        ``item``), or a ``(user, item)`` tuple; users and items by key or label. A DataFrame of
        pairs gives a Series of predictions (one per row, in order)."""
        import torch

        if getattr(self.model, "classes", None) is None:
            raise ValueError("predict(row) scores (user, item) pairs of a collab learner; for other runs use "
                             "learn.run.predict(frame)")
        cols = getattr(self.model, "columns", None) or {}
        frame = row if isinstance(row, pd.DataFrame) else None
        if frame is None:
            if isinstance(row, (tuple, list)) and len(row) == 2:
                pairs = [tuple(row)]
            else:
                pairs = [(_field(row, "user", cols), _field(row, "item", cols))]
        else:
            pairs = list(zip(*(frame[_column(frame, role, cols)] for role in ("user", "item"))))
        users = self._codes([p[0] for p in pairs], "user")
        items = self._codes([p[1] for p in pairs], "item")
        self.model.eval()
        with torch.no_grad():
            out = self.model(users, items).detach().cpu().double().numpy()
        if frame is None:
            return float(out[0])
        return pd.Series(out, index=frame.index, name="prediction")

    def show_results(self, n: int = 10, ds: str = "valid", seed: int = 0):
        """fastai's ``show_results``: ``n`` rows (a seeded sample) with their target and prediction,
        and a summary over every row: RMSE, and for a collab learner RMSE by how many training
        ratings the user and the item have. Displays as tables in a notebook and rich tables in
        a terminal (:class:`embedlab.report.results.Results`)."""
        import numpy as np

        from embedlab.report.results import Results, by_bucket, rmse

        inputs, _ = self._set(ds)
        preds, target = self.get_preds(ds)
        pred, targ = preds.double().numpy().reshape(len(preds), -1)[:, 0], target.double().numpy()
        rng = np.random.default_rng(seed)
        shown = np.sort(rng.choice(len(pred), size=min(int(n), len(pred)), replace=False))
        classes = getattr(self.model, "classes", None)
        table = pd.DataFrame()
        by_user = by_item = None
        if classes is not None and len(inputs) == 2:
            codes = [t.detach().cpu().numpy() for t in inputs]
            for role, c in zip(("user", "item"), codes):
                table[role] = classes[role].keys[c[shown]]
                table[f"{role}_label"] = classes[role].labels[c[shown]]
            counts = {role: np.asarray(classes[role].count if classes[role].count is not None
                                       else np.zeros(len(classes[role])))[c] for role, c in zip(("user", "item"), codes)}
            by_user, by_item = by_bucket(counts["user"], pred, targ), by_bucket(counts["item"], pred, targ)
        table["target"] = targ[shown]
        table["prediction"] = pred[shown]
        table["error"] = pred[shown] - targ[shown]
        return Results(table, rmse(pred, targ), len(pred), "validation" if ds != "train" else "training",
                       by_user, by_item)

    # ------------------------------------------------------------ saving
    def save(self, name: str, with_opt: bool = True, force: bool = False):
        """fastai's ``learn.save(name)``: the model and the latest fit's optimizer state in
        ``models/NAME.safetensors`` (a bare name; or the path given), safetensors only, no
        pickle. Returns the path. Replaces only a file embedlab wrote (else ``force``)."""
        from embedlab.training.saving import learner_file, save_learner

        extra = {"name": self.name, "config": self.prepared.config}
        return save_learner(self.learner, learner_file(name), extra=extra, force=force, with_opt=with_opt)

    def load(self, name: str, with_opt: bool = True) -> "LiveLearner":
        """fastai's ``learn.load(name)``: the model (and optimizer state) :meth:`save` wrote,
        bit-identical; returns the learner. The optimizer state becomes ``learn.opt`` (an
        optimizer over the trainable layer groups is made first when no fit has made one)."""
        from embedlab.training.saving import learner_file, load_learner_state

        load_learner_state(self.learner, learner_file(name), with_opt=with_opt,
                           make_optimizer=lambda: self.learner.make_optimizer(self.prepared.fit_config))
        self.loaded = str(learner_file(name))
        return self

    opt = property(lambda self: self.learner.opt)

    def export(self, path: str, force: bool = False):
        """fastai's ``export``: the run of the model as it is now, written as an ordinary run
        folder at ``path`` (``embedlab analyze``, ``predict``, the explorer read it). Returns the Run."""
        run = self.run
        run.save(path, force=force)
        return run

    def __repr__(self) -> str:
        epochs = sum(len(f.history) for f in self.fits)
        frozen = f", frozen: {', '.join(self.frozen_groups)}" if self.frozen_groups else ""
        return (f"<LiveLearner {self.name}: layer groups {', '.join(self.layer_groups)}{frozen}; "
                f"{len(self.fits)} fits, {epochs} epochs trained>")


def _column(frame: pd.DataFrame, role: str, cols: dict) -> str:
    for name in (cols.get(role), role):
        if name is not None and name in frame.columns:
            return name
    raise ValueError(f"no {role} column: give {cols.get(role, role)!r} or {role!r}")


def _field(row: Any, role: str, cols: dict) -> Any:
    for name in (cols.get(role), role):
        if name is not None and name in row:
            return row[name]
    raise ValueError(f"the row has no {role}: give {cols.get(role, role)!r} or {role!r} (or a (user, item) tuple)")


@dataclass
class _Fits(FitResult):
    """A live learner's fits as one FitResult: the history numbered on, the steps of every fit
    (:func:`embedlab.report.schedule.merge_steps`, each fit decimated on its own), and
    ``fits``: each fit's settings, recorded in run.json."""

    merged: dict[str, Any] = field(default_factory=dict)
    fit_configs: list[dict[str, Any]] = field(default_factory=list)

    def steps(self, max_points: int = 0) -> dict[str, Any]:
        return self.merged

    def record(self) -> dict[str, Any]:
        return {**super().record(), "fits": self.fit_configs}


class Comparison:
    """``embedlab.compare(...)``: the configurations trained, ranked (``.table``), the verdict
    (``.summary``), every outcome (``.outcomes``) and the report's sections (``.results``,
    which display inline: the validation curves of every configuration on one plot)."""

    def __init__(self, outcomes: list, metric: str, where: str, results: list, table: pd.DataFrame,
                 summary: str, notes: list[str]) -> None:
        self.outcomes, self.metric, self.where = outcomes, metric, where
        self.results = ResultList(results)
        self.table, self.summary, self.notes = table, summary, notes

    @property
    def best(self):
        """The winning outcome (label, config, metrics, history)."""
        label = self.table["config"].iloc[0]
        return next(o for o in self.outcomes if o.label == label)

    def _repr_html_(self) -> str:
        return self.results._repr_html_()

    def __repr__(self) -> str:
        return f"<Comparison of {len(self.outcomes)} configurations on {self.where}: {self.summary}>"
