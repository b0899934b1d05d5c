"""``trainer drift``: compare a sampled prediction log with the model's training profile.

For the chosen model version (``--version``, else whatever ``latest`` points at, unless every row of
the log is from one other run of the root: then that one, and it says so) the rows it
served are binned like the manifest's profile: numbers on its quantile edges, categorical and
boolean features (and a classifier's predicted classes) by category, with one more bin for values
training never saw ("unseen"). Each feature gets a PSI against the training shares, and the
predictions one against the holdout predictions' shares; missing (null) values are counted, not
binned, as in the profile. Writes a JSON
report and a PNG chart (both atomically), optionally a Prometheus textfile, prints a table, and
exits 4 when any score reaches its threshold in the policy file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from artifact_contract import (
    ArtifactRoot,
    CategoryShares,
    Histogram,
    Manifest,
    is_version,
    label_key,
    manifest_sha256,
    read_manifest,
)
from artifact_contract.files import atomic_write

from trainer.errors import EXIT_DRIFT, TrainerError
from trainer.monitoring import prediction_log
from trainer.monitoring.chart import render_chart
from trainer.policy import POLICY_FILE, read_table
from trainer.settings import Settings
from trainer.training.profile import bin_shares

# Shares are floored before the log ratio so an empty bin gives a large, finite PSI.
SHARE_FLOOR = 1e-4
PREDICTION = "prediction"


class DriftError(TrainerError):
    """The drift check cannot run: no such model, no profile, too few rows."""


@dataclass(frozen=True)
class DriftPolicy:
    feature_psi: float
    prediction_psi: float
    min_rows: int

    @classmethod
    def load(cls, path: Path) -> DriftPolicy:
        keys = {"feature_psi": float, "prediction_psi": float, "min_rows": int}
        table = read_table(path, "drift", keys)
        return cls(float(table["feature_psi"]), float(table["prediction_psi"]), table["min_rows"])


@dataclass(frozen=True)
class Score:
    name: str  # a feature name, or PREDICTION
    psi: float
    threshold: float
    reference: list[float]  # share per bin
    observed: list[float]
    edges: list[float] | None = None  # numeric bins: (-inf, e1], ..., (e_{k-1}, +inf)
    categories: list[str] | None = None  # categorical bins: one per category, then unseen
    missing: int = 0  # null values: counted, not binned

    @property
    def drifted(self) -> bool:
        return self.psi >= self.threshold


def psi(reference: list[float], observed: list[float]) -> float:
    expected = np.maximum(np.asarray(reference, dtype="float64"), SHARE_FLOOR)
    actual = np.maximum(np.asarray(observed, dtype="float64"), SHARE_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def score(
    name: str, shares: Histogram | CategoryShares, values: list[Any], threshold: float
) -> Score:
    present = [value for value in values if value is not None]
    missing = len(values) - len(present)
    if isinstance(shares, CategoryShares):
        reference = [*shares.proportions, shares.unseen]
        observed = category_shares(shares.categories, present)
        return Score(
            name,
            psi(reference, observed),
            threshold,
            reference,
            observed,
            categories=shares.categories,
            missing=missing,
        )
    if not all(isinstance(value, int | float) and not isinstance(value, bool) for value in present):
        raise DriftError(
            f"{name}: the log holds non-numeric values where the profile has numbers "
            "(is the log from another model?)"
        )
    numbers = np.asarray(present, dtype="float64")
    observed = [float(share) for share in bin_shares(numbers, shares.edges)]
    return Score(
        name,
        psi(shares.proportions, observed),
        threshold,
        shares.proportions,
        observed,
        edges=shares.edges,
        missing=missing,
    )


def category_shares(categories: list[str], values: list[Any]) -> list[float]:
    """Shares of each category, then of values outside them (unseen), among ``values``;
    booleans and labels are spelt as the profile spells them (``label_key``)."""
    index = {category: position for position, category in enumerate(categories)}
    counts = [0] * (len(categories) + 1)
    for value in values:
        counts[index.get(label_key(value), len(categories))] += 1
    total = max(len(values), 1)
    return [count / total for count in counts]


def assess(
    manifest: Manifest, observed: prediction_log.Observed, policy: DriftPolicy
) -> list[Score]:
    """Scores for every feature, then for the predictions (last)."""
    profile = manifest.profile
    if profile is None:
        raise DriftError(
            f"{manifest.model_version}: the manifest has no training profile (schema_version "
            f"{manifest.schema_version}); retrain with this trainer to get one"
        )
    if observed.rows < policy.min_rows:
        raise DriftError(
            f"only {observed.rows} sampled row(s) for {manifest.model_version}; the policy needs "
            f"at least {policy.min_rows} to judge drift (raise PREDICTION_SAMPLE_RATE or wait)"
        )
    scores = [
        score(name, profile.features[name], observed.features[name], policy.feature_psi)
        for name in manifest.feature_names
    ]
    scores.append(
        score(PREDICTION, profile.prediction, observed.predictions, policy.prediction_psi)
    )
    return scores


def build_report(
    manifest: Manifest,
    observed: prediction_log.Observed,
    scores: list[Score],
    log: Path,
    manifest_digest: str,
) -> dict[str, Any]:
    return {
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "model_version": manifest.model_version,
        "manifest_sha256": manifest_digest,  # of the file as written: the artifact's identity
        "log": str(log),
        "rows": {
            "lines": observed.lines,
            "prediction_records": observed.records,
            "used": observed.rows,
            "other_versions": {v: n for v, n in observed.versions.items() if v != observed.version},
            "malformed": observed.invalid,
            "first_problem": observed.first_problem,
        },
        "drifted": [item.name for item in scores if item.drifted],
        "scores": {
            item.name: {
                "psi": round(item.psi, 6),
                "threshold": item.threshold,
                "drifted": item.drifted,
                **({"edges": item.edges} if item.edges is not None else {}),
                **({"categories": item.categories} if item.categories is not None else {}),
                "reference": item.reference,
                "observed": [round(share, 6) for share in item.observed],
                "missing": item.missing,
            }
            for item in scores
        },
    }


def prometheus_text(manifest: Manifest, scores: list[Score], now: float) -> str:
    """The node-exporter textfile that infra/monitoring/rules/alerts.yml alerts on."""
    version = manifest.model_version
    features = [item for item in scores if item.name != PREDICTION]
    prediction = next(item for item in scores if item.name == PREDICTION)
    lines = [
        "# HELP mlpipeline_drift_psi PSI of a feature, served vs training rows.",
        "# TYPE mlpipeline_drift_psi gauge",
        *(
            f'mlpipeline_drift_psi{{model_version="{version}",feature="{item.name}"}} '
            f"{item.psi:.6g}"
            for item in features
        ),
        "# HELP mlpipeline_drift_psi_threshold Policy threshold for feature PSI.",
        "# TYPE mlpipeline_drift_psi_threshold gauge",
        f'mlpipeline_drift_psi_threshold{{model_version="{version}"}} {features[0].threshold:g}',
        "# HELP mlpipeline_drift_prediction_psi PSI of served vs holdout predictions.",
        "# TYPE mlpipeline_drift_prediction_psi gauge",
        f'mlpipeline_drift_prediction_psi{{model_version="{version}"}} {prediction.psi:.6g}',
        "# HELP mlpipeline_drift_prediction_psi_threshold Policy threshold for prediction PSI.",
        "# TYPE mlpipeline_drift_prediction_psi_threshold gauge",
        f'mlpipeline_drift_prediction_psi_threshold{{model_version="{version}"}} '
        f"{prediction.threshold:g}",
        "# HELP mlpipeline_drift_last_run_timestamp_seconds When the drift check last ran.",
        "# TYPE mlpipeline_drift_last_run_timestamp_seconds gauge",
        f'mlpipeline_drift_last_run_timestamp_seconds{{model_version="{version}"}} {now:.3f}',
    ]
    return "\n".join(lines) + "\n"


def table(scores: list[Score], rows: int, version: str) -> str:
    # A user's column names can be long ("od280/od315_of_diluted_wines"): the column fits them.
    width = max(16, *(len(item.name) + 1 for item in scores))
    out = [
        f"drift for {version} on {rows} sampled rows",
        f"{'':<{width}}{'psi':>9}{'limit':>8}  verdict",
    ]
    for item in scores:
        verdict = "DRIFT" if item.drifted else "ok"
        out.append(f"{item.name:<{width}}{item.psi:>9.4f}{item.threshold:>8.3g}  {verdict}")
    return "\n".join(out)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "drift",
        help="compare a sampled prediction log with the model's training profile",
        description="Per-feature PSI and prediction PSI of the served rows of one model version "
        "against its training profile. Writes <out>/report.json and <out>/chart.png. Exit codes: "
        "0 no drift, 1 error, 2 bad command line, 4 drift at or past the policy's thresholds.",
    )
    parser.add_argument("--log", type=Path, required=True, help="prediction log (JSONL)")
    parser.add_argument(
        "--version",
        help="model version, vNNN (default: the one `latest` names, or the log's only version "
        "when every row is from one other run of this root)",
    )
    parser.add_argument(
        "--artifact-root", type=Path, help="artifact root (default runs/artifacts at the repo root)"
    )
    parser.add_argument(
        "--policy", type=Path, help=f"policy file with a [drift] table (default {POLICY_FILE})"
    )
    parser.add_argument("--out", type=Path, help="report directory (default runs/drift/<version>)")
    parser.add_argument(
        "--prom-file",
        type=Path,
        help="also write the scores for the node-exporter textfile collector",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    policy = DriftPolicy.load(args.policy or POLICY_FILE)
    root = ArtifactRoot(args.artifact_root or settings.artifact_root)
    run_dir = _run_dir(root, args.version)
    manifest = read_manifest(run_dir)
    try:
        observed = prediction_log.read(args.log, manifest.model_version, manifest.feature_names)
    except prediction_log.OtherVersionsOnly as exc:
        # No --version and the log names one model we have: that is the one it sampled.
        served = next(iter(exc.versions)) if len(exc.versions) == 1 else None
        if args.version is not None or served is None or not root.run_dir(served).is_dir():
            raise
        sys.stdout.write(
            f"{args.log}: every prediction record is from {served} "
            f"(latest is {manifest.model_version}): checking {served}\n"
        )
        run_dir = root.run_dir(served)
        manifest = read_manifest(run_dir)
        observed = prediction_log.read(args.log, served, manifest.feature_names)
    scores = assess(manifest, observed, policy)

    out = args.out or settings.repo_root / "runs" / "drift" / manifest.model_version
    report = build_report(manifest, observed, scores, args.log, manifest_sha256(run_dir))
    atomic_write(out / "chart.png", render_chart(manifest.model_version, scores))
    atomic_write(out / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    if args.prom_file:
        atomic_write(args.prom_file, prometheus_text(manifest, scores, time.time()).encode())

    sys.stdout.write(table(scores, observed.rows, manifest.model_version) + "\n")
    if observed.invalid:
        sys.stdout.write(
            f"skipped {observed.invalid} malformed record(s): {observed.first_problem}\n"
        )
    sys.stdout.write(f"report: {out / 'report.json'}\nchart:  {out / 'chart.png'}\n")
    drifted = report["drifted"]
    if drifted:
        sys.stdout.write(f"DRIFT: {', '.join(drifted)} at or past the policy threshold\n")
        return EXIT_DRIFT
    return 0


def _run_dir(root: ArtifactRoot, version: str | None) -> Path:
    if version is None:
        version = root.latest_version()
        if version is None:
            raise DriftError(f"{root.root}: no latest model; train one or pass --version")
    elif not is_version(version):
        raise DriftError(f"--version {version!r}: must look like v001")
    run_dir = root.run_dir(version)
    if not run_dir.is_dir():
        raise DriftError(f"{version}: no such run in {root.runs_dir}")
    return run_dir
