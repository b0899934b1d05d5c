"""Gate 3, the contract smoke test: the real inference service, started as a process on the
candidate, must answer /health with the candidate's identity and reproduce the manifest's examples.

The trainer never imports inference code: it runs the service's own console script
(``inference serve``) the way an operator would, with ``MODEL_ARTIFACT_URI`` + ``MODEL_SHA256``,
on a free loopback port and one worker, then stops it with SIGTERM (gunicorn's graceful stop).
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeGuard

from artifact_contract import Manifest
from artifact_contract.startup import last_refusal

from trainer.processes import free_port, stop
from trainer.promotion.gates import Gate

START_TIMEOUT = 60.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Predictions travel as JSON floats (repr round-trips exactly); the tolerance only absorbs a
# different BLAS summation order between the two environments.
REL_TOLERANCE = 1e-9
ABS_TOLERANCE = 1e-6
# Loopback only, and never through a proxy the environment might name.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SmokeFailure(Exception):
    """The server did not start or did not answer as the contract says."""


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]


def server_environment(run_dir: Path, manifest_sha256: str, port: int) -> dict[str, str]:
    """The whole environment of the child: nothing inherited, so a stray MODEL_DIR or
    PROMETHEUS_MULTIPROC_DIR of the caller cannot change what is tested."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "MODEL_ARTIFACT_URI": run_dir.resolve().as_uri(),
        "MODEL_SHA256": manifest_sha256,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "1",
        # No request of the gate outlives a few seconds: a stop (ours, or the kernel's SIGTERM
        # when the trainer dies) never waits gunicorn's default 30 s for one.
        "GRACEFUL_TIMEOUT": "5",
    }


