"""The fit options and what they mean: everything about a fit that needs no torch.

:class:`FitOptions` declares the options every trainer shares (``--epochs --lr --wd --bs
--seed --opt --momentum --betas --eps --wd-mode --schedule --freeze --freeze-to`` and the
``--init-*`` options; :func:`fit_options` lists them as click options), :class:`FitConfig` is
what their values mean, :func:`fit_config`
turns a trainer's config dict into a resolved one, :class:`LRSlice` is ``--lr LO:HI`` (fastai's
``slice``) and :func:`sparse_option` / :func:`resolve_sparse` are ``--sparse``. How the training
loop uses them is :mod:`embedlab.training.learner`'s docstring; every name here is also importable from
``embedlab.training.learner``, where it lived first.

Why a module of its own: building the CLI (``embedlab --help``, ``embedlab train NAME --help``,
``embedlab plugins``) loads every trainer plugin to read its options, and importing torch takes
seconds. Trainers build their options from this module alone and import torch (through
:mod:`embedlab.training.learner`, :mod:`embedlab.training.models`) only inside the functions that train; tests/
test_startup.py checks that the CLI builds without torch, scipy, sklearn, umap or bokeh.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import click

from embedlab.errors import UsageError
from embedlab.training.options import TrainerOptions, option, restated

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam", "adamw")
WD_MODES = ("auto", "decoupled", "l2")
SCHEDULES = ("one-cycle", "constant", "cosine")

#: Which of --momentum / --betas / --eps each optimizer takes.
HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "sgd": (),
    "momentum": ("momentum",),
    "rmsprop": ("momentum", "eps"),
    "adam": ("betas", "eps"),
    "adamw": ("betas", "eps"),
}

DEFAULT_MOMENTUM = {"momentum": 0.9, "rmsprop": 0.0}
DEFAULT_BETAS = (0.9, 0.99)  # fastai's Adam betas
DEFAULT_EPS = 1e-5  # fastai's Adam eps; also used for RMSprop

#: Default maximum lr of each optimizer relative to adamw's, measured on MovieLens 100K u1
#: (collab, 5 epochs, one-cycle; lr x wd grid, /work/notes/fit_options.md). The batch loss is a
#: mean, so an embedding row's gradient is tiny: plain SGD needs a lr ~2000x AdamW's (5e-3 ->
#: 10), SGD with momentum 0.9 ~200x (momentum multiplies the step by ~1/(1-0.9)), while
#: RMSprop and Adam rescale each weight's step and want ~2x.
DEFAULT_LR_RATIO = {"adamw": 1.0, "adam": 2.0, "rmsprop": 2.0, "momentum": 200.0, "sgd": 2000.0}

#: Default weight decay per optimizer and (resolved) wd mode, relative to adamw's. Decoupled
#: decay of the adaptive optimizers shrinks by lr*wd against steps of size ~lr, so AdamW's 0.1
#: carries over; an L2 term (and SGD's decay, the same thing) competes with the raw gradient,
#: which is ~1000x smaller, so it gets 1/1000 (0.1 -> 1e-4; measured: 1e-3 over-regularises
#: every one of them and 0.1 flattens SGD to the biases). SGD with momentum and decoupled
#: decay measured best at the same 1e-4 (1e-3 was worse).
DEFAULT_WD_RATIO = {
    ("adamw", "decoupled"): 1.0,
    ("adam", "decoupled"): 1.0,
    ("rmsprop", "decoupled"): 1.0,
    ("momentum", "decoupled"): 1e-3,
    ("sgd", "decoupled"): 1e-3,
    ("adam", "l2"): 1e-3,
    ("rmsprop", "l2"): 1e-3,
    ("momentum", "l2"): 1e-3,
    ("sgd", "l2"): 1e-3,
}

SPARSE_MODES = ("auto", "on", "off")
#: ``--sparse auto`` turns sparse embedding gradients on above this many embedding-table
#: parameters. Below it the dense update of every row is cheap and the defaults, tuned dense on
#: MovieLens 100K (265k table parameters) and kept for latest-small (~1M), stay exactly as they
#: were; at MovieLens-25M size (22M) the dense update of the whole tables at every step is what
#: limits speed (README, Scale).
SPARSE_AUTO_PARAMS = 5_000_000
#: Optimizers with a sparse-gradient form: adam/adamw -> :class:`embedlab.training.LazyAdam` (SparseAdam's
#: lazy Adam), sgd -> torch.optim.SGD (plain SGD adds a sparse gradient as it is).
SPARSE_OPTIMIZERS = ("adam", "adamw", "sgd")

SPARSE_HELP = (
    "Sparse embedding gradients: each step reads and writes only the table rows its batch looks "
    "up (SparseAdam's lazy Adam for adam/adamw, torch.optim.SGD for sgd) instead of updating "
    "whole tables. 'auto': on when the embedding tables hold more than "
    f"{SPARSE_AUTO_PARAMS / 1e6:g}M parameters (MovieLens-25M: 22M), off below (the small sets "
    "keep their dense, tuned behaviour). In sparse mode Adam's moments and --wd are lazy: a "
    "row's moments and weight decay (decoupled: shrink by lr*wd; l2: wd*w added to its "
    "gradient) move only at the steps whose batch looks that row up, so decoupled decay does not "
    "shrink unseen rows. Needs --opt adam, adamw or sgd (auto falls back to dense for the "
    "others). Under torchrun with nccl (CUDA) it falls back to dense: nccl has no sparse all-reduce."
)

WD_MODE_HELP = (
    "How --wd acts. 'decoupled' shrinks every weight by lr*wd before each step, apart from the "
    "gradient (AdamW's weight decay); 'l2' adds wd/2 * sum(w**2) to the loss (the lesson's "
    "w2*wd), so the decay flows through momentum and through rmsprop/adam's per-weight scaling. "
    "Under plain sgd the two give the same update; 'auto' means decoupled for adamw and l2 for "
    "the others (what each torch.optim class does with its own weight_decay)."
)


# ---------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class LRSlice:
    """fastai's ``slice(lo, hi)`` (``lo`` given) or ``slice(hi)`` (``lo`` None) of max lrs.

    :meth:`spread` turns it into one lr per layer group, earliest first (see :mod:`embedlab.training.learner`).
    Written ``LO:HI`` or ``:HI`` on the command line and in run.json's config.
    """

    hi: float
    lo: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.hi) and self.hi > 0) or (
            self.lo is not None and not (math.isfinite(self.lo) and self.lo > 0)
        ):
            raise UsageError(f"--lr {self}: learning rates must be positive numbers")
        if self.lo is not None and self.lo > self.hi:
            raise UsageError(f"--lr {self}: LO must not exceed HI (the earliest layer group gets the lowest lr)")

    def spread(self, n: int) -> list[float]:
        """The max lr of each of ``n`` layer groups, earliest first (fastai's ``lr_range``)."""
        if n <= 1:
            return [float(self.hi)] * max(n, 0)
        if self.lo is None:
            return [self.hi / 10.0] * (n - 1) + [float(self.hi)]
        ratio = self.hi / self.lo
        out = [self.lo * ratio ** (i / (n - 1)) for i in range(n)]
        out[0], out[-1] = float(self.lo), float(self.hi)
        return out

    def __str__(self) -> str:
        return f"{'' if self.lo is None else f'{self.lo:g}'}:{self.hi:g}"

    def __format__(self, spec: str) -> str:
        if not spec:
            return str(self)
        lo = "" if self.lo is None else format(self.lo, spec)
        return f"{lo}:{format(self.hi, spec)}"

    @classmethod
    def parse(cls, text: Any) -> "float | LRSlice":
        """``"1e-3"`` -> 0.001; ``"1e-5:1e-3"`` -> LRSlice(1e-3, 1e-5); ``":1e-3"`` -> LRSlice(1e-3)."""
        if isinstance(text, (LRSlice, int, float)) and not isinstance(text, bool):
            return text if isinstance(text, LRSlice) else float(text)
        raw = str(text).strip()
        lo, sep, hi = raw.partition(":")
        try:
            if not sep:
                value = float(raw)
                if not (math.isfinite(value) and value > 0):
                    raise ValueError
                return value
            return cls(hi=float(hi), lo=float(lo) if lo.strip() else None)
        except ValueError:
            raise UsageError(
                f"--lr {raw!r}: give a positive number (1e-3), LO:HI (1e-5:1e-3, "
                f"spread over the layer groups) or :HI (fastai's slice(HI))"
            ) from None


class LRParam(click.ParamType):
    """``--lr``: a number, ``LO:HI`` or ``:HI`` (see :class:`LRSlice`)."""

    name = "lr"

    def convert(self, value, param, ctx):
        if isinstance(value, Mapping):  # the API's group name -> lr (FitConfig.lr)
            return value
        try:
            return LRSlice.parse(value)
        except UsageError as exc:
            self.fail(exc.format_message(), param, ctx)


def parse_groups(value: Any) -> tuple[str, ...] | None:
    """``"embeddings,body"`` / ``["embeddings"]`` -> ``("embeddings", "body")``; None stays None."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return tuple(dict.fromkeys(i.strip() for i in items if i.strip()))


@dataclass(frozen=True)
class FitConfig:
    """How to fit: the values of the shared fit options.

    ``None`` means "the default for this optimizer" (``lr``, ``wd``: a trainer's
    :class:`FitDefaults`); :meth:`resolved` fills those in and checks the combination. ``lr``
    is the maximum (peak) learning rate: a float for every layer group, a mapping
    ``group name -> lr``, or an :class:`LRSlice` spread over the groups. ``bs`` and ``seed``
    are consumed where the Learner and the model are built (``Learner(bs=..., seed=...)``);
    ``Learner.fit`` uses ``bs`` when set. ``freeze`` (group names) or ``freeze_to`` (fastai's
    ``freeze_to(n)``) set which groups are frozen for this fit; None leaves the learner's
    current freezing alone. ``init_from`` says the model starts from pretrained tables
    (``--init-from``): a plain ``lr`` then means ``slice(lr)`` unless something is frozen.
    """

    epochs: int = 5
    lr: float | Mapping[str, float] | None = None
    wd: float | None = None
    bs: int | None = None
    seed: int | None = None
    opt: str = "adamw"
    momentum: float | None = None
    betas: tuple[float, float] | None = None
    eps: float | None = None
    wd_mode: str = "auto"
    schedule: str = "one-cycle"
    pct_start: float = 0.25
    freeze: tuple[str, ...] | None = None
    freeze_to: int | None = None
    init_from: str | None = None

    FIELDS = (
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
        "pct_start",
        "freeze",
        "freeze_to",
        "init_from",
    )

    def replace(self, **changes: Any) -> "FitConfig":
        return dataclasses.replace(self, **changes)

    def resolved(self, defaults: "FitDefaults | None" = None) -> "FitConfig":
        """A copy with every default filled in and the combination checked (UsageError)."""
        defaults = defaults or FitDefaults.scaled()
        opt = str(self.opt).lower()
        if opt not in OPTIMIZERS:
            raise UsageError(f"--opt {self.opt!r}: unknown optimizer; choose one of: {', '.join(OPTIMIZERS)}")
        takes = HYPERPARAMETERS[opt]
        if self.momentum is not None and "momentum" not in takes:
            hint = (
                "plain sgd has none; use --opt momentum --momentum M"
                if opt == "sgd"
                else f"{opt} takes beta1 from --betas"
            )
            raise UsageError(f"--momentum {self.momentum}: {hint}")
        if self.betas is not None and "betas" not in takes:
            raise UsageError(f"--betas {tuple(self.betas)}: only adam and adamw take betas, not {opt}")
        if self.eps is not None and "eps" not in takes:
            raise UsageError(f"--eps {self.eps}: only rmsprop, adam and adamw take eps, not {opt}")
        momentum = (
            (DEFAULT_MOMENTUM[opt] if self.momentum is None else float(self.momentum)) if "momentum" in takes else None
        )
        if momentum is not None and not 0.0 <= momentum < 1.0:
            raise UsageError(f"--momentum {momentum}: must be in [0, 1)")
        betas = tuple(float(b) for b in (self.betas or DEFAULT_BETAS)) if "betas" in takes else None
        if betas is not None and not all(0.0 <= b < 1.0 for b in betas):
            raise UsageError(f"--betas {betas[0]} {betas[1]}: both must be in [0, 1)")
        eps = (DEFAULT_EPS if self.eps is None else float(self.eps)) if "eps" in takes else None
        if eps is not None and eps <= 0:
            raise UsageError(f"--eps {eps}: must be positive")
        mode = str(self.wd_mode).lower()
        if mode not in WD_MODES:
            raise UsageError(f"--wd-mode {self.wd_mode!r}: choose one of: {', '.join(WD_MODES)}")
        if mode == "auto":
            mode = auto_wd_mode(opt)
        if opt == "adamw" and mode == "l2":
            raise UsageError(
                "--opt adamw --wd-mode l2: adamw is Adam with decoupled weight decay; "
                "for an L2 penalty use --opt adam --wd-mode l2"
            )
        if self.schedule not in SCHEDULES:
            raise UsageError(f"--schedule {self.schedule!r}: choose one of: {', '.join(SCHEDULES)}")
        wd = defaults.wd[(opt, mode)] if self.wd is None else float(self.wd)
        if wd < 0:
            raise UsageError(f"--wd {self.wd}: must be >= 0")
        if int(self.epochs) < 1:
            raise UsageError(f"--epochs {self.epochs}: must be at least 1")
        if not 0.0 < float(self.pct_start) < 1.0:
            raise UsageError(f"pct_start {self.pct_start}: must be in (0, 1)")
        lr = self.lr
        if lr is None:
            lr = defaults.lr[opt]
        if isinstance(lr, str):
            lr = LRSlice.parse(lr)
        if isinstance(lr, Mapping):
            lr = {str(k): float(v) for k, v in lr.items()}
            bad = [k for k, v in lr.items() if not v > 0]
        elif isinstance(lr, LRSlice):
            bad = []
        else:
            lr = float(lr)
            bad = [] if lr > 0 else ["lr"]
        if bad:
            raise UsageError(f"--lr {self.lr}: learning rates must be positive")
        freeze = parse_groups(self.freeze)
        freeze_to = None if self.freeze_to is None else int(self.freeze_to)
        if freeze and freeze_to is not None:
            raise UsageError(f"--freeze {','.join(freeze)} and --freeze-to {freeze_to}: give one of them")
        init_from = None if not self.init_from else str(self.init_from)
        if init_from and isinstance(lr, float) and not freeze and not freeze_to:
            lr = LRSlice(hi=lr)  # fine-tuning pretrained tables: fastai's slice(lr)
        return dataclasses.replace(
            self,
            opt=opt,
            lr=lr,
            momentum=momentum,
            betas=betas,
            eps=eps,
            wd_mode=mode,
            wd=wd,
            epochs=int(self.epochs),
            pct_start=float(self.pct_start),
            freeze=freeze,
            freeze_to=freeze_to,
            init_from=init_from,
        )

    def to_config(self) -> dict[str, Any]:
        """Plain JSON-able values, as stored in run.json's ``config``."""
        out = {}
        for name in self.FIELDS:
            v = getattr(self, name)
            if isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, Mapping):
                v = dict(v)
            elif isinstance(v, LRSlice):
                v = str(v)
            out[name] = v
        return out

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "FitConfig":
        """Pick the fit fields out of a trainer's config dict (``None`` values: default)."""
        kwargs = {k: config[k] for k in cls.FIELDS if k in config and config[k] is not None}
        if "betas" in kwargs:
            kwargs["betas"] = tuple(kwargs["betas"])
        if isinstance(kwargs.get("lr"), str):
            kwargs["lr"] = LRSlice.parse(kwargs["lr"])
        if "freeze" in kwargs:
            kwargs["freeze"] = parse_groups(kwargs["freeze"])
        if "init_from" in kwargs:
            kwargs["init_from"] = str(kwargs["init_from"])
        return cls(**kwargs)

    def describe(self) -> str:
        """A short label: ``adamw lr=5e-03 wd=0.1 (decoupled)``."""
        lr = self.lr if not isinstance(self.lr, Mapping) else "/".join(f"{v:.0e}" for v in self.lr.values())
        lr = f"{lr:.0e}" if isinstance(lr, (float, LRSlice)) else lr
        frozen = (
            f" frozen {','.join(self.freeze)}"
            if self.freeze
            else (f" frozen to {self.freeze_to}" if self.freeze_to else "")
        )
        return f"{self.opt} lr={lr} wd={self.wd:g} ({self.wd_mode}){frozen}"


