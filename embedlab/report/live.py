"""The Python API's notebook objects: an lr-find result, a live learner, a comparison.

Each displays inline in Jupyter (:mod:`embedlab.report.notebook`: BokehJS once per notebook)
and reads like fastai's: ``lr = embedlab.lr_find(...).suggestion``; ``learn.lr_find()``,
``learn.fit_one_cycle(5, 5e-3)``, ``learn.freeze()``, ``learn.fit_one_cycle(2, slice(1e-5, 1e-3))``,
``learn.plot_sched()``, ``learn.plot_loss()``, ``learn.run``.

The live learner is the :class:`embedlab.training.Learner` that a trainer's ``prepare`` makes
(``Trainer.prepare``) and its own ``train`` fits, with the :class:`Session` callback attached
(:func:`live_learner`): one object, one loop, and ``learn.run`` is the run the trainer itself
would make.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from embedlab.report.notebook import Figures, ResultList
from embedlab.training.callbacks import Callback, Threads
from embedlab.training.learner import FitResult, Learner
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

        return Figures([lr_figure(self.result, self.suggestions, self.rule, self.title)], caption=self._text())

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


class Session(Callback):
    """What makes a trainer's Learner a notebook's live learner (``embedlab.learner(...)``): a
    callback attached for every fit that keeps each fit (``learn.fits``) and offers fastai's
    verbs as the learner's own attributes (its ``exports``): :attr:`run` (everything trained
    so far as one run), ``plot_sched``, ``plot_loss``, ``get_preds``, ``predict(row)``,
    ``show_results``, ``export``; ``learn.lr_find()`` shows as a plot (:meth:`present`).
    ``fit``, ``fit_one_cycle``, ``freeze``, ``save``/``load`` are the Learner's own."""

    order = 40
    exports = (
        "prepared",
        "name",
        "fits",
        "config",
        "learner",
        "run",
        "steps",
        "plot_sched",
        "plot_loss",
        "get_preds",
        "predict_row",
        "show_results",
        "export",
    )

    def __init__(self, prepared: Any, name: str = "") -> None:
        self.prepared, self.name = prepared, name
        self.fits: list = []

    config = property(lambda self: dict(self.prepared.config))
    learner = property(lambda self: self.learn)  # the old LiveLearner.learner: the learner itself

    def after_fit(self) -> None:
        self.fits.append(self.learn.result)

    after_cancel_fit = after_fit

    def present(self, value: Any) -> Any:
        if isinstance(value, LRFindResult) and not isinstance(value, LRFind):
            return LRFind(value, value.rule, title=f"lr find: {self.name}" if self.name else "lr find")
        return value

    def _threads(self):
        from embedlab.trainers.base import torch_threads

        return torch_threads(self.prepared.threads)

    def _combined(self) -> "_Fits":
        """Every fit so far as one FitResult (epochs numbered on, steps run on)."""
        learn = self.learn
        if not self.fits:
            if not learn.loaded:
                raise ValueError("nothing trained yet: call fit_one_cycle(...) first (or load(name))")
            with self._threads():  # a loaded model: its validation now is the run's metrics
                final = learn.validate()
            return _Fits(
                history=[],
                final=final,
                config=self.prepared.fit_config.to_config(),
                merged=self.steps(),
                fit_configs=[],
                init=learn.init,
            )
        last = self.fits[-1]
        history, epoch = [], 0
        for fit in self.fits:
            for row in fit.history:
                epoch += 1
                history.append({**row, "epoch": epoch})
        return _Fits(
            history=history,
            train_seconds=sum(f.train_seconds for f in self.fits),
            final=dict(history[-1]) if history else {},
            config=dict(last.config),
            lrs=last.lrs,
            moms=last.moms,
            groups=last.groups,
            init=last.init,
            losses=last.losses,
            merged=self.steps(),
            fit_configs=[dict(f.config, epochs=len(f.history)) for f in self.fits],
        )

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
        return Figures(
            [f for f in figs if "Training loss" not in f.title.text],
            caption="one line per layer group; solid lines separate fits",
        )

    def plot_loss(self) -> Figures:
        """The training loss of every step over every fit so far (fastai's ``plot_loss``)."""
        from embedlab.report.schedule import schedule_figures

        return Figures([f for f in schedule_figures(self.steps()) if "Training loss" in f.title.text])

    # ------------------------------------------------------------ predictions (fastai's verbs)
    def _set(self, ds: str):
        learn = self.learn
        if ds in ("valid", "validation", 1):
            if learn.valid is None:
                raise ValueError("this learner has no validation rows (a split without them)")
            return learn.valid
        if ds in ("train", 0):
            return learn.train_inputs, learn.train_target
        raise ValueError(f"ds={ds!r}: choose 'valid' or 'train'")

    def get_preds(self, ds: str = "valid"):
        """fastai's ``get_preds``: ``(predictions, targets)`` of the validation rows (``ds="train"``:
        the training rows), as tensors in the rows' order (the dataset's order), on the CPU;
        from the model as it is now, in eval mode, exactly as validation computes them."""
        inputs, target = self._set(ds)
        with self._threads():
            preds = self.learn.predict(inputs)
        return preds.detach().cpu(), target.detach().cpu()

    def predict_row(self, row: Any):
        """fastai's ``predict(row)`` for a collab learner (``learn.predict(row)``): the predicted
        rating of one (user, item) pair, given as a mapping or Series with the data's user and
        item columns (or ``user`` and ``item``), or a ``(user, item)`` tuple; users and items by
        key or label. A DataFrame of pairs gives a Series of predictions (one per row, in order)."""
        import torch

        model = self.learn.model
        if getattr(model, "classes", None) is None:
            raise ValueError(
                "predict(row) scores (user, item) pairs of a collab learner; for other runs use "
                "learn.run.predict(frame)"
            )
        cols = getattr(model, "columns", None) or {}
        frame = row if isinstance(row, pd.DataFrame) else None
        if frame is None:
            if isinstance(row, (tuple, list)) and len(row) == 2:
                pairs = [tuple(row)]
            else:
                pairs = [(_field(row, "user", cols), _field(row, "item", cols))]
        else:
            pairs = list(zip(*(frame[_column(frame, role, cols)] for role in ("user", "item"))))
        users = model.rows([p[0] for p in pairs], is_item=False)
        items = model.rows([p[1] for p in pairs], is_item=True)
        model.eval()
        with torch.no_grad():
            out = model(users, items).detach().cpu().double().numpy()
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
        classes = getattr(self.learn.model, "classes", None)
        table = pd.DataFrame()
        by_user = by_item = None
        if classes is not None and len(inputs) == 2:
            codes = [t.detach().cpu().numpy() for t in inputs]
            for role, c in zip(("user", "item"), codes):
                table[role] = classes[role].keys[c[shown]]
                table[f"{role}_label"] = classes[role].labels[c[shown]]
            counts = {
                role: np.asarray(
                    classes[role].count if classes[role].count is not None else np.zeros(len(classes[role]))
                )[c]
                for role, c in zip(("user", "item"), codes)
            }
            by_user, by_item = by_bucket(counts["user"], pred, targ), by_bucket(counts["item"], pred, targ)
        table["target"] = targ[shown]
        table["prediction"] = pred[shown]
        table["error"] = pred[shown] - targ[shown]
        return Results(
            table, rmse(pred, targ), len(pred), "validation" if ds != "train" else "training", by_user, by_item
        )

    def export(self, path: str, force: bool = False):
        """fastai's ``export``: the run of the model as it is now, written as an ordinary run
        folder at ``path`` (``embedlab analyze``, ``predict``, the explorer read it). Returns the Run."""
        run = self.run
        run.save(path, force=force)
        return run


