"""The model's interface in the manifest: its input features, its output, examples and metrics.

Schema versions 1 and 2 know numeric features only (``{name, type, min, max}``) and a regression
output (``{name}``). Version 3 adds per feature whether ``null`` is accepted, boolean and
categorical features (with the categories seen in training), and classification outputs (with
their class labels). Labels are JSON scalars; ``label_key`` spells one as a JSON object key (the
way ``probabilities`` and the class-share profile name it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from artifact_contract.errors import ManifestError

NUMERIC_TYPES = ("integer", "number")
FEATURE_TYPES = ("integer", "number", "boolean", "categorical")
TASKS = ("regression", "classification")
REGRESSION_METRICS = ("rmse", "mae", "r2", "baseline_rmse")
CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "log_loss",
    "baseline_accuracy",
    "baseline_log_loss",
)
BINARY_METRICS = ("roc_auc",)
# Shares and probabilities are rounded floats: how far their sum may stray from 1.
SUM_TOLERANCE = 1e-6

JSONScalar = str | int | float | bool | None
Label = str | int | bool


@dataclass(frozen=True)
class Feature:
    name: str
    type: str
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    categories: tuple[str, ...] | None = None
    accepts_unknown: bool = False

    def to_dict(self, schema_version: int) -> dict[str, Any]:
        if schema_version < 3:
            return {"name": self.name, "type": self.type, "min": self.min, "max": self.max}
        body: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.type in NUMERIC_TYPES:
            body.update(min=self.min, max=self.max)
        elif self.type == "categorical":
            body.update(
                categories=list(self.categories or ()), accepts_unknown=self.accepts_unknown
            )
        return body

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Feature:
        """Build from a dict that validation has accepted (any schema version)."""
        categories = raw.get("categories")
        return cls(
            name=raw["name"],
            type=raw["type"],
            min=raw.get("min"),
            max=raw.get("max"),
            nullable=raw.get("nullable", False),
            categories=None if categories is None else tuple(categories),
            accepts_unknown=raw.get("accepts_unknown", False),
        )


def label_key(label: Label) -> str:
    """A class label as a JSON object key: JSON's spelling for booleans, str() otherwise."""
    if isinstance(label, bool):
        return "true" if label else "false"
    return str(label)


def fail(where: str, problem: str) -> ManifestError:
    return ManifestError(f"field {where!r} {problem}")


