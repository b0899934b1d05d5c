from __future__ import annotations

import numpy as np
import pytest
from artifact_contract import Histogram

from tests.conftest import fit_synthetic
from trainer.monitoring.drift import psi
from trainer.training import data
from trainer.training.profile import bin_counts, histogram, reference_profile


def test_bins_are_closed_on_the_right_and_open_at_both_ends() -> None:
    edges = [0.0, 1.0, 2.0, 3.0]
    counts = bin_counts(np.array([-5.0, 0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 99.0]), edges)
    assert counts.tolist() == [3, 2, 3]  # (-inf,1], (1,2], (2,+inf)


def test_quantile_edges_split_the_training_rows_evenly() -> None:
    values = np.arange(1000, dtype="float64")
    result = histogram(values, 10)
    assert len(result.edges) == 11 and result.edges[0] == 0.0 and result.edges[-1] == 999.0
    assert result.proportions == pytest.approx([0.1] * 10, abs=0.002)
    assert result.rows == 1000


def test_a_feature_with_few_values_gets_fewer_bins() -> None:
    values = np.array([0.0, 1.0, 1.0, 2.0] * 50)
    result = histogram(values, 10)
    assert result.edges == sorted(set(result.edges))
    assert sum(result.proportions) == pytest.approx(1.0)
    constant = histogram(np.full(10, 7.0), 10)
    assert constant.edges == [7.0, 7.0] and constant.proportions == [1.0]


def test_reference_profile_covers_every_feature_and_the_holdout_predictions() -> None:
    fitted = fit_synthetic(500, 1)
    estimator, split = fitted.estimator, fitted.split
    profile = reference_profile(estimator, split, fitted.schema)
    assert list(profile.features) == list(data.FEATURE_NAMES)
    age, prediction = profile.features["age"], profile.prediction
    assert isinstance(age, Histogram) and isinstance(prediction, Histogram)
    assert age.rows == 400
    assert prediction.rows == 100
    assert age.edges[0] == split.train["age"].min()
    low, high = prediction.edges[0], prediction.edges[-1]
    predictions = estimator.predict(split.holdout[list(data.FEATURE_NAMES)])
    assert (low, high) == (predictions.min(), predictions.max())


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    reference = [0.25, 0.25, 0.25, 0.25]
    assert psi(reference, reference) == 0.0
    small = psi(reference, [0.3, 0.25, 0.25, 0.2])
    large = psi(reference, [0.7, 0.1, 0.1, 0.1])
    assert 0.0 < small < 0.1 < 0.25 < large
    # An empty observed bin is floored, not infinite.
    assert np.isfinite(psi(reference, [0.5, 0.5, 0.0, 0.0]))