def auto_wd_mode(opt: str) -> str:
    """What ``--wd-mode auto`` means for ``opt``: decoupled for adamw, l2 for the others."""
    return "decoupled" if opt == "adamw" else "l2"


def _sig(x: float) -> float:
    return float(f"{x:.3g}")


@dataclass(frozen=True)
class FitDefaults:
    """A trainer's default max lr per optimizer and weight decay per (optimizer, wd mode)."""

    lr: Mapping[str, float]
    wd: Mapping[tuple[str, str], float]

    @classmethod
    def scaled(
        cls,
        lr: float = 5e-3,
        wd: float = 0.1,
        opt: str = "adamw",
        lrs: Mapping[str, float] | None = None,
        wds: Mapping[str, float] | None = None,
    ) -> "FitDefaults":
        """Defaults from the tuned ``lr`` and ``wd`` of optimizer ``opt`` (in its auto mode).

        The others follow :data:`DEFAULT_LR_RATIO` and :data:`DEFAULT_WD_RATIO`; ``lrs``
        overrides single optimizers (``{"sgd": 2.0}``), ``wds`` single optimizers in every mode
        (``"sgd"``) or in one (``"momentum:decoupled"``), for a trainer that measured its own.
        """
        if opt not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {opt!r}")
        base_lr = float(lr) / DEFAULT_LR_RATIO[opt]
        lr_map = {o: _sig(base_lr * r) for o, r in DEFAULT_LR_RATIO.items()}
        lr_map[opt] = float(lr)
        lr_map.update({k: float(v) for k, v in (lrs or {}).items()})
        base_wd = float(wd) / DEFAULT_WD_RATIO[(opt, auto_wd_mode(opt))]
        wd_map = {k: _sig(base_wd * r) for k, r in DEFAULT_WD_RATIO.items()}
        wd_map[(opt, auto_wd_mode(opt))] = float(wd)
        for key, value in (wds or {}).items():
            o, _, mode = str(key).partition(":")
            for m in [mode] if mode else ["decoupled", "l2"]:
                if (o, m) in wd_map:
                    wd_map[(o, m)] = float(value)
        return cls(lr=lr_map, wd=wd_map)

    def describe_lr(self) -> str:
        return ", ".join(f"{o} {self.lr[o]:g}" for o in OPTIMIZERS)

    def describe_wd(self) -> str:
        parts = []
        for o in OPTIMIZERS:
            dec, l2 = self.wd.get((o, "decoupled")), self.wd.get((o, "l2"))
            if l2 is None or dec == l2:
                parts.append(f"{o} {dec:g}")
            else:
                parts.append(f"{o} {dec:g} decoupled / {l2:g} l2")
        return "; ".join(parts)


