"""The bare reference for `make bench`: the least a user would write to serve a run directory
with Flask and gunicorn. Load the model once, build ``pd.DataFrame([body])``, ``predict``.

No validation, no manifest checks, no metrics, no logs: a floor for what serving costs, not a
server to deploy. Run: ``REFERENCE_RUN_DIR=runs/artifacts/latest gunicorn -w 2
'reference_app:create_app()'`` from this directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import skops.io as sio
from flask import Flask, jsonify, request


def create_app() -> Flask:
    run_dir = Path(os.environ["REFERENCE_RUN_DIR"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    path = run_dir / manifest["model"]["path"]
    model: Any = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    app = Flask(__name__)

    @app.post("/predict")
    def predict() -> Any:
        body = request.get_json()
        rows = body["instances"] if "instances" in body else [body]
        return jsonify(predictions=model.predict(pd.DataFrame(rows)).tolist())

    @app.get("/ping")
    def ping() -> Any:
        return jsonify(status="ok")

    return app
