"""The narrow model boundary: a verified, loaded model and ``predict(rows)``.

Routes and validation see only this class; scikit-learn stays behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from artifact_contract import Manifest
from sklearn import config_context

from inference.errors import NonFinitePrediction

Rows = npt.NDArray[np.float64]


class LoadedModel:
    def __init__(
        self,
        estimator: Any,
        manifest: Manifest,
        manifest_sha256: str,
        source: str,
        fast_predict: Callable[[Rows], Rows] | None = None,
    ) -> None:
        self._estimator = estimator
        # A numpy equivalent of estimator.predict, proven bit-identical at load (fastpath.py).
        self._fast_predict = fast_predict
        self.manifest = manifest
        self.manifest_sha256 = manifest_sha256
        self.source = source
        self.feature_names: tuple[str, ...] = tuple(manifest.feature_names)
        self.integer_features = frozenset(
            feature.name for feature in manifest.input_schema if feature.type == "integer"
        )

    @property
    def model_version(self) -> str:
        return self.manifest.model_version

    @property
    def predict_path(self) -> str:
        return "numpy" if self._fast_predict is not None else "estimator"

    def predict(self, rows: Rows) -> list[float]:
        """Predict for a 2-D float array whose columns follow ``feature_names``."""
        if self._fast_predict is not None:
            output = self._fast_predict(rows)
        else:
            # Inputs were validated as finite numbers already; skip sklearn's re-checks.
            with config_context(assume_finite=True, skip_parameter_validation=True):
                output = self._estimator.predict(rows)
        array = np.asarray(output, dtype=np.float64).reshape(-1)
        if not np.isfinite(array).all():
            raise NonFinitePrediction("the model produced a non-finite prediction")
        values: list[float] = array.tolist()
        return values

    def summary(self) -> dict[str, Any]:
        """What ``GET /model`` shows: identity, schema, quality, provenance."""
        manifest = self.manifest
        return {
            "model_version": manifest.model_version,
            "manifest_sha256": self.manifest_sha256,
            "created_at": manifest.created_at,
            "flavor": manifest.model.flavor,
            "input_schema": [
                {"name": f.name, "type": f.type, "min": f.min, "max": f.max}
                for f in manifest.input_schema
            ],
            "output": manifest.output,
            "metrics": manifest.metrics,
            "quality_gate": {"passed": manifest.quality_gate.passed},
            "libraries": manifest.libraries,
            "git": None
            if manifest.git is None
            else {"commit": manifest.git.commit, "dirty": manifest.git.dirty},
            "examples": [{"input": e.input, "prediction": e.prediction} for e in manifest.examples],
        }
