"""Prometheus metrics, correct across gunicorn workers (prometheus_client multiprocess mode).

In multiprocess mode each process writes its samples to files in PROMETHEUS_MULTIPROC_DIR and
``/metrics`` aggregates every file, so any worker answers for all of them. Without that
directory (tests with the Flask client) the metrics live in this object's own registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PREDICT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "inference_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "inference_request_latency_seconds",
            "Time to answer a request, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predict_time = Histogram(
            "inference_predict_seconds",
            "Time spent in the model's predict().",
            buckets=PREDICT_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter("inference_rows_predicted", "Rows predicted.", registry=self.registry)
        self.outside = Counter(
            "inference_out_of_range_values",
            "Values served although outside the training data: below its min, above its max, "
            "or a category it did not have (accepted within the bounds docs/03 describes).",
            ["feature", "kind"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "inference_model_info",
            "The loaded model (value 1), labelled with its version and manifest digest.",
            ["model_version", "manifest_sha256"],
            multiprocess_mode="max",
            registry=self.registry,
        )
        self.model_swaps = Counter(
            "inference_model_swaps",
            "Models named by MODEL_REFERENCE after the start: swapped in, or refused (the old "
            "model keeps serving).",
            ["outcome"],
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, latency: float) -> None:
        """Count one answered request and its latency (label children cached: the label
        values are bounded, and looking them up costs more than the update)."""
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(latency)

    def count_outside(self, counts: list[tuple[str, str, int]]) -> None:
        for feature, kind, count in counts:
            self.outside.labels(feature, kind).inc(count)

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def mark_worker_dead(pid: int, multiprocess_dir: Path) -> None:
    """Drop a dead worker's live gauges; its counters stay in the totals."""
    multiprocess.mark_process_dead(pid, str(multiprocess_dir))  # type: ignore[no-untyped-call]
