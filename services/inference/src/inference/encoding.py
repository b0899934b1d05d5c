"""Version-3 pipelines as plain numpy: the fitted preprocessing replayed on validated columns.

A version-3 model is a scikit-learn Pipeline fitted on a DataFrame. For one row, building that
DataFrame and running ``ColumnTransformer`` (imputers, scaler, one-hot or ordinal encoder) costs
milliseconds of validation and bookkeeping around microseconds of arithmetic. Here the fitted
steps the trainer emits are read once and replayed on the request's columns with the same numpy
operations, into the same float64 matrix the final estimator would receive; that matrix then
goes to the final estimator's own arithmetic (``X @ coef + intercept`` for ridge, the fitted
estimator's ``predict_proba`` for logistic regression, the fitted trees for hist_gb).

``compile_columns`` returns None for any step it does not know exactly; fastpath.py accepts the
result only where it is bit-identical to the pipeline on the manifest's examples and on generated
rows, and otherwise the model keeps the DataFrame path.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from artifact_contract import Feature
from sklearn import config_context
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils import check_array
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

Matrix = npt.NDArray[np.float64]
Columns = dict[str, list[Any]]
# Writes its block of the encoded matrix: (request columns, the matrix, first column).
Block = tuple[int, Callable[[Columns, Matrix, int], None]]
ColumnsPredict = Callable[[Columns], Matrix]

_NUMERIC = ("number", "integer")
_BOOSTING = (HistGradientBoostingRegressor, HistGradientBoostingClassifier)


def compile_columns(estimator: Any, schema: Sequence[Feature], task: str) -> ColumnsPredict | None:
    """A function from validated columns to ``predict`` (regression) or ``predict_proba``
    (classification) of ``estimator``, or None when some step is not one we replay exactly."""
    steps = (
        [step for _, step in estimator.steps if step is not None and step != "passthrough"]
        if type(estimator) is Pipeline
        else [estimator]
    )
    *prefix, final = steps
    if type(final) in _BOOSTING and final._preprocessor is not None:
        if prefix:  # boosting behind another transformer: its encoder sees that one's output
            return None
        prefix = [final._preprocessor]
    features = list(schema)
    # The same memory layout as scikit-learn's matrix: BLAS rounds a product over a
    # Fortran-ordered matrix (what a DataFrame of floats gives) differently from a C-ordered one
    # (what ColumnTransformer stacks).
    order: Literal["C", "F"] = "F"
    if len(prefix) == 1 and type(prefix[0]) is ColumnTransformer:
        blocks, order = _column_transformer(prefix[0], features), "C"
    else:
        blocks = _chain(prefix, features)
    stage = _final_stage(final, task)
    if blocks is None or stage is None:
        return None
    width = sum(size for size, _ in blocks)
    first = features[0].name

    def predict(columns: Columns) -> Matrix:
        encoded = np.empty((len(columns[first]), width), dtype=np.float64, order=order)
        start = 0
        for size, write in blocks:
            write(columns, encoded, start)
            start += size
        return stage(encoded)

    return predict


# --- preprocessing -------------------------------------------------------------------------


def _column_transformer(ct: ColumnTransformer, features: list[Feature]) -> list[Block] | None:
    if getattr(ct, "sparse_output_", True) or not hasattr(ct, "_transformer_to_input_indices"):
        return None
    blocks: list[Block] = []
    for name, transformer, _ in ct.transformers_:
        indices = ct._transformer_to_input_indices.get(name)
        if indices is None:
            return None
        if transformer == "drop" or len(indices) == 0:
            continue
        chosen = [features[i] for i in indices]
        steps = (
            [s for _, s in transformer.steps if s is not None and s != "passthrough"]
            if type(transformer) is Pipeline
            else []
            if transformer == "passthrough"
            else [transformer]
        )
        block = _chain(steps, chosen)
        if block is None:
            return None
        blocks.extend(block)
    return blocks


def _chain(steps: list[Any], features: list[Feature]) -> list[Block] | None:
    """One block for a chain of transformers over some features, or None."""
    if not steps or all(_is_float_passthrough(s) for s in steps):
        if any(f.type == "categorical" for f in features):
            return None
        return [_numbers(features, [])]
    if all(type(s) in (SimpleImputer, StandardScaler) for s in steps):
        if any(f.type not in _NUMERIC for f in features):
            return None
        operations = [_numeric_operation(s) for s in steps]
        if any(op is None for op in operations):
            return None
        return [_numbers(features, [op for op in operations if op is not None])]
    *impute, encoder = steps
    if len(impute) > 1 or (impute and type(impute[0]) is not SimpleImputer):
        return None
    fills = _object_fills(impute[0]) if impute else [None] * len(features)
    if fills is None or len(fills) != len(features):
        return None
    if type(encoder) is OneHotEncoder:
        return _one_hot(encoder, features, fills)
    if type(encoder) is OrdinalEncoder:
        return _ordinal(encoder, features, fills)
    return None


def _is_float_passthrough(step: Any) -> bool:
    """``"passthrough"`` or hist_gb's own numeric step (``check_array`` to float64)."""
    if step == "passthrough":
        return True
    if type(step) is not FunctionTransformer:
        return False
    func = step.func
    return func is None or (isinstance(func, functools.partial) and func.func is check_array)


