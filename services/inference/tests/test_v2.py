"""The Open Inference Protocol (v2) routes, driven by tritonclient[http]'s InferenceServerClient
against a real gunicorn process; predictions equal /predict's."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from flask.testing import FlaskClient
from tritonclient.utils import InferenceServerException

from tests.conftest import FEATURES
from tests.servers import Server, running_server
from tests.tabular import records_of
from tests.test_typed import frame_of

INFERENCE = Path(sys.executable).parent / "inference"
NAME = "house-prices"
TYPES = {"number": "FP64", "integer": "INT64", "boolean": "BOOL", "categorical": "BYTES"}


@pytest.fixture(scope="module")
def servers(
    ridge_run: Path, typed_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"HOST": "127.0.0.1", "PORT": "0", "WORKERS": "1", "MODEL_NAME": NAME})
    runs = {"numeric": ridge_run, "multiclass": typed_runs["multiclass"]}
    started: dict[str, Server] = {}
    contexts = []
    try:
        for kind, run in runs.items():
            cache = str(tmp_path_factory.mktemp("cache"))
            context = running_server(
                [str(INFERENCE), "serve"],
                {**env, "MODEL_DIR": str(run), "MODEL_CACHE_DIR": cache},
                workers=1,
            )
            started[kind] = context.__enter__()
            contexts.append(context)
        yield started
    finally:
        for context in reversed(contexts):
            context.__exit__(None, None, None)
    assert all(server.process.returncode == 0 for server in started.values())


def client_of(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(f"127.0.0.1:{server.port}")


def predict(server: Server, records: list[dict[str, Any]]) -> dict[str, Any]:
    status, _, body = server.request("POST", "/predict", {"instances": records})
    assert status == 200
    answer: dict[str, Any] = json.loads(body)
    return answer


def tensors(
    records: list[dict[str, Any]], schema: list[dict[str, Any]], binary: bool
) -> list[triton.InferInput]:
    inputs = []
    for feature in schema:
        datatype = TYPES[feature["type"]]
        values = [record[feature["name"]] for record in records]
        if feature["nullable"] and feature["type"] in ("number", "integer"):
            datatype, values = "FP64", [np.nan if v is None else v for v in values]
        array = np.array(values, dtype=object if datatype == "BYTES" else None)
        tensor = triton.InferInput(feature["name"], [len(records)], datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return inputs


def test_health_and_metadata_through_tritonclient(servers: dict[str, Server]) -> None:
    client = client_of(servers["multiclass"])
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(NAME)
    assert client.is_model_ready(NAME, "v001")
    assert not client.is_model_ready("mlpipeline-regressor")
    assert not client.is_model_ready(NAME, "v002")
    metadata = client.get_model_metadata(NAME)
    assert metadata["name"] == NAME and metadata["versions"] == ["v001"]
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        ("sqft", "FP64"),
        ("rooms", "INT64"),
        ("city", "BYTES"),
        ("garden", "BOOL"),
        ("new_build", "BOOL"),
    ]
    assert metadata["outputs"] == [
        {"name": "prediction", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 3]},
    ]
    assert metadata["parameters"]["classes"] == ["0", "1", "2"]


def input_schema(server: Server) -> list[dict[str, Any]]:
    status, _, body = server.request("GET", "/model")
    assert status == 200
    schema: list[dict[str, Any]] = json.loads(body)["input_schema"]
    return schema


@pytest.mark.parametrize("binary", [False, True], ids=["json data", "binary data"])
def test_infer_per_feature_tensors_equals_predict(
    servers: dict[str, Server], typed_runs: dict[str, Path], binary: bool
) -> None:
    server = servers["multiclass"]
    records = records_of(frame_of(typed_runs["multiclass"]).head(12))
    # JSON tensor data has no null, nor the client's BYTES and BOOL tensors: complete rows.
    complete = [r for r in records if None not in r.values()]
    assert len(complete) >= 5
    result = client_of(server).infer(NAME, tensors(complete, input_schema(server), binary))
    want = predict(server, complete)
    assert result.as_numpy("prediction").tolist() == want["predictions"]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (len(complete), 3)
    assert probabilities.tolist() == [
        [row[k] for k in ("0", "1", "2")] for row in want["probabilities"]
    ]
    assert result.get_response()["model_version"] == "v001"


def test_nan_in_binary_fp64_data_is_null_for_a_nullable_number(
    servers: dict[str, Server], typed_runs: dict[str, Path]
) -> None:
    server = servers["multiclass"]
    records = [r for r in records_of(frame_of(typed_runs["multiclass"]).head(40)) if r["city"]]
    records = [r for r in records if r["garden"] is not None][:6]
    records[0]["rooms"] = None
    result = client_of(server).infer(NAME, tensors(records, input_schema(server), binary=True))
    assert result.as_numpy("prediction").tolist() == predict(server, records)["predictions"]


def test_infer_a_2d_fp64_tensor_equals_predict(servers: dict[str, Server]) -> None:
    server = servers["numeric"]
    rows = np.array([[20.0 + i, 30.5 + 3 * i, float(i % 7)] for i in range(6)])
    tensor = triton.InferInput("input", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows, binary_data=True)
    output = triton.InferRequestedOutput("prediction", binary_data=False)
    result = client_of(server).infer(NAME, [tensor], outputs=[output], request_id="r-1")
    want = predict(server, [dict(zip(FEATURES, row, strict=True)) for row in rows.tolist()])
    assert result.as_numpy("prediction").tolist() == want["predictions"]
    assert result.get_response()["id"] == "r-1"


def test_errors_reach_tritonclient_with_the_protocol_shape(servers: dict[str, Server]) -> None:
    server = servers["numeric"]
    client = client_of(server)
    rows = np.array([[20.0, 1e12, 1.0]])
    tensor = triton.InferInput("input", [1, 3], "FP64")
    tensor.set_data_from_numpy(rows, binary_data=False)
    with pytest.raises(InferenceServerException) as refused:
        client.infer(NAME, [tensor])
    assert refused.value.status() == "422"
    assert "'row 0.income_k' must be between" in refused.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("other", [tensor])
    assert unknown.value.status() == "404"
    status, _, body = server.request("POST", f"/v2/models/{NAME}/infer", {"inputs": "x"})
    assert status == 422
    assert set(json.loads(body)) == {"error"}


V2_BAD: list[tuple[str, Any, int, str]] = [
    ("not an object", [1], 422, "inference request object"),
    ("no inputs", {"inputs": []}, 422, "'inputs'"),
    ("unknown key", {"inputs": [{}], "extra": 1}, 422, "'extra'"),
    (
        "tensor without shape",
        {"inputs": [{"name": "age", "datatype": "FP64", "data": [1]}]},
        422,
        "name, shape and datatype",
    ),
    (
        "wrong datatype",
        {
            "inputs": [
                {"name": "age", "shape": [1], "datatype": "BYTES", "data": ["1"]},
                {"name": "income_k", "shape": [1], "datatype": "FP64", "data": [1.0]},
                {"name": "tenure_years", "shape": [1], "datatype": "INT64", "data": [1]},
            ]
        },
        422,
        "send it as INT64, not BYTES",
    ),
    (
        "shape mismatch",
        {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}]},
        422,
        "its shape says 6",
    ),
    (
        "unknown output",
        {
            "inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [[40, 50.0, 1]]}],
            "outputs": [{"name": "probabilities"}],
        },
        422,
        "unknown output 'probabilities'",
    ),
    (
        "rows differ",
        {
            "inputs": [
                {"name": "age", "shape": [2], "datatype": "INT64", "data": [40, 41]},
                {"name": "income_k", "shape": [1], "datatype": "FP64", "data": [1.0]},
                {"name": "tenure_years", "shape": [1], "datatype": "INT64", "data": [1]},
            ]
        },
        422,
        "differ in their number of rows",
    ),
    (
        "null where not nullable",
        {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [40, None, 1]}]},
        422,
        "'row 0.income_k' must be a number, got null",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "part"), [case[1:] for case in V2_BAD], ids=[case[0] for case in V2_BAD]
)
def test_bad_infer_requests_get_a_4xx_protocol_error(
    client: FlaskClient, body: Any, status: int, part: str
) -> None:
    response = client.post("/v2/models/mlpipeline-regressor/infer", json=body)
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()
    assert set(error) == {"error"}
    assert part in error["error"]


def test_a_2d_tensor_is_refused_for_a_categorical_model(
    typed_runs: dict[str, Path], tmp_path: Path
) -> None:
    from tests.test_typed import client_for

    client = client_for(typed_runs["multiclass"], tmp_path)
    data = [[1200.0, 3.0, 0.0, 1.0, 0.0]]
    body = {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": data}]}
    response = client.post("/v2/models/mlpipeline-regressor/infer", json=body)
    assert response.status_code == 422
    assert "only for models whose features are all numbers" in response.get_json()["error"]
