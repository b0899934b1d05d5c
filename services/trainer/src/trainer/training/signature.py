"""The MLflow model signature, built from our schema rather than inferred from a few rows.

Inferring from an input example would call a nullable column "required" whenever the example
rows happen to have no missing value there. Here a column is optional exactly when the manifest
says the feature is nullable, so ``mlflow.pyfunc`` accepts the same nulls our server does.
"""

from __future__ import annotations

from typing import Any

from trainer.training.schema import TableSchema

_COLUMN_TYPES = {
    "number": "double",
    "integer": "long",
    "boolean": "boolean",
    "categorical": "string",
}


def model_signature(schema: TableSchema) -> Any:
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema(
        [
            ColSpec(_COLUMN_TYPES[column.type], column.name, required=not column.nullable)
            for column in schema.features
        ]
    )
    if schema.task == "regression":
        output = "double"
    else:
        label = schema.classes[0]
        output = (
            "boolean" if isinstance(label, bool) else "long" if isinstance(label, int) else "string"
        )
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(output)]))
