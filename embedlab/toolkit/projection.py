"""2-D pictures of embedding vectors, shared by the analyses and by ``embedlab export``.

One place computes the coordinates a report shows (PCA, t-SNE, UMAP), so that an exported CSV
and a report's plot agree.
"""
from __future__ import annotations

import numpy as np

from embedlab.toolkit.stats import pad_columns



def project_2d(vectors: np.ndarray, method: str = "pca", seed: int | None = 0,
               metric: str = "euclidean") -> np.ndarray:
    """A 2-D picture of the vectors: PCA (deterministic), t-SNE or UMAP (seeded). A 1-D
    embedding gives its single coordinate and a zero second column."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n = len(x)
    if method == "pca" or x.shape[1] == 1 or n < 4:
        c = x - x.mean(axis=0)
        if x.shape[1] == 1:
            return pad_columns(c, 2)
        u, s, _ = np.linalg.svd(c, full_matrices=False)
        out = pad_columns(u[:, :2] * s[:2], 2)
        # fix each axis's sign (largest |loading| positive) so pictures are stable across runs
        signs = np.sign(out[np.argmax(np.abs(out), axis=0), [0, 1]])
        return out * np.where(signs == 0, 1, signs)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca" if metric == "euclidean" else "random",
                    metric=metric, random_state=seed).fit_transform(x)
    if method == "umap":
        import warnings

        import umap

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reducer = umap.UMAP(n_components=2, n_neighbors=int(max(2, min(15, n - 1))),
                                metric=metric, init="spectral" if n > 30 else "random",
                                random_state=seed)
            return np.asarray(reducer.fit_transform(x), dtype=np.float64)
    raise ValueError(f"unknown projection {method!r}; use pca, tsne or umap")
