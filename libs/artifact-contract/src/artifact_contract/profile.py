"""The reference profile (manifest schema_version 2 on): what the training data looked like.

Per input feature, quantile bin edges and the share of training rows in each bin; the same for
the model's predictions on the holdout set. A drift check bins served data on the same edges and
compares the shares (PSI). Bins are ``(-inf, e1], (e1, e2], ..., (e_{k-1}, +inf)``: the first
and last edges are the training minimum and maximum, kept for charts, and values beyond them
count in the outer bins. Edges may repeat (a feature with few distinct values); only the
non-empty bins carry weight then.

Schema version 3 adds category shares for categorical and boolean features (boolean categories
are ``"false"`` and ``"true"``) and, for a classification model, for its predicted classes
(categories are the labels spelt by ``label_key``): ``{"kind": "categorical", "categories",
"proportions", "unseen", "rows"}``, where ``unseen`` is the share of values outside the
categories (0.0 at training; a drift check fills it from served data). Missing values are not
profiled: ``rows`` counts the non-missing ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from artifact_contract.errors import ManifestError
from artifact_contract.interface import SUM_TOLERANCE, label_key

PROFILE_METHOD = "quantile"
CATEGORICAL_KIND = "categorical"
BOOLEAN_CATEGORIES = ["false", "true"]


@dataclass(frozen=True)
class Histogram:
    edges: list[float]
    proportions: list[float]
    rows: int


@dataclass(frozen=True, kw_only=True)
class CategoryShares:
    kind: str = CATEGORICAL_KIND
    categories: list[str]
    proportions: list[float]
    unseen: float
    rows: int


Shares = Histogram | CategoryShares


@dataclass(frozen=True)
class Profile:
    bins: int
    features: dict[str, Shares]
    prediction: Shares
    method: str = PROFILE_METHOD

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Profile:
        """Build from a dict that validate_profile has accepted."""
        return cls(
            method=raw["method"],
            bins=raw["bins"],
            features={name: _shares(item) for name, item in raw["features"].items()},
            prediction=_shares(raw["prediction"]),
        )


def _shares(raw: dict[str, Any]) -> Shares:
    if raw.get("kind") == CATEGORICAL_KIND:
        return CategoryShares(
            categories=list(raw["categories"]),
            proportions=[float(share) for share in raw["proportions"]],
            unseen=float(raw["unseen"]),
            rows=raw["rows"],
        )
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
    if any(share < 0 for share in shares) or abs(sum(shares) - 1.0) > SUM_TOLERANCE:
        raise _fail(f"{where}.proportions", "must be non-negative and sum to 1")
    _validate_rows(raw["rows"], f"{where}.rows")


def _validate_rows(rows: Any, where: str) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise _fail(where, "must be a positive integer")


def validate_category_shares(raw: Any, where: str, categories: list[str]) -> None:
    """Shares of exactly ``categories`` (in that order) plus ``unseen``, summing to 1."""
    keys = {"kind", "categories", "proportions", "unseen", "rows"}
    if not isinstance(raw, dict) or set(raw) != keys or raw["kind"] != CATEGORICAL_KIND:
        raise _fail(
            where,
            f"must be an object holding kind {CATEGORICAL_KIND!r} and exactly "
            "categories, proportions, unseen and rows",
        )
    if raw["categories"] != categories:
        raise _fail(f"{where}.categories", f"must be {categories}")
    shares = _finite_list(raw["proportions"], f"{where}.proportions")
    if len(shares) != len(categories):
        raise _fail(f"{where}.proportions", "must hold one share per category")
    unseen = _finite_list([raw["unseen"]], f"{where}.unseen")[0]
    if (
        any(share < 0 for share in [*shares, unseen])
        or abs(sum(shares) + unseen - 1.0) > SUM_TOLERANCE
    ):
        raise _fail(f"{where}.proportions", "must be non-negative and sum to 1 with unseen")
    _validate_rows(raw["rows"], f"{where}.rows")


def validate_profile(
    raw: Any, input_schema: list[dict[str, Any]], output: dict[str, Any], schema_version: int
) -> None:
    """Raise ManifestError naming the first problem in a manifest's ``profile`` object."""
    feature_names = [feature["name"] for feature in input_schema]
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
    types = {feature["name"]: feature for feature in input_schema}
    for name, shares in features.items():
        where = f"profile.features.{name}"
        kind = types[name]["type"]
        if kind == "categorical":
            validate_category_shares(shares, where, types[name]["categories"])
        elif kind == "boolean":
            validate_category_shares(shares, where, BOOLEAN_CATEGORIES)
        else:
            validate_histogram(shares, where)
            if len(shares["proportions"]) > bins:
                raise _fail(where, f"has more than {bins} bins")
    if schema_version >= 3 and output["task"] == "classification":
        classes = [label_key(label) for label in output["classes"]]
        validate_category_shares(raw["prediction"], "profile.prediction", classes)
    else:
        validate_histogram(raw["prediction"], "profile.prediction")