def live_learner(prepared: Any, progress: bool | None = None, name: str = "") -> Learner:
    """The trainer's own Learner (``prepared.learner``) as a notebook's live learner: fits start
    from the trainer's fit settings (the frozen groups as the learner has them), with its torch
    threads, and the :class:`Session` attached (``embedlab.learner(...)`` returns this)."""
    learn = prepared.learner
    learn.defaults = prepared.fit_config.replace(freeze=None, freeze_to=None)
    learn.progress = progress
    learn.info = {"name": name, "config": prepared.config}
    learn.add_cb(Threads(prepared.threads))
    learn.add_cb(Session(prepared, name))
    return learn


class _LiveLearnerType(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, Learner) and any(isinstance(cb, Session) for cb in obj.attached)


class LiveLearner(metaclass=_LiveLearnerType):
    """Deprecated: the live learner is the Learner itself (:func:`live_learner`, ``embedlab.learner``);
    ``LiveLearner(prepared, progress, name)`` returns that learner, with a warning."""

    def __new__(cls, prepared: Any, progress: bool | None = None, name: str = "") -> Any:
        from embedlab.deprecations import LIVE_LEARNER

        LIVE_LEARNER.warn()
        return live_learner(prepared, progress=progress, name=name)


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


@dataclass(repr=False)
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

    def __init__(
        self,
        outcomes: list,
        metric: str,
        where: str,
        results: list,
        table: pd.DataFrame,
        summary: str,
        notes: list[str],
    ) -> None:
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
