"""The inference image, reproduced without a Docker engine (none runs on our machines).

services/inference/Dockerfile is parsed, not paraphrased: the builder stage's COPY sources are laid
out under a temporary root that stands for the image's "/", its `uv` RUN steps run as written (in
its WORKDIR, with its ENV, image paths mapped under that root) into a fresh venv from the lockfile,
the sources are then deleted (the runtime stage holds only the venv), and the runtime stage's own
ENTRYPOINT + CMD start with its ENV and a tiny model baked in the way infra/docker/Dockerfile.local
does it; /health, /predict and the image's own HEALTHCHECK command must then pass.

Not reproduced: what Docker itself adds (the python:3.11-slim filesystem, the user switch, the
network namespace, .dockerignore matching). Those are exercised where an engine runs: CI's image
build. The Makefile's image targets are checked here as far as they go without an engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import RECORD, build_run
from tests.servers import Server, running_server, wait_for

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "services" / "inference" / "Dockerfile"
LOCAL_DOCKERFILE = REPO / "infra" / "docker" / "Dockerfile.local"
BUILD_SUPPORT = REPO / "infra" / "docker" / "build_support.py"
# python:3.11-slim's PATH, which the runtime stage's ENV PATH extends.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What .dockerignore keeps out of the build context, within the folders the Dockerfile copies.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".mypy_cache")

pytestmark = pytest.mark.image


@dataclass
class Stage:
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]

    def env(self) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        for args in self.all("ENV"):
            for token in shlex.split(args):
                name, _, value = token.partition("=")
                pairs.append((name, value))
        return pairs

    def exec_form(self, keyword: str) -> list[str]:
        parsed = json.loads(self.all(keyword)[-1])
        assert isinstance(parsed, list), f"{keyword} must be exec form (a JSON array)"
        return [str(part) for part in parsed]


def parse_dockerfile(path: Path) -> list[Stage]:
    """Instructions per stage (FROM ... AS name); continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages = [Stage("(before FROM)")]
    for line in logical:
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            words = args.split()
            stages.append(Stage(words[2] if len(words) > 2 else words[0]))
        stages[-1].instructions.append((keyword.upper(), args.strip()))
    return stages


def stage(path: Path, name: str) -> Stage:
    [found] = [s for s in parse_dockerfile(path) if s.name == name]
    return found


def expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m[1] or m[2], ""), value)


@dataclass(frozen=True)
class Image:
    fs: Path  # stands for the image's "/"
    runtime: Stage
    local: Stage
    model_sha256: str

    def path(self, image_path: str) -> Path:
        return self.fs / image_path.lstrip("/")

    def environment(self, **overrides: str) -> dict[str, str]:
        """The runtime stage's ENV, then Dockerfile.local's, image paths mapped under ``fs``."""
        env = {"PATH": BASE_PATH, "HOME": "/home/app", "MODEL_SHA256": self.model_sha256}
        for name, value in [*self.runtime.env(), *self.local.env()]:
            env[name] = expand(value, env)
        mapped = {name: self._map(value) for name, value in env.items()}
        return {**mapped, **overrides}

    def resolve(self, argv: list[str], env: dict[str, str]) -> list[str]:
        program = shutil.which(argv[0], path=env["PATH"])
        assert program is not None, f"{argv[0]} is not on the image's PATH"
        return [program, *argv[1:]]

    def _map(self, value: str) -> str:
        return ":".join(
            str(self.path(part)) if part.startswith(("/opt/", "/home/")) else part
            for part in value.split(":")
        )


def builder_steps(command: str) -> list[str]:
    """A RUN's shell steps, minus BuildKit flags and the image's own bootstrap of uv from PyPI
    (the repo's uv stands in for it)."""
    command = re.sub(r"--mount=\S+\s*", "", command)
    steps = [step.strip() for step in command.split("&&")]
    return [step for step in steps if not re.match(r"python -m pip install .*\"?uv==", step)]


