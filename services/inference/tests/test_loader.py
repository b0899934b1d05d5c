"""Verification before deserialization, library compatibility, the type allowlist, self-test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from inference.errors import (
    ArtifactIntegrityError,
    IncompatibleModelError,
    ModelSelfTestError,
    StartupRefusal,
    UntrustedTypeError,
)
from inference.loader import check_library_versions, load_model
from inference.settings import Settings
from tests.conftest import build_run, copy_run, serving_libraries


def load(run_dir: Path, tmp_path: Path, sha256: str | None = None) -> object:
    return load_model(
        Settings(model_dir=run_dir, model_cache_dir=tmp_path / "cache", model_sha256=sha256)
    )


@pytest.mark.parametrize("kind", ["ridge", "hgb"])
def test_both_model_kinds_load_and_predict_like_the_fitted_model(
    kind: str, ridge_run: Path, hgb_run: Path, tmp_path: Path
) -> None:
    run_dir = ridge_run if kind == "ridge" else hgb_run
    model = load_model(Settings(model_dir=run_dir, model_cache_dir=tmp_path))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert model.model_version == manifest["model_version"]
    for example in manifest["examples"]:
        row = np.array([[example["input"][n] for n in model.feature_names]])
        assert model.predict(row) == pytest.approx([example["prediction"]], rel=1e-12)


def test_a_latest_symlink_is_resolved_to_its_run(artifact_root: Path, tmp_path: Path) -> None:
    model = load_model(Settings(model_dir=artifact_root / "latest", model_cache_dir=tmp_path))
    assert model.model_version == "v002"
    assert model.source == str(artifact_root / "latest")


def test_tampered_model_file_is_refused(ridge_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(ridge_run, tmp_path / "run")
    with (run_dir / "model.skops").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(
        ArtifactIntegrityError, match=r"model\.skops has sha256 .* the manifest says"
    ):
        load(run_dir, tmp_path)


def test_an_extra_file_is_refused(ridge_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(ridge_run, tmp_path / "run")
    (run_dir / "evil.py").write_text("print('hi')\n")
    with pytest.raises(ArtifactIntegrityError, match=r"not listed in the manifest: evil\.py"):
        load(run_dir, tmp_path)


def test_wrong_model_sha256_is_refused_and_the_right_one_accepted(
    ridge_run: Path, tmp_path: Path
) -> None:
    with pytest.raises(ArtifactIntegrityError, match=r"expected 0{64} \(MODEL_SHA256\)") as info:
        load(ridge_run, tmp_path, sha256="0" * 64)
    assert info.value.code == "integrity_error"
    model = load_model(Settings(model_dir=ridge_run, model_cache_dir=tmp_path))
    assert load(ridge_run, tmp_path, sha256=model.manifest_sha256.upper()) is not None


def test_a_broken_manifest_is_refused(ridge_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(ridge_run, tmp_path / "run")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    del manifest["input_schema"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactIntegrityError, match="missing input_schema") as info:
        load(run_dir, tmp_path)
    assert info.value.code == "manifest_error"


def test_a_missing_directory_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(StartupRefusal, match=r"does not exist .*make train"):
        load(tmp_path / "nothing", tmp_path)


@pytest.mark.parametrize(
    ("library", "trained", "message"),
    [
        (
            "scikit-learn",
            "1.5.2",
            "trained with scikit-learn 1.5.2 but this server has scikit-learn",
        ),
        ("skops", "0.9.0", "trained with skops 0.9.0 but this server has skops"),
    ],
)
def test_an_incompatible_library_version_is_refused_naming_both(
    library: str, trained: str, message: str, tmp_path: Path
) -> None:
    run_dir = build_run(tmp_path / "root", libraries={**serving_libraries(), library: trained})
    with pytest.raises(IncompatibleModelError, match=message) as info:
        load(run_dir, tmp_path)
    serving = serving_libraries()[library]
    assert serving in info.value.message
    assert info.value.code == "incompatible_library"


def test_library_check_accepts_a_different_patch_release() -> None:
    installed = {"scikit-learn": "1.9.1", "skops": "0.16.0", "numpy": "2.4.6"}
    check_library_versions(
        {"scikit-learn": "1.9.0", "skops": "0.16.2", "numpy": "2.3.0"}, installed.__getitem__
    )
    with pytest.raises(IncompatibleModelError, match=r"numpy 1\.26\.4"):
        check_library_versions({"numpy": "1.26.4"}, installed.__getitem__)


def test_a_type_outside_the_allowlist_is_refused_before_loading(tmp_path: Path) -> None:
    estimator = Pipeline([("log", FunctionTransformer(np.sinc)), ("model", Ridge())])
    run_dir = build_run(tmp_path / "root", estimator)
    with pytest.raises(UntrustedTypeError, match=r"outside the allowlist: numpy\.sinc"):
        load(run_dir, tmp_path)


def test_examples_that_the_model_does_not_reproduce_are_refused(tmp_path: Path) -> None:
    run_dir = build_run(tmp_path / "root", example_offset=0.5)
    with pytest.raises(ModelSelfTestError, match=r"examples\[0\]: the model predicts"):
        load(run_dir, tmp_path)


def test_a_manifest_whose_feature_order_differs_from_the_model_is_refused(
    tmp_path: Path,
) -> None:
    run_dir = build_run(tmp_path / "root", schema_order=["income_k", "age", "tenure_years"])
    with pytest.raises(ArtifactIntegrityError, match="fitted on features"):
        load(run_dir, tmp_path)
