"""Models whose embeddings embedlab analyses."""

from __future__ import annotations

import torch
from torch import nn


def emb_sz_rule(n_categories: int) -> int:
    """fastai's embedding-size rule: ``min(600, round(1.6 * n ** 0.56))``."""
    return int(min(600, round(1.6 * n_categories**0.56)))


class _ByLabel:
    """fastai's ``EmbeddingDotBias.bias(arr, is_item=True)`` / ``.weight(arr, is_item=True)``:
    a collab model's rows for users or items named by label or key (the lookup rules of
    :meth:`embedlab.run.EmbeddingTable.find`: ``"star wars"`` finds *Star Wars (1977)*).

    ``classes`` maps ``"user"``/``"item"`` to an object with ``lookup(query) -> row`` (the
    collab trainer sets EmbeddingTables of its vocabulary); without it, queries are row numbers.
    """

    classes: dict | None = None

    def rows(self, arr, is_item: bool = True) -> torch.Tensor:
        """The model rows of the users (``is_item=False``) or items ``arr`` names."""
        role = "item" if is_item else "user"
        queries = [arr] if isinstance(arr, (str, int)) or not hasattr(arr, "__iter__") else list(arr)
        finder = (self.classes or {}).get(role)
        if finder is None:
            idx = [int(q) for q in queries]
        else:  # a key exactly as stored first (fast, and never mistaken for a label), else the lookup rules
            cache = self.__dict__.setdefault("_key_rows", {})
            if cache.get(role, (None,))[0] is not finder:
                cache[role] = (finder, {k: i for i, k in enumerate(finder.keys.tolist())})
            exact = cache[role][1]
            idx = [exact[q] if not isinstance(q, str) and q in exact else finder.lookup(q) for q in queries]
        return torch.tensor(idx, dtype=torch.long, device=self._device())

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def weight(self, arr, is_item: bool = True) -> torch.Tensor:
        """The embedding vectors (n x k) of the items (or users) ``arr`` names."""
        emb = self.item_emb if is_item else self.user_emb
        return emb(self.rows(arr, is_item))

    def bias(self, arr, is_item: bool = True) -> torch.Tensor:
        """The learned biases (n,) of the items (or users) ``arr`` names."""
        table = self.bias_table(is_item)
        if table is None:
            raise ValueError(f"{type(self).__name__} has no biases (the neural model learns none); use weight(...)")
        return table(self.rows(arr, is_item)).squeeze(1)

    def bias_table(self, is_item: bool = True) -> nn.Embedding | None:
        return self.item_bias if is_item else self.user_bias


class DotBias(_ByLabel, nn.Module):
    """Collaborative filtering: ``sigmoid(u . i + b_u + b_i) * (hi - lo) + lo``.

    Embeddings start small (normal, std ``init_std``): large initial factors drown the biases
    and, measured on ml-100k, cost accuracy.

    ``sparse=True`` makes all four tables (factors and biases) produce sparse gradients, so an
    optimizer step touches only the rows a batch looked up (the Learner then picks the
    optimizer's sparse form). In that mode a training forward keeps the rows it looked up in
    ``looked_up`` for a row regulariser to reuse (:func:`embedlab.trainers.collab._row_l2`): a
    second lookup would double the sparse gradient every step has to coalesce.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_factors: int,
        y_range: tuple[float, float] | None = (0.0, 5.5),
        init_std: float = 0.01,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        self.sparse = bool(sparse)
        self.looked_up: tuple[torch.Tensor, ...] | None = None
        self.user_emb = nn.Embedding(n_users, n_factors, sparse=self.sparse)
        self.item_emb = nn.Embedding(n_items, n_factors, sparse=self.sparse)
        self.user_bias = nn.Embedding(n_users, 1, sparse=self.sparse)
        self.item_bias = nn.Embedding(n_items, 1, sparse=self.sparse)
        self.y_range = tuple(y_range) if y_range is not None else None
        for emb in (self.user_emb, self.item_emb):
            nn.init.normal_(emb.weight, 0.0, init_std)
        for emb in (self.user_bias, self.item_bias):
            nn.init.zeros_(emb.weight)

    def layer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups, earliest first (for freezing and discriminative lrs)."""
        return {
            "embeddings": [self.user_emb.weight, self.item_emb.weight],
            "biases": [self.user_bias.weight, self.item_bias.weight],
        }

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        u = self.user_emb(users)
        i = self.item_emb(items)
        if self.sparse and self.training and torch.is_grad_enabled():
            self.looked_up = (users, items, u, i)
        out = (u * i).sum(1) + self.user_bias(users).squeeze(1) + self.item_bias(items).squeeze(1)
        if self.y_range is None:
            return out
        lo, hi = self.y_range
        return torch.sigmoid(out) * (hi - lo) + lo