class DefaultsOption(click.Option):
    """``--lr`` / ``--wd``: no fixed default; they carry the trainer's :class:`FitDefaults`."""

    def __init__(self, *args, fit_defaults: FitDefaults, **kwargs):
        super().__init__(*args, **kwargs)
        self.fit_defaults = fit_defaults


#: the largest --seed (every random generator embedlab seeds takes 0 .. 2**32 - 1)
MAX_SEED = 2**32 - 1

_LR_HELP = (
    "Maximum learning rate (the peak of one-cycle; try `embedlab lr-find`). LO:HI spreads lrs "
    "geometrically over the layer groups, LO for the earliest, HI for the last (fastai's slice(LO, "
    "HI)); :HI is fastai's slice(HI): the last group HI, earlier ones HI/10. A plain HI is one lr for "
    "every group, except with --init-from and nothing frozen, where it means :HI (write HI:HI for "
    "one lr). Default per --opt: "
)


@dataclass
class FitOptions(TrainerOptions):
    """The fit options every trainer shares, declared once (:mod:`embedlab.training.options`).

    A trainer's options class subclasses it, sets ``fit_defaults`` (its tuned lr and weight
    decay: :meth:`FitDefaults.scaled`) and restates a field to change its default
    (``epochs: int = restated(FitOptions, "epochs", 8)``). Their values mean a :class:`FitConfig`
    (:func:`fit_config`). ``train DATASET --help`` lists them last, under "Optimisation".
    """

    fit_defaults: ClassVar[FitDefaults] = FitDefaults.scaled()
    late_fields: ClassVar[tuple[str, ...]] = (
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
    )

    epochs: int | None = option(5, min=1, section="optimisation", help="Epochs of training.")
    opt: str = option(
        "adamw",
        choices=OPTIMIZERS,
        section="optimisation",
        help="Optimizer (torch.optim): sgd, momentum (SGD with momentum), rmsprop, adam, "
        "adamw (Adam with decoupled weight decay).",
    )
    lr: Any = option(
        None,
        type=LRParam(),
        metavar="LR|LO:HI",
        section="optimisation",
        help=lambda cls: f"{_LR_HELP}{cls.fit_defaults.describe_lr()}.",
    )
    wd: float | None = option(
        None,
        min=0,
        section="optimisation",
        help=lambda cls: (
            "Weight decay (see --wd-mode); grow it with the batch size. "
            f"Default per --opt and --wd-mode: {cls.fit_defaults.describe_wd()}."
        ),
    )
    wd_mode: str = option("auto", choices=WD_MODES, section="optimisation", help=WD_MODE_HELP)
    momentum: float | None = option(
        None,
        min=0,
        max=1,
        max_open=True,
        section="optimisation",
        help="Momentum of 'momentum' (default 0.9) and 'rmsprop' (default 0); adam "
        "and adamw use --betas. One-cycle moves it between m+0.05 and m-0.05.",
    )
    betas: Any = option(
        None,
        type=(float, float),
        section="optimisation",
        help="Adam's B1 B2 (default 0.9 0.99); one-cycle moves B1 between B1+0.05 and B1-0.05.",
    )
    eps: float | None = option(
        None,
        min=0,
        min_open=True,
        section="optimisation",
        help=f"Epsilon of rmsprop, adam and adamw (default {DEFAULT_EPS:g}).",
    )
    schedule: str | None = option(
        "one-cycle",
        choices=SCHEDULES,
        section="optimisation",
        help="Learning-rate schedule: 'one-cycle' (warm up to --lr over the first "
        "quarter, then anneal; momentum cycles inversely, as fastai does), "
        "'constant', or 'cosine' (anneal from --lr to 0).",
    )
    bs: int | None = option(256, min=1, section="optimisation", help="Batch size (rows per step).")
    seed: int = option(
        42,
        min=0,
        max=MAX_SEED,
        section="optimisation",
        help="Random seed (initialisation, shuffling, random splits), 0 to 4294967295.",
    )
    freeze: str | None = option(
        None,
        metavar="GROUPS",
        section="optimisation",
        help="Layer groups to keep frozen, comma-separated (collab: embeddings, biases; "
        "tabular: embeddings, body, head): no gradient, no optimizer state, no "
        "weight decay; their tensors come out unchanged.",
    )
    freeze_to: int | None = option(
        None,
        type=click.INT,
        metavar="N",
        section="optimisation",
        help="Freeze the first N layer groups (fastai's freeze_to(N); negative counts "
        "from the end: -1 freezes all but the last).",
    )
    init_from: Any = option(
        None,
        type=click.Path(path_type=Path),
        metavar="PATH",
        section="optimisation",
        help="Start embedding tables from pretrained vectors: another run's folder (tables "
        "matched by name, rows by entity key), a Projector vectors.tsv, a word2vec text "
        "file, a .npy file, or a folder holding one. Rows without a pretrained vector "
        "keep the normal initialisation; the coverage is printed and recorded.",
    )
    init_table: Any = option(
        (),
        type=click.STRING,
        multiple=True,
        metavar="TABLE[=SOURCE]",
        section="optimisation",
        show_default=False,
        help="Which table --init-from fills (repeatable): required for a file; for a run, "
        "restricts to these tables (TABLE=SOURCE reads the source run's table SOURCE).",
    )
    init_keys: Any = option(
        None,
        type=click.Path(path_type=Path),
        metavar="FILE",
        section="optimisation",
        help="Keys of the --init-from vectors, one per row (a keys.txt, or a metadata.tsv with "
        "a 'key' column); default: the keys.txt/metadata.tsv beside the vectors.",
    )

    @classmethod
    def _make_option(cls, name: str, decls: list[str], kwargs: dict[str, Any]) -> click.Option:
        if name in ("lr", "wd"):  # they carry the trainer's default table (compare reads it)
            return DefaultsOption(decls, fit_defaults=cls.fit_defaults, **kwargs)
        return click.Option(decls, **kwargs)


