"""`make images-smoke`: build the three images and check them as running containers.

Standard library only (python3.11); needs no virtualenv and no previous training run. In order:

  base        python:3.11-slim, or the stand-in (engine.py)
  build       mlpipeline-inference:smoke and mlpipeline-trainer:smoke, side by side
  trainer     `train` with SageMaker's /opt/ml layout and no network writes a run to model/ and
              exits 0; without its data channel it writes output/failure and exits non-zero
  inference   serves what the trainer trained, mounted read-only at /opt/ml/model, on a
              read-only root filesystem: /ping, /predict = the manifest's examples, uid 10001,
              the image's HEALTHCHECK, SIGTERM stops it within the grace period; the same run as
              a MODEL_ARTIFACT_URI tarball; a wrong MODEL_SHA256 exits non-zero (integrity_error);
              given no model at all it refuses to start (none is baked in)
  local       mlpipeline-local:smoke (that run baked in) serves it, and as uid 10001 cannot
              write its venv or its model; the runtime image carries no uv

Each build's metadata must name the image ID the engine reports and the base image used. Each
check prints one line; the first failure stops the run with its reason (exit 1). Containers
are removed, and the scratch directory too unless a check failed. Wall time is printed last.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import math
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from build_support import ROOT, BuildError, build_image
from engine import Engine, EngineError, find_engine, python_base

TAG = "smoke"
INFERENCE, TRAINER, LOCAL = (
    f"mlpipeline-{name}:{TAG}" for name in ("inference", "trainer", "local")
)
APP_UID = 10001
GRACE_SECONDS = 30  # the image's GRACEFUL_TIMEOUT default
STARTUP_SECONDS = 90
ROWS = 400


class SmokeFailure(Exception):
    """A check failed: one line saying which and why."""


def say(message: str) -> None:
    sys.stdout.write(f"{message}\n")
    sys.stdout.flush()


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


@contextmanager
def step(label: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    say(f"ok  {label} ({time.monotonic() - started:.0f} s)")


# --- the SageMaker layout the trainer reads ------------------------------------------------------


def write_training_data(path: Path, seed: int = 7) -> None:
    """Rows shaped like the trainer's synthetic default: integer age and tenure_years."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["age", "income_k", "tenure_years", "target"])
        for _ in range(ROWS):
            age, tenure = rng.randint(18, 69), rng.randint(0, 9)
            income = min(max(rng.gauss(70.0, 15.0), 30.0), 120.0)
            target = 10_000 + 120 * age + 500 * income + 800 * tenure + rng.gauss(0, 3_000)
            writer.writerow([age, round(income, 2), tenure, round(target, 2)])


def sagemaker_layout(base: Path, *, with_data: bool) -> Path:
    """/opt/ml as SageMaker mounts it, owned by the image's user so it can write model/."""
    for sub in ("input/config", "model", "output"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "input/config/hyperparameters.json").write_text('{"seed": "7"}\n')
    if with_data:
        write_training_data(base / "input/data/train/train.csv")
    for path in [base, *base.rglob("*")]:
        try:
            shutil.chown(path, APP_UID, APP_UID)
        except PermissionError:  # not root (a docker-group user): open it up instead
            path.chmod(0o777 if path.is_dir() else 0o666)
    return base


def train(engine: Engine, layout: Path) -> subprocess.CompletedProcess[str]:
    """SageMaker's `docker run IMAGE train`, with the layout at /opt/ml and no network."""
    flags = [*engine.network_flags(False), "-v", f"{layout}:/opt/ml"]
    return engine.run("run", "--rm", *flags, TRAINER, "train", check=False)


def check_trainer(engine: Engine, work: Path) -> Path:
    good = sagemaker_layout(work / "train-ok", with_data=True)
    done = train(engine, good)
    check(done.returncode == 0, f"trainer: train exited {done.returncode}: {_tail(done.stderr)}")
    check((good / "model/manifest.json").is_file(), "trainer: no manifest.json in /opt/ml/model")
    check(not (good / "output/failure").exists(), "trainer: output/failure written on success")
    say("ok  trainer: `train` with --network none wrote /opt/ml/model and exited 0")

    bad = sagemaker_layout(work / "train-no-data", with_data=False)
    done = train(engine, bad)
    failure = bad / "output/failure"
    check(done.returncode != 0, "trainer: train without a data channel exited 0")
    check(failure.is_file() and failure.read_text().strip() != "", "trainer: no output/failure")
    check(not any((bad / "model").iterdir()), "trainer: model/ not empty after a failure")
    reason = failure.read_text().strip().splitlines()[0]
    say(f"ok  trainer: without its data channel exit {done.returncode}, output/failure: {reason}")
    return good / "model"


# --- running the inference image ------------------------------------------------------------------


