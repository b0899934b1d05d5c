"""Save the estimator as an MLflow model in skops format, with byte-for-byte reproducible output.

skops names the arrays inside its zip archive after ``id()`` of the Python objects and stamps each
entry with the wall-clock time, so two identical fits give different bytes. We rewrite the archive
with ids renumbered in order of first appearance and a fixed timestamp; the content is unchanged,
and the rewritten file is loaded back (by the caller) before anything is published.

The model may hold only the types the contract's trust list names (artifact_contract.trust): the
same list the inference loader allows. A disk that fills up while saving is reported as such
(MLflow's own message would suggest switching to cloudpickle).
"""

from __future__ import annotations

import errno
import io
import json
import zipfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

from artifact_contract import TRUSTED_TYPES
from artifact_contract.errors import first_line

from trainer.errors import TrainerError

MODEL_FILE = "model.skops"
SCHEMA_ENTRY = "schema.json"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_PINNED = ("mlflow", "scikit-learn", "numpy", "scipy", "pandas", "skops")


def pip_requirements() -> list[str]:
    """Explicit pins (MLflow would otherwise spend seconds inferring them)."""
    return [f"{name}=={version(name)}" for name in _PINNED]


def untrusted_types(estimator: Any) -> list[str]:
    """The types skops would not load by default; refuses any the trust list does not name."""
    import skops.io as sio

    needed = sorted(sio.get_untrusted_types(data=sio.dumps(estimator)))
    refused = [name for name in needed if name not in TRUSTED_TYPES]
    if refused:
        raise TrainerError(
            f"the fitted model holds types outside the trust list: {', '.join(refused)}"
        )
    return needed


def disk_full(exc: BaseException) -> OSError | None:
    """The out-of-space OSError behind ``exc`` (itself, or anywhere in its cause chain)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _DISK_FULL:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def save(estimator: Any, path: Path, signature: Any = None, input_example: Any = None) -> None:
    """Write an MLflow model directory into the (empty) directory ``path``."""
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    trusted = untrusted_types(estimator)
    try:
        mlflow.sklearn.save_model(
            estimator,
            str(path),
            serialization_format="skops",
            pip_requirements=pip_requirements(),
            skops_trusted_types=trusted or None,
            signature=signature,
            input_example=input_example,
        )
    except MlflowException as exc:
        if (full := disk_full(exc)) is not None:
            raise full from None
        raise TrainerError(f"cannot save the model: {first_line(exc)}") from None
    model_file = path / MODEL_FILE
    before = model_file.stat().st_size
    canonicalize_skops(model_file)
    # Keep MLmodel's recorded size honest after the rewrite.
    mlmodel = Model.load(str(path / "MLmodel"))
    if mlmodel.model_size_bytes is not None:
        mlmodel.model_size_bytes += model_file.stat().st_size - before
    mlmodel.save(str(path / "MLmodel"))


def canonicalize_skops(path: Path) -> None:
    """Rewrite a skops archive so that equal models give equal bytes."""
    renames: dict[str, str] = {}

    def canonical(old: str) -> str:
        return renames.setdefault(old, str(len(renames) + 1))

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    out[key] = int(canonical(str(value)))
                elif key == "file" and isinstance(value, str):
                    stem, _, suffix = value.rpartition(".")
                    out[key] = f"{canonical(stem)}.{suffix}"
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    with zipfile.ZipFile(path) as source:
        schema = walk(json.loads(source.read(SCHEMA_ENTRY)))
        members: dict[str, bytes] = {}
        for info in source.infolist():
            if info.filename == SCHEMA_ENTRY:
                continue
            stem, _, suffix = info.filename.rpartition(".")
            if stem not in renames:
                raise ValueError(f"{path}: archive entry {info.filename} is not referenced")
            members[f"{renames[stem]}.{suffix}"] = source.read(info)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as target:
        _add(target, SCHEMA_ENTRY, json.dumps(schema, indent=2).encode())
        for name in sorted(members, key=lambda entry: int(entry.partition(".")[0])):
            _add(target, name, members[name])
    path.write_bytes(buffer.getvalue())


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.create_system = 3  # unix, whatever machine wrote it
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)
