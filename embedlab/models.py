"""Models whose embeddings embedlab analyses."""
from __future__ import annotations

import torch
from torch import nn


def emb_sz_rule(n_categories: int) -> int:
    """fastai's embedding-size rule: ``min(600, round(1.6 * n ** 0.56))``."""
    return int(min(600, round(1.6 * n_categories ** 0.56)))


class DotBias(nn.Module):
    """Collaborative filtering: ``sigmoid(u . i + b_u + b_i) * (hi - lo) + lo``.

    Embeddings start small (normal, std ``init_std``): large initial factors drown the biases
    and, measured on ml-100k, cost accuracy.
    """

    def __init__(self, n_users: int, n_items: int, n_factors: int,
                 y_range: tuple[float, float] | None = (0.0, 5.5), init_std: float = 0.01) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(n_users, n_factors)
        self.item_emb = nn.Embedding(n_items, n_factors)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        self.y_range = tuple(y_range) if y_range is not None else None
        for emb in (self.user_emb, self.item_emb):
            nn.init.normal_(emb.weight, 0.0, init_std)
        for emb in (self.user_bias, self.item_bias):
            nn.init.zeros_(emb.weight)

    def layer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups, earliest first (for freezing and discriminative lrs)."""
        return {"embeddings": [self.user_emb.weight, self.item_emb.weight],
                "biases": [self.user_bias.weight, self.item_bias.weight]}

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        u = self.user_emb(users)
        i = self.item_emb(items)
        out = (u * i).sum(1) + self.user_bias(users).squeeze(1) + self.item_bias(items).squeeze(1)
        if self.y_range is None:
            return out
        lo, hi = self.y_range
        return torch.sigmoid(out) * (hi - lo) + lo