def _numeric_operation(step: Any) -> Callable[[Matrix], None] | None:
    if type(step) is StandardScaler:
        mean = np.asarray(step.mean_, dtype=np.float64) if step.with_mean else None
        scale = np.asarray(step.scale_, dtype=np.float64) if step.with_std else None

        def standardise(block: Matrix) -> None:  # StandardScaler.transform, in place
            if mean is not None:
                block -= mean
            if scale is not None:
                block /= scale

        return standardise
    missing = step.missing_values
    statistics = np.asarray(step.statistics_, dtype=np.float64)
    if (
        step.add_indicator
        or not (isinstance(missing, float) and math.isnan(missing))
        or np.isnan(statistics).any()
    ):
        return None

    def impute(block: Matrix) -> None:  # SimpleImputer.transform: NaN -> the fitted statistic
        holes = np.isnan(block)
        if holes.any():
            block[holes] = np.broadcast_to(statistics, block.shape)[holes]

    return impute


def _numbers(features: list[Feature], operations: list[Callable[[Matrix], None]]) -> Block:
    names = [f.name for f in features]

    def write(columns: Columns, out: Matrix, start: int) -> None:
        block = np.empty((out.shape[0], len(names)), dtype=np.float64)
        for j, name in enumerate(names):
            block[:, j] = np.array(
                [math.nan if v is None else v for v in columns[name]], dtype=np.float64
            )
        for operation in operations:
            operation(block)
        out[:, start : start + len(names)] = block

    return len(names), write


def _object_fills(imputer: SimpleImputer) -> list[Any] | None:
    """The value each column's missing entries become (most frequent or constant)."""
    missing = imputer.missing_values
    if imputer.add_indicator or not (isinstance(missing, float) and math.isnan(missing)):
        return None
    fills = [v.item() if isinstance(v, np.generic) else v for v in imputer.statistics_]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in fills):
        return None
    return fills


def _lookups(
    encoder: Any, features: list[Feature], missing_last: bool = False
) -> list[dict[Any, int]] | None:
    """Each feature's {category: index}. Missing values seen in training are the last
    category; only ``missing_last`` (OrdinalEncoder, which encodes them as
    ``encoded_missing_value``) accepts that."""
    categories = encoder.categories_
    if len(categories) != len(features):
        return None
    lookups = []
    for values in categories:
        items = [v.item() if isinstance(v, np.generic) else v for v in values]
        if missing_last and items and isinstance(items[-1], float) and math.isnan(items[-1]):
            items = items[:-1]
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in items):
            return None
        lookups.append({v: i for i, v in enumerate(items)})
    return lookups


def _unknowns_ignored(encoder: OneHotEncoder, features: list[Feature]) -> bool:
    """Unknown categories encode as zeros, or never reach the model (validation refuses them
    unless the manifest says the feature accepts them)."""
    if encoder.handle_unknown == "ignore":
        return True
    return encoder.handle_unknown == "error" and not any(f.accepts_unknown for f in features)


