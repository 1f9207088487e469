"""The training engine: the loop, optimizers and schedules, the lr finder, fit options, models,
checkpoints, torchrun/DDP and pretrained initialisation.

This package is the public API for trainer authors: ``from embedlab.training import Learner,
fit_options, fit_config, LRSlice, seed_everything``; ``TrainerOptions``, ``option``, ``restated`` and
``FitOptions`` to declare a trainer's options as one dataclass (:mod:`embedlab.training.options`); ``Callback`` and ``CancelFit`` for callbacks
of ``Learner.fit``, whose step (``learn.step``) is replaceable. Names load on first use, so importing the
torch-free option builders (:mod:`embedlab.training.fitconfig`) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module of this package that defines it
_EXPORTS = {
    **dict.fromkeys(
        ["Learner", "FitResult", "seed_everything", "Metrics", "autograd_step", "shuffled_batches"], "learner"
    ),
    **dict.fromkeys(
        [
            "Callback",
            "CancelFit",
            "EVENTS",
            "Schedule",
            "Recorder",
            "Divergence",
            "Checkpoint",
            "Progress",
            "EpochHook",
            "LRFinder",
        ],
        "callbacks",
    ),
    **dict.fromkeys(
        [
            "LazyAdam",
            "make_optimizer",
            "make_scheduler",
            "l2_penalty",
            "sparse_parameters",
            "momentum_of",
            "RMSPROP_ALPHA",
            "MOMENTUM_CYCLE",
        ],
        "optim",
    ),
    **dict.fromkeys(["LRFindResult", "SUGGESTION_RULES"], "lr_find"),
    **dict.fromkeys(
        [
            "DEFAULT_BETAS",
            "DEFAULT_EPS",
            "DEFAULT_LR_RATIO",
            "DEFAULT_MOMENTUM",
            "DEFAULT_WD_RATIO",
            "HYPERPARAMETERS",
            "OPTIMIZERS",
            "SCHEDULES",
            "SPARSE_AUTO_PARAMS",
            "SPARSE_HELP",
            "SPARSE_MODES",
            "SPARSE_OPTIMIZERS",
            "WD_MODE_HELP",
            "WD_MODES",
            "DefaultsOption",
            "FitConfig",
            "FitDefaults",
            "LRParam",
            "LRSlice",
            "auto_wd_mode",
            "fit_config",
            "fit_options",
            "parse_groups",
            "resolve_sparse",
            "sparse_option",
            "FitOptions",
            "fit_options_class",
            "sparse_field",
            "MAX_SEED",
        ],
        "fitconfig",
    ),
    **dict.fromkeys(["TrainerOptions", "option", "restated"], "options"),
    **dict.fromkeys(
        ["DotBias", "EmbeddingNN", "EntityEmbeddingNet", "HybridDot", "emb_sz_rule", "member_mse"], "models"
    ),
    **dict.fromkeys(["Slot", "init_from_config", "init_options", "align", "read_sources"], "pretrained"),
    **dict.fromkeys(["FUSED_OPTIMIZERS", "KERNELS", "KERNEL_HELP", "choose_kernel", "make_fused"], "fused_collab"),
}
#: public submodules: ``distributed`` (torchrun/DDP: rank, world size, sharding, the writer rank)
_SUBMODULES = ("distributed",)

__all__ = sorted([*_EXPORTS, *_SUBMODULES])


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'embedlab.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
