"""The learning-rate finder's result: loss against lr, and the suggestion rules users know."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUGGESTION_RULES = {
    "valley": "the middle of the longest valley: the longest run of falling loss, noise allowed (fastai's default)",
    "steep": "the steepest descent of the loss against log(lr) (lesson 5)",
    "min10": "the lr of the minimum loss divided by 10 (lesson 5)",
}


@dataclass
class LRFindResult:
    """Loss against learning rate, with the suggestion rules users know."""

    lrs: list[float]
    losses: list[float]
    #: the rule of :attr:`suggestion` (a key of :data:`SUGGESTION_RULES`)
    rule: str = "valley"

    def _clean(self, skip_start: bool = False) -> tuple[np.ndarray, np.ndarray]:
        lrs = np.asarray(self.lrs, dtype=float)
        losses = np.asarray(self.losses, dtype=float)
        if skip_start:  # fastai's: the first tenth is the smoothing warming up, not the model
            lrs, losses = lrs[len(lrs) // 10 :], losses[len(losses) // 10 :]
        keep = np.isfinite(losses) & (lrs > 0)
        return lrs[keep], losses[keep]

    def suggestions(self) -> dict[str, float]:
        """``{"valley": lr, "steep": lr, "min10": lr}`` ({} when the sweep is too short).

        * min10: ``lr[argmin(loss)] / 10``: the minimum is already too far; a tenth is safe.
        * steep: the point of steepest descent, ``argmin d loss / d log lr``, looked for up to
          the minimum only (past it the loss shoots up and the slope means nothing).
        * valley: fastai's rule: the longest valley is the longest decreasing subsequence of
          the loss (it tolerates noise that breaks a run of strictly falling points), placed as
          the ``length`` points ending where it ends; the suggestion is halfway along them.

        Like fastai, the first tenth of the sweep is left out (the smoothed loss is still
        settling there, and its noise would look like the steepest fall).
        """
        lrs, losses = self._clean(skip_start=True)
        n = len(lrs)
        if n < 5:
            return {}
        i_min = int(np.argmin(losses))
        out = {
            "valley": float(lrs[_valley_index(losses)]),
            "steep": float(lrs[_steep_index(lrs, losses, i_min)]),
            "min10": float(lrs[i_min] / 10),
        }
        return out

    def suggested(self, rule: str | None = None) -> float | None:
        return self.suggestions().get(rule or self.rule)

    def loss_at(self, lr: float) -> float:
        """The (smoothed) loss at ``lr``, interpolated in log(lr) (for marking a suggestion)."""
        lrs, losses = self._clean()
        return float(np.interp(np.log(lr), np.log(lrs), losses))


def _steep_index(lrs: np.ndarray, losses: np.ndarray, i_min: int) -> int:
    """The middle of the steepest fall over ``w`` points (w ~ 1/25 of the sweep, at least 1).

    A slope over a few points, not one: on a noisy plateau one-step slopes are as steep as
    the real descent, a sustained fall over several points is not.
    """
    if i_min < 1:
        return 0
    w = max(1, min(len(lrs) // 25, i_min))
    log_lr = np.log(lrs[: i_min + 1])
    head = losses[: i_min + 1]
    slopes = (head[w:] - head[:-w]) / (log_lr[w:] - log_lr[:-w])
    return int(np.argmin(slopes)) + w // 2


def _valley_index(losses: np.ndarray) -> int:
    """fastai's valley: the longest decreasing subsequence, counted back from where it ends.

    The span is ``length`` points back from the end, not back to the subsequence's first
    point: on a long noisy plateau the subsequence can pick up stray points far to the left,
    and the count keeps the valley on the real descent. O(n^2) on ~100 points.
    """
    n = len(losses)
    length = [1] * n
    end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and length[i] < length[j] + 1:
                length[i] = length[j] + 1
        if length[i] > length[end]:
            end = i
    start = max(end - length[end], 0)
    section = (end - start) / 3
    return min(start + int(section) + int(section / 2), n - 1)