@contextmanager
def running_server(inference_bin: Path, run_dir: Path, manifest_sha256: str) -> Iterator[Server]:
    """The server, stopped on every way out: a gate failure, an exception, SIGTERM (the CLI turns
    it into an exception). Should the trainer be killed outright, the server gets SIGTERM from
    the kernel (``PR_SET_PDEATHSIG``), and its log is an unnamed file: nothing is left behind."""
    if not inference_bin.is_file():
        raise SmokeFailure(
            f"no inference service at {inference_bin} (run `make setup`, or set "
            "MLPIPELINE_INFERENCE_BIN)"
        )
    port = free_port()
    with tempfile.TemporaryFile(prefix="trainer-smoke-") as log:
        process = subprocess.Popen(
            [str(inference_bin), "serve"],
            env=server_environment(run_dir, manifest_sha256, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd="/",  # reads nothing relative; writes only its own temporary files
            start_new_session=True,  # its own process group: stopped as a whole
            preexec_fn=die_with_parent(),
        )
        server = Server(f"http://127.0.0.1:{port}", process, log)
        try:
            _wait_ready(server)
            yield server
        finally:
            stop(process)


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when this thread exits, however it
    exits (even SIGKILL). The child is gunicorn's master: SIGTERM is its graceful stop, and its
    worker follows it. None where there is no prctl (macOS): every other exit path still stops
    the server."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the child
    except (AttributeError, OSError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def last_log_message(log: IO[bytes]) -> str:
    """The reason the service gave (its JSON refusal line), else its last line."""
    log.seek(0)
    lines = log.read().decode("utf-8", errors="replace").splitlines()
    refusal = last_refusal(lines)
    if refusal is not None:
        return str(refusal)
    return lines[-1].strip() if lines else "(no output)"


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SmokeFailure(
                f"the inference service exited with status {server.process.returncode} before "
                f"it was ready: {last_log_message(server.log)}"
            )
        try:
            with _OPENER.open(server.url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise SmokeFailure(f"the inference service was not ready within {START_TIMEOUT:.0f} s")


def request_json(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=10) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    except OSError as exc:  # URLError, a reset connection, a timeout
        raise SmokeFailure(f"{url}: no answer ({exc})") from None
    try:
        return status, json.loads(payload)
    except ValueError:
        raise SmokeFailure(f"{url} answered {status} with a body that is not JSON") from None


def compare(manifest: Manifest, answer: dict[str, Any]) -> dict[str, Any]:
    """Check a /predict batch answer against the manifest's examples; return the figures.
    Regression predictions agree within the tolerance; class labels must be the same JSON value
    (1 is not "1" nor true), and any probabilities recorded with an example within tolerance."""
    got = answer.get("predictions")
    expected = [example.prediction for example in manifest.examples]
    if not isinstance(got, list) or len(got) != len(expected):
        raise SmokeFailure(f"/predict returned {got!r:.200} for {len(expected)} rows")
    if manifest.task != "classification":
        if not all(_is_number(value) for value in got):
            raise SmokeFailure(f"/predict returned non-numeric predictions {got!r:.200}")
        # The contract makes every regression example's prediction a finite number.
        wanted_numbers = [float(value) for value in expected if _is_number(value)]
        worst = max(abs(float(a) - b) for a, b in zip(got, wanted_numbers, strict=True))
        for index, (actual, number) in enumerate(zip(got, wanted_numbers, strict=True)):
            if not _close(float(actual), number):
                raise SmokeFailure(
                    f"/predict gave {actual} for example {index}, the manifest says {number}"
                )
        return {"max_abs_diff": worst}
    for index, (actual, wanted) in enumerate(zip(got, expected, strict=True)):
        if type(actual) is not type(wanted) or actual != wanted:
            raise SmokeFailure(
                f"/predict gave class {json.dumps(actual)} for example {index}, the manifest "
                f"says {json.dumps(wanted)}"
            )
    worst = 0.0
    answered = answer.get("probabilities")
    for index, example in enumerate(manifest.examples):
        recorded = example.probabilities
        if not recorded:
            continue
        row = answered[index] if isinstance(answered, list) and len(answered) == len(got) else None
        if not isinstance(row, dict) or sorted(row) != sorted(recorded):
            raise SmokeFailure(
                f"/predict gave probabilities {row!r:.200} for example {index}, the manifest "
                f"records them for {sorted(recorded)}"
            )
        for label, wanted in recorded.items():
            actual = row[label]
            if not _is_number(actual) or not _close(float(actual), float(wanted)):
                raise SmokeFailure(
                    f"/predict gave p({label})={actual} for example {index}, the manifest "
                    f"says {wanted}"
                )
            worst = max(worst, abs(float(actual) - float(wanted)))
    return {"labels_equal": len(expected), "max_abs_probability_diff": worst}


def _is_number(value: Any) -> TypeGuard[int | float]:
    return not isinstance(value, bool) and isinstance(value, int | float)


def _close(actual: float, wanted: float) -> bool:
    return math.isclose(actual, wanted, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)


def smoke(inference_bin: Path, run_dir: Path, manifest: Manifest, manifest_sha256: str) -> Gate:
    figures: dict[str, Any] = {"examples": len(manifest.examples)}
    if not manifest.examples:
        return Gate("smoke", False, "the manifest holds no examples to check", figures)
    started = time.monotonic()
    try:
        with running_server(inference_bin, run_dir, manifest_sha256) as server:
            figures["start_s"] = round(time.monotonic() - started, 2)
            status, health = request_json(server.url + "/health")
            healthy = status == 200 and isinstance(health, dict)
            if not healthy or health.get("manifest_sha256") != manifest_sha256:
                raise SmokeFailure(f"/health answered {status} {json.dumps(health)[:200]}")
            instances = [example.input for example in manifest.examples]
            status, answer = request_json(server.url + "/predict", {"instances": instances})
            if status != 200 or not isinstance(answer, dict):
                raise SmokeFailure(f"/predict answered {status} {json.dumps(answer)[:200]}")
            if answer.get("model_version") != manifest.model_version:
                raise SmokeFailure(f"/predict answered for model {answer.get('model_version')}")
            figures.update(compare(manifest, answer))
    except SmokeFailure as exc:
        return Gate("smoke", False, str(exc), figures)
    return Gate(
        "smoke",
        True,
        f"inference service on {manifest.model_version}: /health 200, "
        f"{len(manifest.examples)} examples reproduced",
        figures,
    )
