"""Same seed + same data + same lockfile => identical model bytes and identical metrics."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import skops.io as sio
from artifact_contract import read_manifest, sha256_file

from tests.conftest import TrainedRoot, fit_synthetic
from trainer.training import data, model
from trainer.training.serialization import canonicalize_skops


def test_same_seed_into_two_directories_gives_identical_model_and_metrics(
    two_trainings: TrainedRoot, other_root: TrainedRoot
) -> None:
    a = two_trainings.root / "runs" / "v001"
    b = other_root.root / "runs" / "v001"
    assert sha256_file(a / "model.skops") == sha256_file(b / "model.skops")
    assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
    assert read_manifest(a).metrics == read_manifest(b).metrics
    assert read_manifest(a).examples == read_manifest(b).examples


def test_canonical_archive_is_stable_and_loads_to_the_same_model(tmp_path: Path) -> None:
    fitted = fit_synthetic(200, 5, model.ModelConfig(kind="hist_gb", max_iter=20))
    estimator, split = fitted.estimator, fitted.split
    raw = [tmp_path / "a.skops", tmp_path / "b.skops"]
    for path in raw:
        sio.dump(estimator, path)
    # skops names archive members after id() of live objects: that is what we normalise.
    assert zipfile.ZipFile(raw[0]).namelist() != ["schema.json"]
    for path in raw:
        canonicalize_skops(path)
    assert raw[0].read_bytes() == raw[1].read_bytes()
    with zipfile.ZipFile(raw[0]) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        schema = json.loads(archive.read("schema.json"))
    assert schema["__class__"] == "Pipeline"
    assert "HistGradientBoostingRegressor" in json.dumps(schema)
    loaded = sio.load(raw[0], trusted=sio.get_untrusted_types(file=raw[0]))
    features = split.holdout[list(data.FEATURE_NAMES)]
    np.testing.assert_array_equal(loaded.predict(features), estimator.predict(features))