class Container:
    def __init__(self, engine: Engine, cid: str) -> None:
        self.engine, self.cid = engine, cid
        published = engine.run("port", cid, "8080/tcp").stdout.strip().splitlines()[0]
        self.url = f"http://127.0.0.1:{published.rsplit(':', 1)[1]}"

    def request(self, path: str, body: object = None) -> tuple[int, dict[str, object]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method="POST" if data else "GET"
        )
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                if self.request("/ping")[0] == 200:
                    return
            except (OSError, ValueError, http.client.HTTPException):
                pass  # not listening yet (slirp4netns may accept and drop the connection)
            if self.state("{{.State.Running}}") != "true":
                raise SmokeFailure(f"{self.cid[:12]} exited: {_tail(self.logs())}")
            time.sleep(0.5)
        raise SmokeFailure(f"/ping not 200 within {STARTUP_SECONDS} s: {_tail(self.logs())}")

    def state(self, template: str) -> str:
        return self.engine.run("inspect", "--format", template, self.cid).stdout.strip()

    def logs(self) -> str:
        done = self.engine.run("logs", self.cid, check=False)
        return done.stdout + done.stderr

    def exec(self, *argv: str) -> tuple[int, str]:
        done = self.engine.run("exec", self.cid, *argv, check=False)
        return done.returncode, (done.stdout + done.stderr).strip()


@contextmanager
def serving(engine: Engine, image: str, *run_args: str) -> Iterator[Container]:
    """A detached inference container on a 127.0.0.1 port; removed afterwards. Docker's and
    podman's own health timers are off (podman's need systemd): the checks run HEALTHCHECK."""
    cid = engine.run(
        "run",
        "-d",
        "--no-healthcheck",
        *engine.network_flags(True),
        "-p",
        "127.0.0.1::8080",
        *run_args,
        image,
    ).stdout.strip()
    try:
        container = Container(engine, cid)
        container.wait_ready()
        yield container
    finally:
        engine.run("rm", "-f", cid, check=False)


def check_examples(container: Container, manifest: dict[str, object], where: str) -> None:
    examples = manifest["examples"]
    assert isinstance(examples, list)
    check(bool(examples), f"{where}: the manifest has no examples to check")
    for example in examples:
        status, answer = container.request("/predict", example["input"])
        check(status == 200, f"{where}: /predict answered {status}: {answer}")
        got, want = answer["prediction"], example["prediction"]
        assert isinstance(got, float | int)
        check(math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {got} != {want}")
    check(answer["model_version"] == manifest["model_version"], f"{where}: wrong model_version")
    say(f"ok  {where}: /ping 200, /predict = the manifest's {len(examples)} examples")


def check_user_and_healthcheck(engine: Engine, container: Container, image: str) -> None:
    code, status = container.exec("python", "-c", "print(open('/proc/1/status').read())")
    uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), "?")
    check(code == 0 and uid == str(APP_UID), f"PID 1 runs as uid {uid}, not {APP_UID}")
    probe = json.loads(
        engine.run("image", "inspect", "--format", "{{json .Config.Healthcheck}}", image).stdout
    )
    check(bool(probe) and probe["Test"][0] == "CMD", f"{image} has no exec-form HEALTHCHECK")
    code, output = container.exec(*probe["Test"][1:])
    check(code == 0, f"the image's HEALTHCHECK failed: {output}")
    say(f"ok  runs as uid {APP_UID}; the image's HEALTHCHECK passes")


# Inside the container: try to create a file in each directory; print why it could not.
WRITE_PROBE = """
import sys
for path in sys.argv[1:]:
    try:
        open(path + "/.smoke-write", "w")
    except OSError as exc:
        print(path, exc.strerror)
    else:
        print(path, "WRITABLE")
"""


def cannot_write(container: Container, *paths: str) -> None:
    code, output = container.exec("python", "-c", WRITE_PROBE, *paths)
    check(code == 0 and "WRITABLE" not in output, f"writable: {output}")
    say(f"ok  cannot write {', '.join(output.splitlines())}")


def check_sigterm(engine: Engine, container: Container) -> None:
    started = time.monotonic()
    engine.run("kill", "--signal", "TERM", container.cid)
    code = engine.run("wait", container.cid, timeout=GRACE_SECONDS + 15).stdout.strip()
    took = time.monotonic() - started
    check(code.splitlines()[-1] == "0", f"exit {code} after SIGTERM")
    check(took < GRACE_SECONDS, f"SIGTERM took {took:.1f} s (grace {GRACE_SECONDS} s)")
    say(f"ok  SIGTERM: exit 0 in {took:.1f} s (grace {GRACE_SECONDS} s)")


