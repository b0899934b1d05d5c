"""notebooks/walkthrough.ipynb runs top to bottom (docs/01_notebook_local.md), so it never goes
stale: real training, the real inference server as a subprocess, the real drift check."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[3] / "notebooks" / "walkthrough.ipynb"


def _text(cell: nbformat.NotebookNode) -> str:
    parts: list[str] = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


@pytest.mark.slow
def test_the_walkthrough_notebook_runs_top_to_bottom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WALKTHROUGH_DIR", str(tmp_path))  # the kernel inherits it
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "commit the notebook without outputs"
    )
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the failing cell, on any error
    text = "\n".join(_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert '"model_version": "v001"' in text  # trainer train's summary
    assert "schema_version 3" in text
    assert "prediction matches the manifest example" in text
    assert "303 sampled rows" in text  # 3 API calls, then 300 rows of traffic
    assert "exit code 0 (0: no drift)" in text
    images = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert len(images) == 1  # the drift chart
    assert "server stopped with exit code 0" in text
    assert (tmp_path / "drift" / "report.json").is_file()
