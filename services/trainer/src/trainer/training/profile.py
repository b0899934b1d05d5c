"""The training reference a drift check compares served data with (manifest ``profile``).

Per feature: quantile bin edges of the training rows and the share of rows in each bin; the same
for the model's predictions on the holdout rows (what its outputs looked like on unseen data).
Binning is shared with the drift check, so reference and observed shares are counted alike:
bin i holds ``edges[i] < x <= edges[i+1]``, the outer bins open-ended. Categorical and boolean
features, and a classifier's predicted classes, are profiled as category shares instead (the
contract's CategoryShares, with an ``unseen`` share of 0 at training). Missing values are left
out: ``rows`` counts the values present.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from artifact_contract import CategoryShares, Histogram, Profile, label_key

from trainer.training.evaluate import Split
from trainer.training.schema import TableSchema

DEFAULT_BINS = 10
Floats = npt.NDArray[np.float64]


def reference_profile(
    estimator: Any, data: Split, schema: TableSchema, bins: int = DEFAULT_BINS
) -> Profile:
    features: dict[str, Histogram | CategoryShares] = {}
    for column in schema.features:
        values = data.train[column.name].dropna()
        if column.type == "categorical":
            features[column.name] = category_shares(values.map(str), train_categories(values))
        elif column.type == "boolean":
            features[column.name] = category_shares(
                values.map(lambda value: label_key(bool(value))), ["false", "true"]
            )
        else:
            features[column.name] = histogram(values.to_numpy(dtype="float64"), bins)
    predicted = estimator.predict(data.holdout[schema.feature_names])
    prediction: Histogram | CategoryShares
    if schema.task == "classification":
        keys = [label_key(label) for label in estimator.classes_.tolist()]
        prediction = category_shares(pd.Series([label_key(v) for v in predicted.tolist()]), keys)
    else:
        prediction = histogram(np.asarray(predicted, dtype="float64"), bins)
    return Profile(bins=bins, features=features, prediction=prediction)


def train_categories(values: pd.Series[Any]) -> list[str]:
    """The sorted categories of a categorical feature's training values (missing ones left out)."""
    return sorted({str(value) for value in values.dropna()})


def category_shares(values: pd.Series[Any], categories: list[str]) -> CategoryShares:
    counts = values.value_counts()
    total = int(counts.sum())
    if total == 0:
        raise ValueError("a profile needs at least one value")
    return CategoryShares(
        categories=categories,
        proportions=[int(counts.get(category, 0)) / total for category in categories],
        unseen=0.0,
        rows=total,
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