def check_inference(engine: Engine, run_dir: Path, work: Path) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    mounted = ["-v", f"{run_dir}:/opt/ml/model:ro"]
    with serving(engine, INFERENCE, *engine.read_only_flags(), *mounted) as container:
        check_examples(container, manifest, "inference, trained run at /opt/ml/model (ro rootfs)")
        check_user_and_healthcheck(engine, container, INFERENCE)
        cannot_write(container, "/opt/ml/model", "/opt/venv", "/home/app")
        check_sigterm(engine, container)

    # SageMaker's model.tar.gz: the run directory's files at the archive's root.
    tarball = work / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        for path in sorted(run_dir.iterdir()):
            archive.add(path, arcname=path.name)
    uri = ["-v", f"{tarball}:/srv/model.tar.gz:ro", "-e", "MODEL_ARTIFACT_URI=/srv/model.tar.gz"]
    # The archive is extracted under MODEL_CACHE_DIR (default /tmp/...): a tmpfs there.
    with serving(engine, INFERENCE, *engine.read_only_flags(), "--tmpfs", "/tmp", *uri) as c:
        check_examples(c, manifest, "inference, the same run as a MODEL_ARTIFACT_URI tarball")

    done = engine.run(
        "run",
        "--rm",
        *engine.network_flags(False),
        *mounted,
        "-e",
        "MODEL_SHA256=" + "0" * 64,
        INFERENCE,
        check=False,
        timeout=STARTUP_SECONDS,
    )
    output = done.stdout + done.stderr
    check(done.returncode != 0, "a wrong MODEL_SHA256 exited 0")
    check("integrity_error" in output, f"a wrong MODEL_SHA256: no integrity_error in {output!r}")
    say(f"ok  a wrong MODEL_SHA256 exits {done.returncode} with integrity_error")


def check_model_agnostic(engine: Engine) -> None:
    done = engine.run(
        "run", "--rm", *engine.network_flags(False), INFERENCE, check=False, timeout=STARTUP_SECONDS
    )
    check(done.returncode != 0, f"{INFERENCE} started with no model given: one is baked in")
    check("model_source_error" in done.stdout + done.stderr, f"no model_source_error: {done}")
    say(f"ok  {INFERENCE} carries no model: given none, it exits {done.returncode}")


def check_metadata(engine: Engine, service: str, ref: str, base: str) -> None:
    record = json.loads((ROOT / "build" / f"{service}_build_metadata.json").read_text())
    check(record["image_ref"] == ref, f"{service} metadata names {record['image_ref']}")
    check(record["image_id"] == engine.image_id(ref), f"{service} metadata: wrong image_id")
    check(
        record["base_image"] == base and bool(record["base_image_id"]),
        f"{service} metadata: base_image {record['base_image']} (built on {base}) or no ID",
    )


def check_local(engine: Engine, run_dir: Path) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    with serving(engine, LOCAL) as container:
        check_examples(container, manifest, "local image, its baked model")
        cannot_write(container, "/opt/ml/model", "/opt/venv", "/opt/venv/lib/python3.11")
        code, output = container.exec(
            "python",
            "-c",
            "import os, shutil; print(shutil.which('uv'), os.path.exists('/etc/uv'))",
        )
        check(code == 0 and output == "None False", f"uv or /etc/uv in the runtime image: {output}")
        say("ok  no uv and no /etc/uv in the runtime image")


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--docker", help="engine program (default: docker if it answers, else podman)"
    )
    parser.add_argument("--python-image", help="base image (default: python:3.11-slim or stand-in)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    logs = ROOT / "build" / "smoke-logs"
    logs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="images-smoke-"))
    try:
        engine = find_engine(args.docker)
        say(f"images-smoke with {engine.name}; build logs in {logs.relative_to(ROOT)}/")
        with step("base image"):
            base = python_base(engine, args.python_image)
        # Both at once: one waits on the package index while the other compiles.
        with step(f"build {INFERENCE} and {TRAINER} on {base}"), ThreadPoolExecutor(2) as pool:
            builds = [
                pool.submit(build_image, engine, service, ref, base, log=logs / f"{service}.log")
                for service, ref in (("inference", INFERENCE), ("trainer", TRAINER))
            ]
            for build in builds:
                build.result()
        check_metadata(engine, "inference", INFERENCE, base)
        check_metadata(engine, "trainer", TRAINER, base)
        run_dir = check_trainer(engine, work)
        check_inference(engine, run_dir, work)
        check_model_agnostic(engine)
        with step(f"build {LOCAL} with that run baked in"):
            build_image(engine, "local", LOCAL, INFERENCE, run_dir=run_dir, log=logs / "local.log")
        check_metadata(engine, "local", LOCAL, INFERENCE)
        check_local(engine, run_dir)
    except (SmokeFailure, EngineError, BuildError) as exc:
        say(f"FAIL {exc}")
        say(f"images-smoke failed after {time.monotonic() - started:.0f} s (scratch kept: {work})")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    say(f"images-smoke passed: wall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