def fit_options(
    epochs: int = 5,
    lr: float = 5e-3,
    wd: float = 0.1,
    bs: int = 256,
    seed: int = 42,
    opt: str = "adamw",
    schedule: str = "one-cycle",
    lrs: Mapping[str, float] | None = None,
    wds: Mapping[str, float] | None = None,
) -> list[click.Option]:
    """The fit options every trainer shares, as click options with this trainer's defaults
    (the click-option form of :class:`FitOptions`, for trainers that declare click options).

    ``lr`` and ``wd`` are the defaults of the default optimizer ``opt``; the other optimizers'
    defaults are scaled from them (:meth:`FitDefaults.scaled`, which ``lrs``/``wds`` override).
    Read the values back with :func:`fit_config`. See /work/notes/fit_options.md.
    """
    return fit_options_class(
        epochs=epochs, lr=lr, wd=wd, bs=bs, seed=seed, opt=opt, schedule=schedule, lrs=lrs, wds=wds
    ).click_options()


def fit_options_class(
    epochs: int | None = 5,
    lr: float = 5e-3,
    wd: float = 0.1,
    bs: int | None = 256,
    seed: int = 42,
    opt: str = "adamw",
    schedule: str | None = "one-cycle",
    lrs: Mapping[str, float] | None = None,
    wds: Mapping[str, float] | None = None,
    base: type = FitOptions,
) -> type:
    """A :class:`FitOptions` subclass with these defaults (what :func:`fit_options` lists)."""
    changed = {"epochs": epochs, "bs": bs, "seed": seed, "opt": opt, "schedule": schedule}
    types = {f.name: f.type for f in dataclasses.fields(FitOptions)}
    fields = [(k, types[k], restated(FitOptions, k, v)) for k, v in changed.items()]
    made = dataclasses.make_dataclass("FitOptionsWithDefaults", fields, bases=(base,))
    made.fit_defaults = FitDefaults.scaled(lr, wd, opt, lrs, wds)
    return made