def _one_hot(
    encoder: OneHotEncoder, features: list[Feature], fills: list[Any]
) -> list[Block] | None:
    lookups = _lookups(encoder, features)
    if (
        lookups is None
        or not _unknowns_ignored(encoder, features)
        or encoder.drop_idx_ is not None
        or encoder._infrequent_enabled
        or np.dtype(encoder.dtype) != np.float64
    ):
        return None
    widths = [len(lookup) for lookup in lookups]
    names = [f.name for f in features]

    def write(columns: Columns, out: Matrix, start: int) -> None:
        out[:, start : start + sum(widths)] = 0.0
        offset = start
        for name, lookup, fill, width in zip(names, lookups, fills, widths, strict=True):
            hot = np.array(
                [lookup.get(fill if v is None else v, -1) for v in columns[name]], dtype=np.intp
            )
            known = np.flatnonzero(hot >= 0)  # unknown categories encode as all zeros
            out[known, offset + hot[known]] = 1.0
            offset += width

    return [(sum(widths), write)]


def _ordinal(
    encoder: OrdinalEncoder, features: list[Feature], fills: list[Any]
) -> list[Block] | None:
    lookups = _lookups(encoder, features, missing_last=True)
    missing = encoder.encoded_missing_value
    if (
        lookups is None
        or encoder.handle_unknown != "use_encoded_value"
        or np.dtype(encoder.dtype) != np.float64
        or not (isinstance(missing, float) and math.isnan(missing))
        or getattr(encoder, "_infrequent_enabled", False)
    ):
        return None
    unknown = float(encoder.unknown_value)
    names = [f.name for f in features]

    def write(columns: Columns, out: Matrix, start: int) -> None:
        for j, (name, lookup, fill) in enumerate(zip(names, lookups, fills, strict=True)):
            out[:, start + j] = [
                missing
                if (v := fill if value is None else value) is None
                else lookup.get(v, unknown)
                for value in columns[name]
            ]

    return [(len(names), write)]


# --- the final estimator -------------------------------------------------------------------


def _final_stage(final: Any, task: str) -> Callable[[Matrix], Matrix] | None:
    kind = type(final)
    if task != "classification" and kind in (Ridge, LinearRegression):
        coef = np.asarray(final.coef_, dtype=np.float64)
        if coef.ndim != 1:
            return None
        intercept = final.intercept_

        def linear(x: Matrix) -> Matrix:  # LinearModel._decision_function
            result: Matrix = x @ coef + intercept
            return result

        return linear
    if task == "classification" and kind is LogisticRegression:

        def logistic(x: Matrix) -> Matrix:
            with config_context(assume_finite=True, skip_parameter_validation=True):
                return np.asarray(final.predict_proba(x), dtype=np.float64)

        return logistic
    if kind in _BOOSTING and (task == "classification") == (kind is HistGradientBoostingClassifier):
        return _trees(final, task)
    return None


def _trees(model: Any, task: str) -> Callable[[Matrix], Matrix]:
    """HistGradientBoosting's ``_raw_predict`` after its own preprocessing: the fitted trees
    summed in the same order from the same baseline, then the loss's inverse link. A few rows
    walk all trees at once (``Forest``: one numpy step per tree level instead of one call per
    tree); a batch goes tree by tree through scikit-learn's compiled predictor."""
    known_bitsets, feature_map = model._bin_mapper.make_known_categories_bitsets()
    threads = _openmp_effective_n_threads()
    baseline = model._baseline_prediction
    trees = model.n_trees_per_iteration_
    iterations = [list(enumerate(iteration)) for iteration in model._predictors]
    forest = Forest(model._predictors, known_bitsets, feature_map)

    def predict(x: Matrix) -> Matrix:
        raw = np.zeros((x.shape[0], trees), dtype=baseline.dtype, order="F")
        raw += baseline
        if x.shape[0] <= FOREST_ROWS and forest.covers(x):
            leaves = forest.leaf_values(x)  # (rows, iterations * trees)
            for k in range(trees):
                # Sequential sums (cumsum), in tree order: exactly the predictor's `+=` loop.
                column = np.concatenate([raw[:, k : k + 1], leaves[:, k::trees]], axis=1)
                raw[:, k] = np.cumsum(column, axis=1)[:, -1]
        else:
            for iteration in iterations:
                for k, predictor in iteration:
                    raw[:, k] += predictor.predict(x, known_bitsets, feature_map, threads)
        if task == "classification":
            return np.asarray(model._loss.predict_proba(raw), dtype=np.float64)
        return np.asarray(model._loss.link.inverse(raw.ravel()), dtype=np.float64)

    return predict


