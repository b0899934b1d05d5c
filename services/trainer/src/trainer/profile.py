"""The training reference a drift check compares served data with (manifest ``profile``).

Per feature: quantile bin edges of the training rows and the share of rows in each bin; the same
for the model's predictions on the holdout rows (what its outputs looked like on unseen data).
Binning is shared with the drift check, so reference and observed shares are counted alike:
bin i holds ``edges[i] < x <= edges[i+1]``, the outer bins open-ended.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from artifact_contract import Histogram, Profile

from trainer.data import FEATURE_NAMES
from trainer.evaluate import Split

DEFAULT_BINS = 10
Floats = npt.NDArray[np.float64]


def reference_profile(estimator: Any, data: Split, bins: int = DEFAULT_BINS) -> Profile:
    predictions = np.asarray(estimator.predict(data.holdout[list(FEATURE_NAMES)]), dtype="float64")
    return Profile(
        bins=bins,
        features={
            name: histogram(data.train[name].to_numpy(dtype="float64"), bins)
            for name in FEATURE_NAMES
        },
        prediction=histogram(predictions, bins),
    )


def histogram(values: Floats, bins: int) -> Histogram:
    """Quantile edges of ``values`` (repeats dropped) and the share of values in each bin."""
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError("a profile needs a non-empty set of finite values")
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size == 1:  # a constant column: one bin holding everything
        edges = np.repeat(edges, 2)
    shares = bin_shares(values, edges)
    return Histogram(
        edges=[float(edge) for edge in edges],
        proportions=[float(share) for share in shares],
        rows=int(values.size),
    )


def bin_counts(values: Floats, edges: Floats | list[float]) -> npt.NDArray[np.int64]:
    """Counts per bin ``(-inf, e1], (e1, e2], ..., (e_{k-1}, +inf)`` for the given edges."""
    inner = np.asarray(edges, dtype="float64")[1:-1]
    index = np.searchsorted(inner, values, side="left")
    return np.bincount(index, minlength=inner.size + 1).astype(np.int64)


def bin_shares(values: Floats, edges: Floats | list[float]) -> Floats:
    counts = bin_counts(values, edges)
    return counts / max(int(counts.sum()), 1)
