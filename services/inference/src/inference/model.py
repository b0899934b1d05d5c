"""The narrow model boundary: a verified, loaded model and ``infer(rows)``.

Routes and validation see only this class; scikit-learn and pandas stay behind it. Two input
forms, decided by the manifest: version 1/2 models (numbers only) take a float64 array in schema
order (and a proven-exact numpy predict where there is one, fastpath.py); version 3 models are
pipelines fitted on a DataFrame, and get one built from the validated columns with the dtypes
the trainer fits on (numbers float64 with NaN for null, booleans bool, or object with NaN when
nullable, categoricals object: Python strings, NaN for null), unless the pipeline's numpy
replay (encoding.py) was proven exact at load: then the columns go straight to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from artifact_contract import Feature, Manifest, label_key
from sklearn import config_context

from inference.errors import ArtifactIntegrityError, NonFinitePrediction
from inference.validation import Columns

Rows = npt.NDArray[np.float64]
Inputs = Rows | Columns
CLASSIFICATION = "classification"
# Examples are recomputed by the same code on the same library versions; the tolerance only
# absorbs float formatting in manifest.json.
EXAMPLE_RTOL = 1e-6
EXAMPLE_ATOL = 1e-6


@dataclass(frozen=True)
class Inference:
    predictions: list[Any]  # floats (regression) or class labels
    probabilities: list[dict[str, float]] | None = None  # classification only


class LoadedModel:
    def __init__(
        self,
        estimator: Any,
        manifest: Manifest,
        manifest_sha256: str,
        source: str,
        fast_predict: Callable[[Any], Rows] | None = None,
    ) -> None:
        self._estimator = estimator
        self.manifest = manifest
        self.manifest_sha256 = manifest_sha256
        self.source = source
        self.feature_names: tuple[str, ...] = tuple(manifest.feature_names)
        self.takes_frame = manifest.schema_version >= 3
        # A numpy equivalent of estimator.predict (or predict_proba for classification), proven
        # bit-identical at load (fastpath.py): from the float array of a version 1/2 model, or
        # from the validated columns of a version 3 one.
        self._fast_predict = fast_predict
        self.task = manifest.task
        self.classes: list[Any] = manifest.classes
        self._keys = [label_key(label) for label in self.classes]
        if self.task == CLASSIFICATION:
            self._check_classifier()

    @property
    def model_version(self) -> str:
        return self.manifest.model_version

    @property
    def predict_path(self) -> str:
        if self._fast_predict is not None:
            return "numpy"
        return "dataframe" if self.takes_frame else "estimator"

    def predict(self, inputs: Inputs) -> list[Any]:
        return self.infer(inputs).predictions

    def infer(self, inputs: Inputs) -> Inference:
        """Predict for validated inputs: a 2-D float array whose columns follow
        ``feature_names``, or (version 3) one column of values per feature."""
        # Overflow far from the training data is caught as a non-finite output, not warned.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._infer(inputs)

    def _infer(self, inputs: Inputs) -> Inference:
        if self._fast_predict is not None:
            output = self._fast_predict(inputs)
            if self.task != CLASSIFICATION:
                return Inference(self._finite(output))
            proba = output
        else:
            answer = self._estimator_infer(inputs)
            if isinstance(answer, Inference):
                return answer
            proba = answer
        self._finite(proba.max(axis=1))
        # The most probable class, as scikit-learn's classifiers' own predict() chooses it.
        labels = [self.classes[index] for index in proba.argmax(axis=1).tolist()]
        keys = self._keys
        return Inference(labels, [dict(zip(keys, row, strict=True)) for row in proba.tolist()])

    def _estimator_infer(self, inputs: Inputs) -> Inference | Rows:
        """The estimator's own predict (an Inference) or predict_proba (classification)."""
        if isinstance(inputs, dict):
            data: Any = self.frame(inputs)
            # NaN is a valid (imputed) input here: keep scikit-learn's own finiteness handling.
            context = config_context(skip_parameter_validation=True)
        else:
            data = inputs
            # Inputs were validated as finite numbers already; skip sklearn's re-checks.
            context = config_context(assume_finite=True, skip_parameter_validation=True)
        with context:
            if self.task != CLASSIFICATION:
                return Inference(self._finite(self._estimator.predict(data)))
            return np.asarray(self._estimator.predict_proba(data), dtype=np.float64)

    def frame(self, columns: Columns) -> pd.DataFrame:
        return build_frame(self.manifest.input_schema, columns)

    def _finite(self, output: Any) -> list[Any]:
        array = np.asarray(output, dtype=np.float64).reshape(-1)
        finite = np.isfinite(array)
        if not finite.all():
            raise NonFinitePrediction(np.flatnonzero(~finite).tolist())
        values: list[float] = array.tolist()
        return values

    def _check_classifier(self) -> None:
        """Answers carry probabilities, labelled with the manifest's classes: the model must
        give them, for exactly those classes in that order."""
        if not callable(getattr(self._estimator, "predict_proba", None)):
            raise ArtifactIntegrityError(
                "the manifest's output is a classification, but the model has no predict_proba"
            )
        fitted = getattr(self._estimator, "classes_", [])
        labels = [value.item() if isinstance(value, np.generic) else value for value in fitted]
        if [(type(c), c) for c in labels] != [(type(c), c) for c in self.classes]:
            raise ArtifactIntegrityError(
                f"the model's classes are {labels} but the manifest's output lists {self.classes}"
            )

    # --- the manifest's examples (the loader's self-test) -----------------------------------

    def example_inputs(self) -> Inputs:
        """The manifest's example inputs (or one row of training minima) in this model's form."""
        records = [example.input for example in self.manifest.examples]
        if not records:
            records = [{f.name: _typical(f) for f in self.manifest.input_schema}]
        if self.takes_frame:
            return {name: [record[name] for record in records] for name in self.feature_names}
        return np.array([[r[n] for n in self.feature_names] for r in records], dtype=np.float64)

    def matches_example(self, got: Any, recorded: Any) -> bool:
        if self.task == CLASSIFICATION:
            return bool(type(got) is type(recorded) and got == recorded)
        return math.isclose(got, recorded, rel_tol=EXAMPLE_RTOL, abs_tol=EXAMPLE_ATOL)

    def summary(self) -> dict[str, Any]:
        """What ``GET /model`` shows: identity, schema, quality, provenance."""
        manifest = self.manifest
        return {
            "model_version": manifest.model_version,
            "manifest_sha256": self.manifest_sha256,
            "created_at": manifest.created_at,
            "flavor": manifest.model.flavor,
            "input_schema": [f.to_dict(manifest.schema_version) for f in manifest.input_schema],
            "output": manifest.output,
            "metrics": manifest.metrics,
            "quality_gate": {"passed": manifest.quality_gate.passed},
            "libraries": manifest.libraries,
            "git": None
            if manifest.git is None
            else {"commit": manifest.git.commit, "dirty": manifest.git.dirty},
            "examples": [
                {"input": e.input, "prediction": e.prediction}
                | ({} if e.probabilities is None else {"probabilities": e.probabilities})
                for e in manifest.examples
            ],
        }


def build_frame(schema: Sequence[Feature], columns: Columns) -> pd.DataFrame:
    """The DataFrame a version-3 pipeline was fitted on, from validated columns."""
    data: dict[str, Any] = {}
    for feature in schema:
        values = columns[feature.name]
        if feature.nullable:
            values = [math.nan if value is None else value for value in values]
        if feature.type in ("number", "integer"):
            data[feature.name] = np.array(values, dtype=np.float64)
        elif feature.type == "boolean":
            data[feature.name] = np.array(values, dtype=object if feature.nullable else bool)
        else:  # a Series, or pandas 3 would infer its string dtype from the object array
            data[feature.name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data)


def _typical(feature: Feature) -> Any:
    if feature.type == "boolean":
        return False
    if feature.type == "categorical":
        return (feature.categories or ("",))[0]
    return feature.min