FOREST_ROWS = 32  # up to this many rows, walking all trees at once beats one call per tree


class Forest:
    """Every tree's nodes in one set of arrays (children as global indices, a leaf its own
    child), walked level by level for all trees at once with the predictor's own decisions:
    NaN goes the missing side; a number goes left when ``<= threshold``; a category code goes
    left when in the node's left set, right when known to the feature, else the missing side."""

    def __init__(self, predictors: list[list[Any]], known: Any, feature_map: Any) -> None:
        nodes = [predictor.nodes for iteration in predictors for predictor in iteration]
        offsets = np.cumsum([0] + [len(n) for n in nodes[:-1]])
        every = np.concatenate(nodes)
        own = np.arange(len(every))
        shift = np.repeat(offsets, [len(n) for n in nodes])
        leaf = every["is_leaf"].astype(bool)
        self.roots = offsets.astype(np.intp)
        self.feature = every["feature_idx"].astype(np.intp)
        self.threshold = every["num_threshold"].astype(np.float64)
        self.missing_left = every["missing_go_to_left"].astype(bool)
        self.left = np.where(leaf, own, every["left"].astype(np.intp) + shift)
        self.right = np.where(leaf, own, every["right"].astype(np.intp) + shift)
        self.value = every["value"].astype(np.float64)
        self.depth = int(every["depth"].max())
        categorical = every["is_categorical"].astype(bool) & ~leaf
        self.categorical = categorical if categorical.any() else None
        self.category_columns = np.unique(self.feature[categorical])
        # For each categorical node, where each code 0..255 goes (True: left).
        self.code_left = np.zeros((len(every), 256), dtype=bool)
        bitsets = [predictor.raw_left_cat_bitsets for it in predictors for predictor in it]
        codes = np.arange(256)
        for index in np.flatnonzero(categorical):
            tree = int(np.searchsorted(offsets, index, side="right") - 1)
            node = every[index]
            in_left = _in_bitset(bitsets[tree][node["bitset_idx"]], codes)
            known_here = _in_bitset(known[feature_map[node["feature_idx"]]], codes)
            self.code_left[index] = in_left | (~known_here & bool(node["missing_go_to_left"]))

    def covers(self, x: Matrix) -> bool:
        """Category codes beyond 255 are left to the compiled predictor (it casts to uint8)."""
        if self.categorical is None:
            return True
        codes = x[:, self.category_columns]
        return not (codes[~np.isnan(codes)] > 255).any()

    def leaf_values(self, x: Matrix) -> Matrix:
        rows = np.arange(x.shape[0])[:, None]
        at = np.broadcast_to(self.roots, (x.shape[0], len(self.roots)))
        for _ in range(self.depth):
            value = x[rows, self.feature[at]]
            missing_side = self.missing_left[at]
            go_left = np.where(np.isnan(value), missing_side, value <= self.threshold[at])
            if self.categorical is not None:
                coded = self.categorical[at]
                if coded.any():  # NaN stays missing; a negative code goes the missing side
                    usable = coded & (value >= 0)
                    side = self.code_left[at, np.where(usable, value, 0).astype(np.intp)]
                    go_left = np.where(
                        usable, side, np.where(coded & (value < 0), missing_side, go_left)
                    )
            at = np.where(go_left, self.left[at], self.right[at])
        values: Matrix = self.value[at]
        return values


def _in_bitset(bitset: Any, codes: npt.NDArray[np.int_]) -> npt.NDArray[np.bool_]:
    words = np.asarray(bitset, dtype=np.uint32)
    return ((words[codes // 32] >> (codes % 32).astype(np.uint32)) & 1).astype(bool)
