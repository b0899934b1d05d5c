"""GET /openapi.json and GET /: the API as the loaded model's manifest describes it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from flask import Flask
from openapi_spec_validator import validate

from inference.app import create_app
from inference.loader import load_model
from inference.model import LoadedModel
from inference.settings import Settings
from tests.servers import Server, running_server

BIN = Path(sys.executable).parent
CONFIG = Path(__file__).with_name("schemathesis.toml")


def typed_app(run: Path, tmp_path: Path) -> Flask:
    settings = Settings(model_dir=run, model_cache_dir=tmp_path / "cache", max_batch_rows=50)
    return create_app(settings, load_model(settings))


def document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


def test_the_document_is_valid_and_describes_every_route(app: Flask) -> None:
    doc = document(app)
    validate(doc)  # openapi-spec-validator: raises on an invalid document
    routes = {
        (re.sub(r"<(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert documented == routes
    invocations = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert set(invocations) == {"application/json", "text/csv", "application/jsonlines"}
    forms = {
        ref["$ref"].rsplit("/", 1)[1] for ref in invocations["application/json"]["schema"]["anyOf"]
    }
    assert forms == {"Record", "Batch", "DataframeSplit", "DataframeRecords", "Instances", "Inputs"}


def test_numeric_features_carry_their_type_and_accepted_range(
    app: Flask, loaded_model: LoadedModel
) -> None:
    doc = document(app)
    record = doc["components"]["schemas"]["Record"]
    assert record["required"] == ["age", "income_k", "tenure_years"]
    assert record["additionalProperties"] is False
    age = record["properties"]["age"]
    feature = loaded_model.manifest.input_schema[0]
    assert feature.min is not None and feature.max is not None
    span = feature.max - feature.min
    assert age["type"] == "integer"
    # INPUT_RANGE_MARGIN=10 training spans either side, as the validator accepts.
    assert age["minimum"] == pytest.approx(feature.min - 10 * span)
    assert age["maximum"] == pytest.approx(feature.max + 10 * span)
    assert f"training range {feature.min:.6g} to {feature.max:.6g}" in age["description"]
    assert record["properties"]["income_k"]["type"] == "number"
    assert doc["components"]["schemas"]["Label"]["type"] == "number"
    batch = doc["components"]["schemas"]["Batch"]["properties"]["instances"]
    assert batch["maxItems"] == 50


def test_categories_nullability_and_classes_come_from_the_manifest(
    typed_runs: dict[str, Path], tmp_path: Path
) -> None:
    for kind, run in typed_runs.items():  # regression, binary, flag (boolean labels), multiclass
        validate(document(typed_app(run, tmp_path / kind)))
    doc = document(typed_app(typed_runs["multiclass"], tmp_path))
    schemas = doc["components"]["schemas"]
    features = schemas["Record"]["properties"]
    assert features["city"]["enum"] == ["north", "south", "west", None]
    assert features["city"]["type"] == ["string", "null"]
    assert features["rooms"]["type"] == ["integer", "null"]
    assert features["new_build"] == {"type": "boolean", "description": "boolean"}
    assert schemas["Label"]["enum"] == [0, 1, 2]
    assert schemas["Probabilities"]["required"] == ["0", "1", "2"]
    assert "probabilities" in schemas["Predictions"]["required"]


def test_a_model_that_ignores_unknown_categories_takes_any_string(
    typed_runs: dict[str, Path], tmp_path: Path
) -> None:
    doc = document(typed_app(typed_runs["binary"], tmp_path))
    city = doc["components"]["schemas"]["Record"]["properties"]["city"]
    assert "enum" not in city
    assert city["type"] == ["string", "null"]
    assert city["examples"] == ["north", "south", "west"]
    assert doc["components"]["schemas"]["Label"]["enum"] == ["no", "yes"]


def test_index_lists_the_routes_and_a_404_points_to_it(app: Flask) -> None:
    client = app.test_client()
    index = client.get("/").get_json()
    assert index["openapi"] == "/openapi.json"
    assert {"method": "POST", "path": "/predict"} in [
        {"method": r["method"], "path": r["path"]} for r in index["routes"]
    ]
    assert len(index["routes"]) == sum(len(item) for item in document(app)["paths"].values())
    missing = client.get("/docs")
    assert missing.status_code == 404
    assert "GET / lists the routes" in missing.get_json()["error"]["message"]


def document_of(server: Server) -> dict[str, Any]:
    status, _, body = server.request("GET", "/openapi.json")
    assert status == 200
    paths: dict[str, Any] = json.loads(body)["paths"]
    return paths


@pytest.mark.parametrize("kind", ["numeric", "multiclass", "binary"])
def test_schemathesis_finds_no_failure_against_the_live_server(
    kind: str,
    ridge_run: Path,
    typed_runs: dict[str, Path],
    tmp_path: Path,
) -> None:
    """Every check schemathesis has (no 5xx, status codes, content types, headers and bodies as
    documented, schema-invalid input refused, schema-valid input answered), generated from the
    document the server itself serves."""
    run = ridge_run if kind == "numeric" else typed_runs[kind]
    report = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        {
            "MODEL_DIR": str(run),
            "MODEL_CACHE_DIR": str(tmp_path / "cache"),
            "HOST": "127.0.0.1",
            "PORT": "0",
            "WORKERS": "1",
        }
    )
    with running_server([str(BIN / "inference"), "serve"], env, workers=1) as server:
        paths = document_of(server)
        result = subprocess.run(
            [
                str(BIN / "st"),
                "--config-file",
                str(CONFIG),
                "--no-color",
                "run",
                f"http://127.0.0.1:{server.port}/openapi.json",
                "--max-examples",
                "15",
                "--seed",
                "13",
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--phases",
                "examples,coverage,fuzzing",  # stateful: no route creates what another reads
                "--report",
                "junit",
                "--report-junit-path",
                str(report),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    tested = {case.get("name") for case in ElementTree.parse(report).iter("testcase")}
    documented = {f"{method.upper()} {path}" for path, item in paths.items() for method in item}
    # Every documented operation but the document itself, which schemathesis leaves out.
    assert tested == documented - {"GET /openapi.json"}
    assert {"POST /predict", "POST /v2/models/{name}/infer"} <= tested
    assert server.process.returncode == 0