#: How :class:`EntityEmbeddingNet` can take a categorical input (its ``categorical_encoding``).
CATEGORICAL_ENCODINGS = ("embedding", "onehot", "onehot-direct")


class BatchNorm1d(nn.BatchNorm1d):
    """torch's BatchNorm1d, except that a training batch of one row (the last batch of an epoch
    when the training rows are one more than a multiple of ``--bs``) is normalised with the
    running statistics, left unchanged, instead of failing: one row has no batch variance."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return nn.functional.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


class EntityEmbeddingNet(nn.Module):
    """Entity embeddings of categorical variables + an MLP (Guo & Berkhahn 2016; fastai's
    TabularModel): ``forward(cats, conts)`` with ``cats`` LongTensor (n x n_cat; code 0 is the
    reserved "unknown / missing" row of every table) and ``conts`` FloatTensor (n x n_cont,
    already standardised).

    Layout, as fastai's: embeddings -> dropout ``emb_drop``; continuous -> BatchNorm; then for
    each hidden layer ``[BatchNorm, Dropout p] -> Linear -> ReLU`` (no BatchNorm before the first
    one), then the head ``[BatchNorm, Dropout] -> Linear(n_out)``, squashed into ``y_range``
    with a sigmoid when given. Embeddings start small (truncated normal, std ``init_std``):
    with PyTorch's N(0, 1) default, measured on Rossmann, the embeddings were still near-random
    after training and every later analysis of them came out null.

    :param cardinalities: rows of each embedding table (vocabulary size + 1 reserved row).
    :param emb_sizes: width of each embedding.
    :param names: the categorical columns, in order (kept for readability and saving).
    :param categorical_encoding: how a categorical input enters the network (see
        :data:`CATEGORICAL_ENCODINGS`): ``"embedding"`` (a lookup in ``embeds[j]``, the default),
        ``"onehot"`` (the code as a real one-hot float vector through ``nn.Linear(cardinality,
        emb_size)`` with its bias and PyTorch's default initialisation, so the layers above see
        the same widths), or ``"onehot-direct"`` (the one-hot vectors concatenated straight into
        the first hidden layer, as Guo & Berkhahn's one-hot network; no embedding width).
        :meth:`table_weight` gives each mode's per-category vectors.
    """

    #: torch's fused Adam/AdamW step is not used: its rounding differs from the for-each kernel
    #: the Rossmann figures were measured with (it moved the planted month cycle of
    #: synthetic-rossmann seed 0 from p 0.004 to 0.019); the collab models use it (u1 unchanged)
    fused_adam = False

    def __init__(
        self,
        cardinalities: list[int],
        emb_sizes: list[int],
        n_cont: int,
        layers: list[int] = (1000, 500),
        ps: list[float] | None = None,
        emb_drop: float = 0.0,
        y_range: tuple[float, float] | None = None,
        n_out: int = 1,
        batchnorm: bool = True,
        bn_cont: bool = True,
        init_std: float = 0.01,
        names: list[str] | None = None,
        categorical_encoding: str = "embedding",
    ) -> None:
        super().__init__()
        if len(cardinalities) != len(emb_sizes):
            raise ValueError("cardinalities and emb_sizes differ in length")
        if categorical_encoding not in CATEGORICAL_ENCODINGS:
            raise ValueError(
                f"categorical_encoding {categorical_encoding!r}: choose one of {', '.join(CATEGORICAL_ENCODINGS)}"
            )
        self.encoding = categorical_encoding
        self.cardinalities = [int(c) for c in cardinalities]
        layers = [int(h) for h in layers]
        ps = [0.0] * len(layers) if ps is None else [float(p) for p in ps]
        if len(ps) != len(layers):
            raise ValueError(f"{len(ps)} dropout values for {len(layers)} hidden layers")
        self.names = list(names) if names is not None else [f"cat{i}" for i in range(len(cardinalities))]
        self.hparams = {
            "cardinalities": [int(c) for c in cardinalities],
            "emb_sizes": [int(s) for s in emb_sizes],
            "n_cont": int(n_cont),
            "layers": layers,
            "ps": ps,
            "emb_drop": float(emb_drop),
            "y_range": list(y_range) if y_range is not None else None,
            "n_out": int(n_out),
            "batchnorm": bool(batchnorm),
            "bn_cont": bool(bn_cont),
            "init_std": float(init_std),
            "names": self.names,
        }
        if categorical_encoding != "embedding":  # older runs' hparams lack the key: embedding
            self.hparams["categorical_encoding"] = categorical_encoding
        self.embeds = nn.ModuleList()
        self.onehots = nn.ModuleList()
        if categorical_encoding == "embedding":
            self.embeds.extend(nn.Embedding(c, s) for c, s in zip(cardinalities, emb_sizes))
            for emb in self.embeds:
                nn.init.trunc_normal_(emb.weight, 0.0, init_std, -2 * init_std, 2 * init_std)
        elif categorical_encoding == "onehot":
            self.onehots.extend(nn.Linear(c, s) for c, s in zip(cardinalities, emb_sizes))
        self.emb_drop = nn.Dropout(emb_drop)
        self.n_cont = int(n_cont)
        self.bn_cont = BatchNorm1d(n_cont) if n_cont and bn_cont else None
        cat_width = sum(self.cardinalities) if categorical_encoding == "onehot-direct" else sum(emb_sizes)
        width = cat_width + n_cont
        body: list[nn.Module] = []
        for i, (h, p) in enumerate(zip(layers, [0.0] + ps[:-1])):
            if i > 0 and batchnorm:
                body.append(BatchNorm1d(width))
            if p:
                body.append(nn.Dropout(p))
            body += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        self.body = nn.Sequential(*body)
        head: list[nn.Module] = []
        if layers and batchnorm:
            head.append(BatchNorm1d(width))
        if layers and ps[-1]:
            head.append(nn.Dropout(ps[-1]))
        self.out = nn.Linear(width, n_out)
        self.head = nn.Sequential(*head, self.out)
        self.y_range = tuple(y_range) if y_range is not None else None

    @classmethod
    def from_hparams(cls, hparams: dict) -> "EntityEmbeddingNet":
        """Rebuild the architecture recorded in ``hparams`` (run.json), weights not included."""
        h = dict(hparams)
        return cls(h.pop("cardinalities"), h.pop("emb_sizes"), h.pop("n_cont"), **h)

    def init_output(self, value: float) -> None:
        """Start the output at ``value`` (e.g. the mean target): sets the head's bias."""
        if self.y_range is not None:
            lo, hi = self.y_range
            p = min(max((value - lo) / (hi - lo), 1e-4), 1 - 1e-4)
            value = float(torch.logit(torch.tensor(p)))
        with torch.no_grad():
            self.out.bias.fill_(value)

    def layer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups, earliest first (for freezing and discriminative lrs)."""
        body = list(self.body.parameters()) + (list(self.bn_cont.parameters()) if self.bn_cont else [])
        return {
            "embeddings": [e.weight for e in self.embeds] + list(self.onehots.parameters()),
            "body": body,
            "head": list(self.head.parameters()),
        }

    def table_weight(self, j: int) -> torch.Tensor:
        """The (cardinality x width) per-category vectors of categorical input ``j``, row 0 the
        unknown row: the embedding matrix; for ``onehot`` what the linear layer makes of each
        one-hot vector (``W.T + b``); for ``onehot-direct`` the first hidden layer's columns
        that category's one-hot block multiplies (its contribution to the hidden units)."""
        if self.encoding == "embedding":
            return self.embeds[j].weight
        if self.encoding == "onehot":
            lin = self.onehots[j]
            return lin.weight.t() + lin.bias
        start = sum(self.cardinalities[:j])
        return self._first_linear().weight[:, start : start + self.cardinalities[j]].t()

    def _first_linear(self) -> nn.Linear:
        """The layer the inputs enter: the first hidden layer, or the output without any."""
        return next((m for m in self.body if isinstance(m, nn.Linear)), self.out)

    def categorical_parameter_count(self) -> int:
        """Parameters that map the categorical inputs: the embedding tables; for ``onehot`` the
        linear layers (weights and biases); for ``onehot-direct`` the first hidden layer's
        weights over the one-hot columns."""
        if self.encoding == "onehot-direct":
            return int(self._first_linear().out_features * sum(self.cardinalities))
        return int(sum(p.numel() for p in list(self.embeds.parameters()) + list(self.onehots.parameters())))

    def _categorical(self, cats: torch.Tensor) -> list[torch.Tensor]:
        if self.encoding == "embedding":
            return [emb(cats[:, i]) for i, emb in enumerate(self.embeds)]
        dtype = next(self.parameters()).dtype
        hot = [nn.functional.one_hot(cats[:, i], c).to(dtype) for i, c in enumerate(self.cardinalities)]
        if self.encoding == "onehot":
            return [lin(h) for lin, h in zip(self.onehots, hot)]
        return hot

    def forward(self, cats: torch.Tensor, conts: torch.Tensor) -> torch.Tensor:
        parts = self._categorical(cats)
        x = self.emb_drop(torch.cat(parts, 1)) if parts else None
        if self.n_cont:
            c = self.bn_cont(conts) if self.bn_cont is not None else conts
            x = c if x is None else torch.cat([x, c], 1)
        out = self.head(self.body(x))
        if self.y_range is not None:
            lo, hi = self.y_range
            out = torch.sigmoid(out) * (hi - lo) + lo
        return out.squeeze(1) if out.shape[1] == 1 else out


class EmbeddingNN(_ByLabel, nn.Module):
    """The neural collaborative model (fastai's ``EmbeddingNN``, ``collab_learner(use_nn=True)``;
    fastbook chapter 8, "deep learning for collaborative filtering"): the user's and the item's
    embeddings concatenated into an MLP, squashed into ``y_range``.

    The network is :class:`EntityEmbeddingNet` with two categorical inputs and no continuous
    ones; with its defaults (batch norm between hidden layers, no dropout) it computes what
    fastai's TabularModel does: ``Linear -> ReLU -> BatchNorm`` per hidden layer, then
    ``Linear(1)``. ``emb_sizes`` default to fastai's rule on the vocabulary plus its ``#na#`` row
    (:func:`emb_sz_rule` ``(n + 1)``: 74 and 102 on ml-100k, as fastai's). No biases.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        emb_sizes: tuple[int, int] | None = None,
        layers: list[int] = (100, 50),
        ps: list[float] | None = None,
        emb_drop: float = 0.0,
        y_range: tuple[float, float] | None = (0.0, 5.5),
        init_std: float = 0.01,
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        sizes = list(emb_sizes) if emb_sizes else [emb_sz_rule(n_users + 1), emb_sz_rule(n_items + 1)]
        self.net = EntityEmbeddingNet(
            [n_users, n_items],
            sizes,
            0,
            layers=layers,
            ps=ps,
            emb_drop=emb_drop,
            y_range=y_range,
            batchnorm=batchnorm,
            bn_cont=False,
            init_std=init_std,
            names=["user", "item"],
        )
        self.hparams = {
            "n_users": int(n_users),
            "n_items": int(n_items),
            "emb_sizes": [int(s) for s in sizes],
            "layers": [int(h) for h in layers],
            "ps": self.net.hparams["ps"],
            "emb_drop": float(emb_drop),
            "y_range": list(y_range) if y_range is not None else None,
            "init_std": float(init_std),
            "batchnorm": bool(batchnorm),
        }
        self.y_range = tuple(y_range) if y_range is not None else None
        self.sparse = False
        self.looked_up = None

    @classmethod
    def from_hparams(cls, hparams: dict) -> "EmbeddingNN":
        """Rebuild the architecture recorded in ``hparams`` (run.json's model), weights not included."""
        h = dict(hparams)
        return cls(h.pop("n_users"), h.pop("n_items"), **h)

    user_emb = property(lambda self: self.net.embeds[0])
    item_emb = property(lambda self: self.net.embeds[1])

    def bias_table(self, is_item: bool = True) -> None:
        return None

    def layer_groups(self) -> dict[str, list[nn.Parameter]]:
        """``embeddings``, ``body``, ``head`` (as the tabular network's)."""
        return self.net.layer_groups()

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        cats = torch.stack([users, items], 1)
        return self.net(cats, cats.new_empty((len(users), 0), dtype=torch.float32))


class HybridDot(nn.Module):
    """A factorization machine over two entities (the relation-block form of Rendle's FM): a user
    is the weighted sum of the embeddings of everything known about it, an item likewise, and
    the prediction is ``w0 + b(user) + b(item) + U . I`` (+ ``b(day) + D . (U + I)`` with days).

    ``user_bags``/``item_bags`` are ``(indices, offsets, weights)`` in ``nn.EmbeddingBag``'s
    form: entity ``e``'s features are ``indices[offsets[e]:offsets[e+1]]`` (rows of
    ``user_feat``/``item_feat``: its id, its side values, the items it rated...) with their
    ``weights`` (1 for an id or a category; ``1/sqrt(n)`` over a set of n, e.g. the items a user
    rated, as in SVD++). Every feature has a factor row and a bias; each step composes the
    entities from their features (one ``embedding_bag`` per side), so a feature's gradient
    gathers from every entity that has it. Day code 0 is the unknown day (zeros, never trained
    to anything but itself). ``y_range``: a sigmoid squashes the output into it (None: linear).

    ``members`` > 1 trains that many such models side by side, each from its own random start
    and with its own loss (a training forward returns one prediction per member, ``n x
    members``, for :func:`member_mse`); evaluation predicts their mean (an ensemble over
    initialisations). Member ``m`` owns factor columns ``m*n_factors:(m+1)*n_factors`` and
    bias column ``m`` of every table, so a table's rows are the members' vectors side by side.
    """

    def __init__(
        self,
        user_bags: tuple,
        n_user_feats: int,
        item_bags: tuple,
        n_item_feats: int,
        n_factors: int,
        n_days: int = 0,
        y_range: tuple[float, float] | None = (0.0, 5.5),
        init_std: float = 0.01,
        global_bias: float = 0.0,
        members: int = 1,
    ) -> None:
        super().__init__()
        for prefix, (idx, off, w) in (("user", user_bags), ("item", item_bags)):
            self.register_buffer(f"{prefix}_idx", torch.as_tensor(idx, dtype=torch.long), persistent=False)
            self.register_buffer(f"{prefix}_off", torch.as_tensor(off, dtype=torch.long), persistent=False)
            self.register_buffer(f"{prefix}_w", torch.as_tensor(w, dtype=torch.float32), persistent=False)
        self.members, self.n_factors = int(members), int(n_factors)
        width = self.n_factors * self.members
        self.user_feat = nn.Embedding(n_user_feats, width)
        self.item_feat = nn.Embedding(n_item_feats, width)
        self.user_feat_bias = nn.Embedding(n_user_feats, self.members)
        self.item_feat_bias = nn.Embedding(n_item_feats, self.members)
        self.day_emb = nn.Embedding(n_days + 1, width) if n_days else None
        self.day_bias = nn.Embedding(n_days + 1, self.members) if n_days else None
        self.global_bias = nn.Parameter(torch.full((self.members,), float(global_bias)))
        self.y_range = tuple(y_range) if y_range is not None else None
        self.sparse = False
        for emb in (self.user_feat, self.item_feat, self.day_emb):
            if emb is not None:
                nn.init.normal_(emb.weight, 0.0, init_std)
        for emb in (self.user_feat_bias, self.item_feat_bias, self.day_bias):
            if emb is not None:
                nn.init.zeros_(emb.weight)

    def layer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups, earliest first (for freezing and discriminative lrs)."""
        emb = [self.user_feat.weight, self.item_feat.weight] + ([self.day_emb.weight] if self.day_emb else [])
        bias = [self.user_feat_bias.weight, self.item_feat_bias.weight, self.global_bias] + (
            [self.day_bias.weight] if self.day_bias else []
        )
        return {"embeddings": emb, "biases": bias}

    def _compose(self, side: str, weight: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding_bag(
            getattr(self, f"{side}_idx"),
            weight,
            getattr(self, f"{side}_off"),
            mode="sum",
            per_sample_weights=getattr(self, f"{side}_w"),
        )

    def entity_vectors(self, side: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every user's (or item's) composed factors (n x n_factors*members) and biases (n x members)."""
        feat, bias = getattr(self, f"{side}_feat"), getattr(self, f"{side}_feat_bias")
        return self._compose(side, feat.weight), self._compose(side, bias.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor, days: torch.Tensor | None = None) -> torch.Tensor:
        uv, ub = self.entity_vectors("user")
        iv, ib = self.entity_vectors("item")
        shape = (len(users), self.members, self.n_factors)
        u, i = uv[users].view(shape), iv[items].view(shape)
        out = (u * i).sum(2) + ub[users] + ib[items] + self.global_bias
        if days is not None and self.day_emb is not None:
            out = out + (self.day_emb(days).view(shape) * (u + i)).sum(2) + self.day_bias(days)
        if self.y_range is not None:
            lo, hi = self.y_range
            out = torch.sigmoid(out) * (hi - lo) + lo
        if self.members > 1 and self.training and torch.is_grad_enabled():
            return out  # one prediction per member, each trained on its own loss
        return out.mean(1)


def member_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE of each member's prediction (``n x members``), averaged; plain MSE of a 1-D prediction."""
    if pred.dim() == 2:
        return (pred - target.unsqueeze(1)).square().mean()
    return nn.functional.mse_loss(pred, target)
