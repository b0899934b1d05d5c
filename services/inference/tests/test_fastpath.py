"""The numpy predict for linear models: used only when bit-identical to scikit-learn's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from inference.fastpath import compile_predict, probe_rows
from inference.loader import load_model
from inference.settings import Settings
from tests.conftest import training_frame


@pytest.mark.parametrize(
    "estimator",
    [
        Pipeline([("scale", StandardScaler()), ("model", Ridge(alpha=3.0))]),
        Pipeline([("scale", StandardScaler(with_mean=False)), ("model", LinearRegression())]),
        Pipeline([("a", StandardScaler()), ("b", StandardScaler()), ("m", Ridge())]),
        Ridge(alpha=0.5),
    ],
    ids=["scaled-ridge", "scaled-ols-no-centering", "two-scalers", "bare-ridge"],
)
def test_linear_models_compile_to_bit_identical_numpy(estimator: object) -> None:
    frame, target = training_frame()
    estimator.fit(frame.to_numpy(), target.to_numpy())  # type: ignore[attr-defined]
    fast = compile_predict(estimator)
    assert fast is not None
    rng = np.random.default_rng(1)
    for rows in (rng.uniform(0, 200, (500, 3)), rng.uniform(0, 200, (1, 3))):
        expected = estimator.predict(rows)  # type: ignore[attr-defined]
        assert np.array_equal(fast(rows), expected)


@pytest.mark.parametrize(
    "estimator",
    [Pipeline([("scale", MinMaxScaler()), ("model", Ridge())]), Lasso()],
    ids=["other-scaler", "other-model"],
)
def test_other_estimators_keep_their_own_predict(estimator: object) -> None:
    assert compile_predict(estimator) is None


def test_the_loader_uses_numpy_for_ridge_and_the_estimator_for_boosting(
    ridge_run: Path, hgb_run: Path, tmp_path: Path
) -> None:
    ridge = load_model(Settings(model_dir=ridge_run, model_cache_dir=tmp_path))
    boosting = load_model(Settings(model_dir=hgb_run, model_cache_dir=tmp_path))
    assert (ridge.predict_path, boosting.predict_path) == ("numpy", "estimator")


def test_probe_rows_cover_examples_and_the_training_ranges(ridge_run: Path, tmp_path: Path) -> None:
    model = load_model(Settings(model_dir=ridge_run, model_cache_dir=tmp_path))
    rows = probe_rows(model.manifest)
    low = np.array([f.min for f in model.manifest.input_schema], dtype=np.float64)
    high = np.array([f.max for f in model.manifest.input_schema], dtype=np.float64)
    assert rows.shape[1] == 3 and len(rows) > 200
    assert (rows >= low).all() and (rows <= high).all()
    first = [model.manifest.examples[0].input[name] for name in model.feature_names]
    assert rows[0].tolist() == first
