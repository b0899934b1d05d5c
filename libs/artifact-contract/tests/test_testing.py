from __future__ import annotations

from pathlib import Path

from artifact_contract import read_manifest, verify_run_dir
from artifact_contract.interface import Feature
from artifact_contract.manifest import Example
from artifact_contract.testing import publish_run


def test_a_published_test_run_verifies_and_holds_the_fields_asked_for(tmp_path: Path) -> None:
    schema = [Feature(name="x", type="number", min=0.0, max=1.0)]
    first = publish_run(
        tmp_path, input_schema=schema, examples=[Example(input={"x": 0.5}, prediction=1.0)]
    )
    second = publish_run(tmp_path, move_latest=False, metrics={"rmse": 2.0})
    assert (first.name, second.name) == ("v001", "v002")
    assert (tmp_path / "latest").resolve() == first.resolve()
    verify_run_dir(first)
    verify_run_dir(second)
    assert read_manifest(first).input_schema == schema
    assert read_manifest(second).metrics == {"rmse": 2.0}