def fit_config(config: Mapping[str, Any], options: Any = ()) -> FitConfig:
    """The resolved :class:`FitConfig` of a trainer's ``config`` (its options' defaults apply).

    ``options``: the trainer's options, a :class:`FitOptions` class (its ``fit_defaults``) or
    click options (whose ``--lr``/``--wd`` carry the trainer's :class:`FitDefaults`), used where
    ``config['lr']`` or ``config['wd']`` is None.
    """
    if isinstance(options, type):
        defaults = getattr(options, "fit_defaults", None)
    else:
        defaults = next((o.fit_defaults for o in options if isinstance(o, DefaultsOption)), None)
    return FitConfig.from_config(config).resolved(defaults)


# ---------------------------------------------------------------------------- sparse gradients
def sparse_field() -> Any:
    """The ``sparse`` field (``--sparse auto|on|off``) of the options of a trainer whose model can
    make its embeddings sparse."""
    return option("auto", choices=SPARSE_MODES, section="optimisation", help=SPARSE_HELP)


def sparse_option() -> click.Option:
    """``--sparse auto|on|off`` as a click option (for trainers that declare click options)."""

    @dataclass
    class _Sparse(TrainerOptions):
        sparse: str = sparse_field()

    return _Sparse.click_options()[0]


def resolve_sparse(
    mode: str | None, table_params: int, opt: str, backend: str | None = None
) -> tuple[bool, str | None]:
    """Whether to train with sparse embedding gradients, and a notice when a request falls back.

    ``table_params``: the parameters of the embedding tables that would turn sparse;
    ``opt``: the resolved optimizer; ``backend``: the torch.distributed backend under torchrun
    (None in one process). ``on`` with an optimizer that has no sparse form is a UsageError;
    ``auto`` quietly stays dense there. nccl cannot all-reduce sparse tensors, so under it
    both fall back to dense with a notice (gloo can: the DistributedLearner all-reduces the
    sparse gradients itself).
    """
    mode = str(mode or "auto").lower()
    if mode not in SPARSE_MODES:
        raise UsageError(f"--sparse {mode!r}: choose one of: {', '.join(SPARSE_MODES)}")
    if mode == "off" or (mode == "auto" and table_params <= SPARSE_AUTO_PARAMS):
        return False, None
    if opt not in SPARSE_OPTIMIZERS:
        if mode == "on":
            raise UsageError(
                f"--sparse on --opt {opt}: {opt} has no sparse-gradient form in torch.optim; "
                f"use --opt {', '.join(SPARSE_OPTIMIZERS)} or --sparse off"
            )
        return False, None
    if backend == "nccl":
        return False, (
            f"--sparse {mode}: training dense, because nccl (torchrun with CUDA) cannot "
            f"all-reduce sparse gradients; gloo (CPU) can"
        )
    return True, None
