"""Training data: the seeded synthetic set, or a CSV/Parquet file from a path, file:// or s3://.

This module reads bytes and parses them into a frame (every column, as the file has them);
``schema.py`` then decides which columns are features, what type each is, and refuses data that
cannot be trained on. Every problem is a DataError with one line a user can act on.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from artifact_contract import sha256_bytes
from artifact_contract.errors import first_line
from artifact_contract.uris import S3Location, UnsupportedURI, parse_location

from trainer.errors import DataError

# The synthetic set's columns (name, manifest type), in the order the model is fitted on.
FEATURES: Final = (("age", "integer"), ("income_k", "number"), ("tenure_years", "integer"))
FEATURE_NAMES: Final = tuple(name for name, _ in FEATURES)
TARGET: Final = "target"
# Fewest rows (with a target) a model is trained on.
MIN_ROWS: Final = 20
_FORMATS: Final = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class Dataset:
    frame: pd.DataFrame  # every column of the source, as parsed
    source: str
    sha256: str
    rows: int


def synthetic(samples: int, seed: int) -> Dataset:
    """The seed's synthetic regression set (see docs/02_training.md for the formula)."""
    if samples < MIN_ROWS:
        raise DataError(f"--samples must be at least {MIN_ROWS}, got {samples}")
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 70, size=samples)  # 18..69
    income_k = np.clip(rng.normal(70.0, 15.0, size=samples), 30.0, 120.0)
    tenure_years = rng.integers(0, 10, size=samples)  # 0..9
    noise = rng.normal(0.0, 3000.0, size=samples)
    target = 10_000 + 120 * age + 500 * income_k + 800 * tenure_years + noise
    frame = pd.DataFrame(
        {"age": age, "income_k": income_k, "tenure_years": tenure_years, TARGET: target}
    )
    # The digest of a canonical CSV rendering identifies the synthetic data like a file would.
    digest = sha256_bytes(frame.to_csv(index=False, float_format="%.17g").encode())
    return Dataset(
        frame=frame,
        source=f"synthetic:seed={seed},samples={samples}",
        sha256=digest,
        rows=samples,
    )


def load(uri: str) -> Dataset:
    """Read and parse the CSV or Parquet file at ``uri``."""
    suffix = Path(urlparse(uri).path).suffix.lower()
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        raise DataError(
            f"{uri}: unsupported data format {suffix or '(none)'!r}; use .csv or .parquet"
        )
    raw = read_bytes(uri)
    if not raw:
        raise DataError(f"{uri}: the file is empty")
    frame = _parse(raw, fmt, uri)
    return Dataset(frame=frame, source=uri, sha256=sha256_bytes(raw), rows=len(frame))


def write_synthetic_csv(path: Path, samples: int, seed: int) -> Dataset:
    """``trainer sample-data``: the synthetic set as a CSV a user can train on (or edit)."""
    dataset = synthetic(samples, seed)
    try:
        with path.open("w", newline="") as handle:
            dataset.frame.to_csv(handle, index=False, float_format="%.17g")
    except OSError as exc:
        raise DataError(f"{path}: cannot write ({exc.strerror})") from None
    return dataset


def read_bytes(uri: str) -> bytes:
    try:
        path = parse_location(uri)
    except UnsupportedURI as exc:
        raise DataError(f"{exc}; use a path, file:// or s3://") from None
    if isinstance(path, S3Location):
        return _read_s3(path.bucket, path.key, uri)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{uri}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{uri}: is a directory, expected a CSV or Parquet file") from None
    except OSError as exc:
        raise DataError(f"{uri}: cannot read ({exc.strerror})") from None


def _read_s3(bucket: str, key: str, uri: str) -> bytes:
    # boto3 honours AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 and the usual credential chain itself.
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    if not bucket or not key:
        raise DataError(f"{uri}: an s3 URI needs a bucket and a key (s3://bucket/key.csv)")
    try:
        response = boto3.client("s3").get_object(Bucket=bucket, Key=key)
        body: bytes = response["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise DataError(f"{uri}: cannot read from S3 ({code})") from None
    except BotoCoreError as exc:
        raise DataError(f"{uri}: cannot read from S3 ({exc})") from None
    return body


def _parse(raw: bytes, fmt: str, uri: str) -> pd.DataFrame:
    try:
        if fmt == "csv":
            return pd.read_csv(io.BytesIO(raw))
        return pd.read_parquet(io.BytesIO(raw))
    except pd.errors.EmptyDataError:
        raise DataError(f"{uri}: the file holds no data") from None
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{uri}: cannot parse as {fmt} ({first_line(exc)})") from None
