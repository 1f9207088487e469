"""The one-cycle picture of lesson 5: learning rate and momentum over the steps, and the loss of
every step, from a fit's per-step record (``FitResult.steps()``, run.json's ``steps``)."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence


def _floats(values: Sequence[Any]) -> list[float]:
    return [float("nan") if v is None or not math.isfinite(float(v)) else float(v) for v in values]


def _figure(title: str, y_label: str, width: int, height: int, y_log: bool = False):
    from bokeh.models import HoverTool
    from bokeh.plotting import figure

    fig = figure(
        title=title,
        width=width,
        height=height,
        x_axis_label="step",
        y_axis_label=y_label,
        y_axis_type="log" if y_log else "linear",
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    fig.add_tools(HoverTool(tooltips=[("step", "@x{0}"), (y_label, "@y{0.[000000]}")]))
    return fig


def _epoch_marks(fig, steps: Mapping[str, Any]) -> None:
    """Dotted vertical lines where each epoch ends (and a solid one between fits)."""
    from bokeh.models import Span

    per, total = int(steps.get("steps_per_epoch") or 0), int(steps.get("total_steps") or 0)
    bounds = set(int(b) for b in steps.get("fit_bounds") or [])
    if per and total and total // per <= 50:
        for end in range(per, total, per):
            if end not in bounds:
                fig.add_layout(
                    Span(location=end + 0.5, dimension="height", line_color="#bbb", line_dash="dotted", line_width=1)
                )
    for end in bounds:
        fig.add_layout(Span(location=end + 0.5, dimension="height", line_color="#888", line_width=2))


def schedule_figures(steps: Mapping[str, Any] | None, width: int = 560, height: int = 280) -> list:
    """[learning rate per step (one line per layer group), momentum (or Adam's beta1) per step,
    training loss per step]: fastai's ``plot_sched`` and ``plot_loss``. Empty without steps."""
    from embedlab.toolkit.plotting import PALETTE

    if not steps or not steps.get("step"):
        return []
    x = [float(s) for s in steps["step"]]
    figs = []
    for key, title, label in (
        ("lr", "Learning rate per step (the schedule)", "learning rate"),
        ("mom", "Momentum per step (beta1 for Adam)", "momentum"),
    ):
        groups = steps.get(key) or {}
        if not groups:
            continue
        fig = _figure(title, label, width, height)
        for n, (group, values) in enumerate(groups.items()):
            fig.line(x, _floats(values), legend_label=str(group), color=PALETTE[n % len(PALETTE)], line_width=2)
        fig.legend.location = "top_right"
        fig.legend.click_policy = "hide"
        _epoch_marks(fig, steps)
        figs.append(fig)
    loss = _floats(steps.get("loss") or [])
    if loss:
        fig = _figure("Training loss per step", "loss", width, height)
        fig.line(x, loss, color=PALETTE[0], line_width=1, alpha=0.8)
        _epoch_marks(fig, steps)
        figs.append(fig)
    return figs


def merge_steps(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several fits' step records, one after the other (a live learner's fits): steps are
    renumbered to run on, and ``fit_bounds`` holds the last step of each fit but the last."""
    out: dict[str, Any] = {
        "step": [],
        "lr": {},
        "mom": {},
        "loss": [],
        "total_steps": 0,
        "steps_per_epoch": 0,
        "fit_bounds": [],
    }
    for rec in records:
        offset = out["total_steps"]
        n_before = len(out["step"])
        out["step"] += [offset + int(s) for s in rec.get("step", [])]
        for key in ("lr", "mom"):
            for group, values in (rec.get(key) or {}).items():
                series = out[key].setdefault(group, [None] * n_before)
                series += list(values)
            for group, series in out[key].items():  # a group absent from this fit (frozen)
                series += [None] * (len(out["step"]) - len(series))
        out["loss"] += list(rec.get("loss", []))
        out["total_steps"] += int(rec.get("total_steps") or 0)
        out["steps_per_epoch"] = int(rec.get("steps_per_epoch") or out["steps_per_epoch"])
        out["fit_bounds"].append(out["total_steps"])
    out["fit_bounds"] = out["fit_bounds"][:-1]
    return out
