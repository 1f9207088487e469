"""A trainer's options declared once, as a typed dataclass: the documented path of
:mod:`embedlab.training.options` (where they live, below the trainers, because the shared fit
options are declared the same way: :class:`embedlab.training.fitconfig.FitOptions`)."""

from __future__ import annotations

from embedlab.training.fitconfig import FitOptions
from embedlab.training.options import TrainerOptions, option, restated

__all__ = ["FitOptions", "TrainerOptions", "option", "restated"]
