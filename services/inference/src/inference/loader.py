"""Verify a run directory, then (and only then) deserialize its model.

Order matters: fetch → manifest schema and every file's digest (and ``MODEL_SHA256``), read
once (integrity.py) → library compatibility → the model archive's inflated size → skops load,
from the verified bytes, with our own type allowlist → feature-order check → self-test on the
manifest's examples. Any failure is a StartupRefusal with one clear message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from artifact_contract import TRUSTED_TYPES, Manifest

from inference.errors import (
    ArtifactIntegrityError,
    IncompatibleModelError,
    ModelSelfTestError,
    UntrustedTypeError,
)
from inference.fastpath import proven_columns_predict, proven_fast_predict
from inference.integrity import VerifiedRun, check_inflated_size, read_verified
from inference.model import LoadedModel
from inference.settings import Settings
from inference.source import fetch_model

# Types skops does not trust by default that our models legitimately contain: the contract's
# list (artifact_contract/trust.py), shared with the trainer, never read from an artifact;
# anything else in a model file refuses the start.
ALLOWED_UNTRUSTED_TYPES = frozenset(TRUSTED_TYPES)
# (name in the manifest, distribution, how many leading version parts must match)
COMPATIBLE_LIBRARIES = (
    ("scikit-learn", "scikit-learn", 2),
    ("skops", "skops", 2),
    ("numpy", "numpy", 1),
)
SUPPORTED_FORMAT = "skops"


def load_model(settings: Settings) -> LoadedModel:
    with fetch_model(settings) as fetched:
        verified = verify(fetched.run_dir, settings.model_sha256, settings.max_archive_bytes)
    manifest = verified.manifest
    check_library_versions(manifest.libraries, metadata.version)
    check_inflated_size(manifest.model.path, verified.model_bytes, settings.max_inflated_bytes)
    estimator = deserialize(verified.model_bytes, manifest)
    _check_feature_names(estimator, manifest.feature_names, keep=manifest.schema_version >= 3)
    model = LoadedModel(
        estimator,
        manifest,
        verified.manifest_sha256,
        fetched.source,
        proven_fast_predict(estimator, manifest) or proven_columns_predict(estimator, manifest),
    )
    self_test(model)
    return model


def verify(run_dir: Path, expected_sha256: str | None, max_file_bytes: int) -> VerifiedRun:
    """Read and verify the run directory once; what is deserialized is what was hashed."""
    verified = read_verified(run_dir, expected_sha256, max_file_bytes)
    if verified.manifest.model.format != SUPPORTED_FORMAT:
        raise ArtifactIntegrityError(
            f"model format {verified.manifest.model.format!r} is not supported "
            f"(only {SUPPORTED_FORMAT})",
            code="manifest_error",
        )
    return verified


def _leading(version: str, parts: int) -> tuple[int, ...] | None:
    match = re.match(r"(\d+(?:\.\d+)*)", version)
    if match is None:
        return None
    numbers = tuple(int(n) for n in match.group(1).split("."))
    return numbers[:parts] if len(numbers) >= parts else None


def check_library_versions(
    recorded: Mapping[str, str], installed_version: Callable[[str], str]
) -> None:
    """Refuse a model trained with a library version this environment cannot load safely."""
    for name, distribution, parts in COMPATIBLE_LIBRARIES:
        trained = recorded.get(name)
        if trained is None:
            continue  # the contract requires the ones that matter; numpy is checked if present
        serving = installed_version(distribution)
        wanted = _leading(trained, parts)
        if wanted is None or wanted != _leading(serving, parts):
            scope = "minor version" if parts == 2 else "major version"
            raise IncompatibleModelError(
                f"model was trained with {name} {trained} but this server has {name} {serving} "
                f"(the {scope} must match): serve it with a matching image or retrain"
            )


def deserialize(data: bytes, manifest: Manifest) -> Any:
    """The model from the verified bytes in memory (never from the file again)."""
    import skops.io as sio

    try:
        untrusted = set(sio.get_untrusted_types(data=data))
    except Exception as exc:  # a digest-verified file skops cannot parse: say so, in one line
        raise ArtifactIntegrityError(
            f"{manifest.model.path}: skops cannot read it ({type(exc).__name__}: {exc})"
        ) from None
    refused = sorted(untrusted - ALLOWED_UNTRUSTED_TYPES)
    if refused:
        raise UntrustedTypeError(
            f"{manifest.model.path} contains types outside the allowlist: {', '.join(refused)}"
        )
    try:
        return sio.loads(data, trusted=sorted(untrusted))
    except Exception as exc:  # same boundary as above
        raise ArtifactIntegrityError(
            f"{manifest.model.path}: skops cannot load it ({type(exc).__name__}: {exc})"
        ) from None


def _estimators(estimator: Any) -> Iterator[Any]:
    yield estimator
    for _, step in getattr(estimator, "steps", []):
        if step is not None and step != "passthrough":
            yield from _estimators(step)


def _check_feature_names(estimator: Any, features: list[str], keep: bool) -> None:
    """The model must have been fitted on the manifest's features, in the manifest's order.

    Then, unless ``keep`` (version 3 models predict from a DataFrame), the names are dropped:
    we predict from a float array in that order, and a model fitted on a DataFrame would
    otherwise warn "X does not have valid feature names" on every request.
    """
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None and [str(name) for name in fitted] != features:
        raise ArtifactIntegrityError(
            f"the model was fitted on features {list(map(str, fitted))} but the manifest's "
            f"input_schema lists {features}"
        )
    if keep:
        return
    for part in _estimators(estimator):
        if "feature_names_in_" in vars(part):
            delattr(part, "feature_names_in_")


def self_test(model: LoadedModel) -> None:
    """Predict the manifest's examples (or one in-range row) before accepting any request."""
    examples = model.manifest.examples
    rows = model.example_inputs()
    try:
        predictions = model.predict(rows)
    except Exception as exc:  # a model that cannot predict its own examples must not serve
        raise ModelSelfTestError(
            f"the model fails on its own examples ({type(exc).__name__}: {exc})"
        ) from None
    expected = max(len(examples), 1)  # without examples: one row of training minima
    if len(predictions) != expected:
        raise ModelSelfTestError(f"the model gave {len(predictions)} outputs for {expected} rows")
    for index, (example, got) in enumerate(zip(examples, predictions, strict=False)):
        if not model.matches_example(got, example.prediction):
            raise ModelSelfTestError(
                f"examples[{index}]: the model predicts {got!r}, the manifest records "
                f"{example.prediction!r}"
            )