def require_object(value: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(where, f"must be an object, got {type(value).__name__}")
    missing = [key for key in keys if key not in value]
    if missing:
        raise fail(where, f"is missing {', '.join(missing)}")
    return value


def require_str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise fail(where, "must be a non-empty string")
    return value


def is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def require_number(value: Any, where: str) -> float:
    if not is_number(value):
        raise fail(where, "must be a finite number")
    return float(value)


def require_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise fail(where, "must be true or false")
    return value


# --- input_schema ------------------------------------------------------------------------


def validate_input_schema(schema: Any, schema_version: int) -> None:
    if not isinstance(schema, list) or not schema:
        raise fail("input_schema", "must be a non-empty list of features")
    seen: set[str] = set()
    for index, item in enumerate(schema):
        where = f"input_schema[{index}]"
        feature = require_object(item, where, ("name", "type"))
        name = require_str(feature["name"], f"{where}.name")
        if name in seen:
            raise fail(f"{where}.name", f"repeats feature {name!r}")
        seen.add(name)
        if schema_version < 3:
            _validate_feature_v1(feature, where)
        else:
            _validate_feature_v3(feature, where)


def _validate_range(feature: dict[str, Any], where: str) -> None:
    low = require_number(feature["min"], f"{where}.min")
    high = require_number(feature["max"], f"{where}.max")
    if low > high:
        raise fail(where, "has min greater than max")


def _validate_feature_v1(feature: dict[str, Any], where: str) -> None:
    require_object(feature, where, ("name", "type", "min", "max"))
    if extra := sorted(set(feature) - {"name", "type", "min", "max"}):
        raise fail(where, f"has unknown keys {', '.join(extra)}")
    if feature["type"] not in NUMERIC_TYPES:
        raise fail(f"{where}.type", f"must be one of {', '.join(NUMERIC_TYPES)}")
    _validate_range(feature, where)


_FEATURE_KEYS = {
    "number": ("min", "max"),
    "integer": ("min", "max"),
    "boolean": (),
    "categorical": ("categories", "accepts_unknown"),
}


def _validate_feature_v3(feature: dict[str, Any], where: str) -> None:
    kind = feature["type"]
    if kind not in FEATURE_TYPES:
        raise fail(f"{where}.type", f"must be one of {', '.join(FEATURE_TYPES)}")
    keys = ("name", "type", "nullable", *_FEATURE_KEYS[kind])
    require_object(feature, where, keys)
    if extra := sorted(set(feature) - set(keys)):
        raise fail(where, f"has keys that a {kind} feature does not take: {', '.join(extra)}")
    require_bool(feature["nullable"], f"{where}.nullable")
    if kind in NUMERIC_TYPES:
        _validate_range(feature, where)
    elif kind == "categorical":
        categories = feature["categories"]
        if (
            not isinstance(categories, list)
            or not categories
            or not all(isinstance(item, str) for item in categories)
        ):
            raise fail(f"{where}.categories", "must be a non-empty list of strings")
        if categories != sorted(set(categories)):
            raise fail(f"{where}.categories", "must be sorted and unique")
        require_bool(feature["accepts_unknown"], f"{where}.accepts_unknown")


# --- output ------------------------------------------------------------------------------


def validate_output(output: Any, schema_version: int) -> None:
    if schema_version < 3:
        require_object(output, "output", ("name",))
        require_str(output["name"], "output.name")
        return
    require_object(output, "output", ("name", "task"))
    require_str(output["name"], "output.name")
    task = output["task"]
    if task not in TASKS:
        raise fail("output.task", f"must be one of {', '.join(TASKS)}")
    keys = {"name", "task", "classes"} if task == "classification" else {"name", "task"}
    if extra := sorted(set(output) - keys):
        raise fail("output", f"has keys a {task} output does not take: {', '.join(extra)}")
    if task == "regression":
        return
    classes = output.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise fail("output.classes", "must list at least 2 class labels")
    for label in classes:
        if not isinstance(label, str | int) or (isinstance(label, str) and not label):
            raise fail("output.classes", "must hold non-empty strings, integers or booleans")
    if len({label_key(label) for label in classes}) != len(classes):
        raise fail("output.classes", "must not repeat a label")


def output_task(output: dict[str, Any]) -> str:
    task = output.get("task", "regression")
    return str(task)


# --- examples ----------------------------------------------------------------------------


def _check_value(value: Any, feature: dict[str, Any], where: str) -> None:
    if value is None:
        if not feature["nullable"]:
            raise fail(where, "is null, but the feature is not nullable")
        return
    kind = feature["type"]
    if kind == "number":
        require_number(value, where)
    elif kind == "integer":
        if not is_number(value) or not float(value).is_integer():
            raise fail(where, "must be an integer")
    elif kind == "boolean":
        require_bool(value, where)
    elif not isinstance(value, str):
        raise fail(where, "must be a string (a category)")


def _same_label(value: Any, classes: list[Any]) -> bool:
    return any(type(value) is type(label) and value == label for label in classes)


def validate_examples(
    examples: Any, features: list[dict[str, Any]], output: dict[str, Any], schema_version: int
) -> None:
    if not isinstance(examples, list):
        raise fail("examples", "must be a list")
    names = [feature["name"] for feature in features]
    classification = schema_version >= 3 and output["task"] == "classification"
    keys = ("input", "prediction", "probabilities") if classification else ("input", "prediction")
    for index, item in enumerate(examples):
        where = f"examples[{index}]"
        example = require_object(item, where, ("input", "prediction"))
        if extra := sorted(set(example) - set(keys)):
            raise fail(where, f"has unknown keys {', '.join(extra)}")
        record = example["input"]
        if not isinstance(record, dict) or sorted(record) != sorted(names):
            raise fail(f"{where}.input", "must give a value for exactly the input_schema features")
        for feature in features:
            value_where = f"{where}.input.{feature['name']}"
            if schema_version < 3:
                require_number(record[feature["name"]], value_where)
            else:
                _check_value(record[feature["name"]], feature, value_where)
        if not classification:
            require_number(example["prediction"], f"{where}.prediction")
            continue
        classes = output["classes"]
        if not _same_label(example["prediction"], classes):
            raise fail(f"{where}.prediction", "must be one of output.classes")
        if "probabilities" in example:
            _validate_probabilities(example["probabilities"], classes, f"{where}.probabilities")


def _validate_probabilities(raw: Any, classes: list[Any], where: str) -> None:
    expected = sorted(label_key(label) for label in classes)
    if not isinstance(raw, dict) or sorted(raw) != expected:
        raise fail(where, "must give a probability for exactly the output.classes")
    for key, value in raw.items():
        share = require_number(value, f"{where}.{key}")
        if not 0.0 <= share <= 1.0:
            raise fail(f"{where}.{key}", "must be between 0 and 1")
    if abs(sum(raw.values()) - 1.0) > SUM_TOLERANCE:
        raise fail(where, "must sum to 1")


# --- metrics -----------------------------------------------------------------------------


def validate_metrics(metrics: Any, output: dict[str, Any], schema_version: int) -> None:
    if not isinstance(metrics, dict):
        raise fail("metrics", "must be an object of name -> number")
    for name, value in metrics.items():
        require_number(value, f"metrics.{name}")
    if schema_version < 3:
        return
    required: tuple[str, ...] = REGRESSION_METRICS
    if output["task"] == "classification":
        required = CLASSIFICATION_METRICS
        if len(output["classes"]) == 2:
            required += BINARY_METRICS
    if missing := [name for name in required if name not in metrics]:
        raise fail("metrics", f"is missing {', '.join(missing)} (required for {output['task']})")
