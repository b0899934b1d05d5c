"""The reference profile (manifest schema_version 2): what the training data looked like.

Per input feature, quantile bin edges and the share of training rows in each bin; the same for
the model's predictions on the holdout set. A drift check bins served data on the same edges and
compares the shares (PSI). Bins are ``(-inf, e1], (e1, e2], ..., (e_{k-1}, +inf)``: the first
and last edges are the training minimum and maximum, kept for charts, and values beyond them
count in the outer bins. Edges may repeat (a feature with few distinct values); only the
non-empty bins carry weight then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from artifact_contract.errors import ManifestError

PROFILE_METHOD = "quantile"
# How far the proportions may stray from summing to 1 (they are rounded floats).
_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Histogram:
    edges: list[float]
    proportions: list[float]
    rows: int


@dataclass(frozen=True)
class Profile:
    bins: int
    features: dict[str, Histogram]
    prediction: Histogram
    method: str = PROFILE_METHOD

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Profile:
        """Build from a dict that validate_profile has accepted."""
        return cls(
            method=raw["method"],
            bins=raw["bins"],
            features={name: _histogram(item) for name, item in raw["features"].items()},
            prediction=_histogram(raw["prediction"]),
        )


def _histogram(raw: dict[str, Any]) -> Histogram:
    return Histogram(
        edges=[float(edge) for edge in raw["edges"]],
        proportions=[float(share) for share in raw["proportions"]],
        rows=raw["rows"],
    )


def _fail(where: str, problem: str) -> ManifestError:
    return ManifestError(f"field {where!r} {problem}")


def _finite_list(value: Any, where: str) -> list[float]:
    if not isinstance(value, list):
        raise _fail(where, "must be a list of numbers")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise _fail(where, "must hold finite numbers only")
    return [float(item) for item in value]


def validate_histogram(raw: Any, where: str) -> None:
    if not isinstance(raw, dict) or set(raw) != {"edges", "proportions", "rows"}:
        raise _fail(where, "must be an object holding exactly edges, proportions and rows")
    edges = _finite_list(raw["edges"], f"{where}.edges")
    shares = _finite_list(raw["proportions"], f"{where}.proportions")
    if len(edges) < 2:
        raise _fail(f"{where}.edges", "must hold at least 2 edges")
    if any(low > high for low, high in pairwise(edges)):
        raise _fail(f"{where}.edges", "must be in ascending order")
    if len(shares) != len(edges) - 1:
        raise _fail(f"{where}.proportions", "must hold one share per bin (len(edges) - 1)")
    if any(share < 0 for share in shares) or abs(sum(shares) - 1.0) > _SUM_TOLERANCE:
        raise _fail(f"{where}.proportions", "must be non-negative and sum to 1")
    rows = raw["rows"]
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise _fail(f"{where}.rows", "must be a positive integer")


def validate_profile(raw: Any, feature_names: list[str]) -> None:
    """Raise ManifestError naming the first problem in a manifest's ``profile`` object."""
    keys = {"method", "bins", "features", "prediction"}
    if not isinstance(raw, dict) or set(raw) != keys:
        raise _fail("profile", f"must be an object holding exactly {', '.join(sorted(keys))}")
    if raw["method"] != PROFILE_METHOD:
        raise _fail("profile.method", f"must be {PROFILE_METHOD!r}")
    bins = raw["bins"]
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise _fail("profile.bins", "must be a positive integer")
    features = raw["features"]
    if not isinstance(features, dict) or sorted(features) != sorted(feature_names):
        raise _fail("profile.features", "must profile exactly the input_schema features")
    for name, histogram in features.items():
        validate_histogram(histogram, f"profile.features.{name}")
        if len(histogram["proportions"]) > bins:
            raise _fail(f"profile.features.{name}", f"has more than {bins} bins")
    validate_histogram(raw["prediction"], "profile.prediction")