def run_builder(fs: Path, uv_bin: Path) -> None:
    builder = stage(DOCKERFILE, "builder")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    for name, value in builder.env():
        env[name] = str(fs / value.lstrip("/")) if value.startswith("/") else value
    env["PATH"] = f"{uv_bin}{os.pathsep}{env['PATH']}"
    workdir = fs
    for keyword, args in builder.instructions:
        if keyword == "COPY":
            assert not args.startswith("--"), f"the builder copies only from the context: {args}"
            source, destination = args.split()
            target = fs / destination.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, target, ignore=IGNORED)
            else:
                shutil.copy2(REPO / source, target)
        elif keyword == "WORKDIR":
            workdir = fs / args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "RUN":
            for step in builder_steps(args):
                assert step.startswith("uv "), f"a builder step this test cannot replay: {step}"
                done = subprocess.run(
                    ["bash", "-c", step], cwd=workdir, env=env, capture_output=True, text=True
                )
                assert done.returncode == 0, f"{step}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    fs = tmp_path_factory.mktemp("image-root")
    uv_bin = tmp_path_factory.mktemp("uv-bin")
    uv = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    (uv_bin / "uv").symlink_to(Path(uv).resolve())
    run_builder(fs, uv_bin)
    # The runtime stage copies only the venv out of the builder: drop everything else.
    runtime = stage(DOCKERFILE, "runtime")
    assert runtime.all("COPY") == ["--from=builder /opt/venv /opt/venv"]
    shutil.rmtree(fs / "src")

    # Dockerfile.local's layer, staged by the same helper `make image-local` runs.
    local = stage(LOCAL_DOCKERFILE, "${INFERENCE_IMAGE}")
    [copy] = local.all("COPY")
    run_dir = build_run(tmp_path_factory.mktemp("artifacts"), "ridge")
    staged = subprocess.run(
        [
            sys.executable,
            str(BUILD_SUPPORT),
            "stage-model",
            str(run_dir),
            str(fs / copy.split()[1].lstrip("/")),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return Image(fs=fs, runtime=runtime, local=local, model_sha256=staged.stdout.strip())


def test_the_venv_holds_non_editable_installs(image: Image) -> None:
    python = image.path("/opt/venv/bin/python")
    done = subprocess.run(
        [
            str(python),
            "-c",
            "import inference, artifact_contract as a; print(inference.__file__);"
            " print(a.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": BASE_PATH},
    )
    for location in done.stdout.split():
        assert Path(location).is_relative_to(image.path("/opt/venv")), location
    site = image.path("/opt/venv/lib/python3.11/site-packages")
    for pth in site.glob("*.pth"):  # an editable install would point back into the checkout
        assert str(REPO) not in pth.read_text(), pth


@pytest.fixture(scope="module")
def served(image: Image, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = image.environment(
        HOST="127.0.0.1",  # the image binds 0.0.0.0; a test listens on loopback only
        PORT="0",  # gunicorn picks a free port and logs it
        MODEL_CACHE_DIR=str(tmp_path_factory.mktemp("cache")),
    )
    image.path("/home/app").mkdir(parents=True, exist_ok=True)
    command = image.resolve(
        [*image.runtime.exec_form("ENTRYPOINT"), *image.runtime.exec_form("CMD")], env
    )
    with running_server(command, env, workers=1, cwd=image.path("/home/app")) as server:
        wait_for(lambda: server.request("GET", "/health")[0] == 200, 60, "/health to be 200")
        yield server


def test_the_image_command_serves_the_baked_model(served: Server, image: Image) -> None:
    status, _, body = served.request("GET", "/health")
    assert status == 200
    status, _, body = served.request("POST", "/predict", RECORD)
    assert status == 200, body
    answer = json.loads(body)
    assert isinstance(answer["prediction"], float)
    assert answer["model_version"] == "v001"
    status, _, _ = served.request("POST", "/invocations", RECORD)
    assert status == 200
    loaded = [r for r in served.records() if r.get("event") == "model_loaded"]
    assert loaded and loaded[0]["manifest_sha256"] == image.model_sha256


def test_the_image_healthcheck_passes_against_it(served: Server, image: Image) -> None:
    [healthcheck] = image.runtime.all("HEALTHCHECK")
    argv = json.loads(healthcheck.split(" CMD ", 1)[1])
    env = image.environment(PORT=str(served.port))
    done = subprocess.run(image.resolve(argv, env), env=env, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_the_runtime_stage_is_unprivileged_and_exposes_its_port() -> None:
    runtime = stage(DOCKERFILE, "runtime")
    [user] = runtime.all("USER")
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) != 0
    env = dict(runtime.env())
    assert runtime.all("EXPOSE") == [env["PORT"]] == ["8080"]
    assert runtime.exec_form("ENTRYPOINT") == ["inference"]
    assert runtime.exec_form("CMD") == ["serve"]  # SageMaker runs `docker run IMAGE serve`
    assert "MODEL" not in " ".join(runtime.all("COPY")), "the production image carries no model"


# --- Makefile targets and their helper, without an engine --------------------------------------


def make(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(REPO), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


def test_make_n_shows_the_docker_build_of_the_inference_dockerfile() -> None:
    done = make("-n", "image-inference", "TAG=x")
    assert done.returncode == 0, done.stderr
    assert (
        "docker build -f services/inference/Dockerfile -t mlpipeline-inference:x ." in done.stdout
    )


def test_without_an_engine_the_image_target_fails_in_one_line(tmp_path: Path) -> None:
    done = make("image-inference", "TAG=x", DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "no Docker engine answers" in lines[0]
    assert "docker build" not in done.stdout


def test_build_metadata_records_image_lockfile_and_commit(tmp_path: Path) -> None:
    out = tmp_path / "inference_build_metadata.json"
    subprocess.run(
        [
            sys.executable,
            str(BUILD_SUPPORT),
            "metadata",
            "--service",
            "inference",
            "--image",
            "mlpipeline-inference",
            "--tag",
            "x",
            "--docker",
            "false",  # no engine to ask for the image id
            "--dockerfile",
            "services/inference/Dockerfile",
            "--lockfile",
            "services/inference/requirements.lock",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    record = json.loads(out.read_text())
    lock = REPO / "services" / "inference" / "requirements.lock"
    assert record["image_ref"] == "mlpipeline-inference:x"
    assert record["lockfile_sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    assert record["git_sha"] == (head.stdout.strip() if head.returncode == 0 else None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["created_at"])
    assert record["image_id"] is None


def test_staging_a_model_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BUILD_SUPPORT), "stage-model", str(tmp_path), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: no run directory at {tmp_path} (make train first, or pass RUN_DIR=...)"
    ]
    assert not (tmp_path / "out").exists()


def test_the_lint_tools_lock_is_hashed_pins_only() -> None:
    text = (REPO / "infra" / "tools" / "requirements.lock").read_text()
    assert "://" not in text
    assert not re.search(r"^\s*/", text, re.MULTILINE)
    assert "--hash=sha256:" in text
