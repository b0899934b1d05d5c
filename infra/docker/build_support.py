"""Helpers for the root Makefile's image targets (standard library only, run with python3.11).

  build        build one image (inference, trainer, local) with the engine and base image
               engine.py picks, then write build/<service>_build_metadata.json
  stage-model  verify a run directory and copy it (symlinks resolved) into the build context,
               printing its manifest digest, for infra/docker/Dockerfile.local
  check-context  with Docker's own .dockerignore matcher (docker-py's copy of moby's), check
               that every COPY source reaches the build context and local state does not
               (run from the lint-tools venv, which has docker-py; `make lint-infra`)

Expected failures print one line to stderr and exit 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from engine import Engine, EngineError, find_engine, python_base

ROOT = Path(__file__).resolve().parents[2]
# The contract library is standard library only: its source serves a system python3.11 as is.
sys.path.insert(0, str(ROOT / "libs" / "artifact-contract" / "src"))
from artifact_contract.files import write_json_atomically  # noqa: E402

# Paths the build context must carry (besides every COPY source) and must never carry.
MUST_SEND = ("build/local-model/manifest.json",)  # staged by `make image-local`
MUST_NOT_SEND = (
    "runs/artifacts/latest/manifest.json",
    "runs/mlflow.db",
    "services/inference/.venv/bin/python",
    "services/trainer/.venv/bin/python",
    "libs/artifact-contract/.venv/bin/python",
    ".tools/bin/uv",
    ".git/HEAD",
    "build/inference_build_metadata.json",
    "services/inference/src/inference/__pycache__/app.cpython-311.pyc",
    "services/inference/tests/test_app.py",
)


class BuildError(Exception):
    """An expected failure: reported as one line, no traceback."""


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise BuildError(f"cannot read {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class Recipe:
    dockerfile: str
    lockfile: str  # the lockfile whose pins the image's venv holds


RECIPES = {
    "inference": Recipe("services/inference/Dockerfile", "services/inference/requirements.lock"),
    "trainer": Recipe("services/trainer/Dockerfile", "services/trainer/requirements.lock"),
    "local": Recipe("infra/docker/Dockerfile.local", "services/inference/requirements.lock"),
}
LOCAL_MODEL = "build/local-model"  # where `local` stages its run directory (the build context)


def build_image(
    engine: Engine,
    service: str,
    ref: str,
    base: str,
    *,
    run_dir: Path | None = None,
    log: Path | None = None,
) -> dict[str, object]:
    """Build ``ref`` from the service's Dockerfile and write its build metadata. For ``local``,
    ``base`` is the inference image and ``run_dir`` the run directory baked into it."""
    recipe = RECIPES[service]
    args = ["--build-arg", f"PYTHON_IMAGE={base}"]
    manifest = None
    if service == "local":
        if run_dir is None:
            raise BuildError("the local image needs a run directory (RUN_DIR=...)")
        sha256 = _stage(run_dir, ROOT / LOCAL_MODEL)
        manifest = ROOT / LOCAL_MODEL / "manifest.json"
        args = ["--build-arg", f"INFERENCE_IMAGE={base}", "--build-arg", f"RUN_DIR={LOCAL_MODEL}"]
        args += ["--build-arg", f"MODEL_SHA256={sha256}"]
    engine.run(
        "build",
        "-f",
        recipe.dockerfile,
        *engine.build_flags(),
        *args,
        "-t",
        ref,
        str(ROOT),
        capture=False,
        log=log,
    )
    image_id = engine.image_id(ref)
    if image_id is None:
        raise BuildError(f"{engine.name} built {ref} but cannot inspect it")
    image, _, tag = ref.rpartition(":")
    record: dict[str, object] = {
        "service": service,
        "image": image,
        "tag": tag,
        "image_ref": ref,
        "image_id": image_id,
        "engine": engine.name,
        "base_image": base,
        "base_image_id": engine.image_id(base),
        "dockerfile": recipe.dockerfile,
        "git_sha": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "lockfile": recipe.lockfile,
        "lockfile_sha256": _sha256(ROOT / recipe.lockfile),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    if manifest is not None:
        record["manifest_sha256"] = _sha256(manifest)
    out = ROOT / "build" / f"{service}_build_metadata.json"
    write_json_atomically(out, record, sort_keys=True)
    return record


def build(args: argparse.Namespace) -> None:
    engine = find_engine(args.docker)
    ref = f"{args.image}:{args.tag}"
    if args.service == "local":
        base = f"{args.inference_image}:{args.tag}"
        if engine.image_id(base) is None:
            raise BuildError(
                f"no image {base}: build it first (make image-inference TAG={args.tag})"
            )
    else:
        base = python_base(engine, args.python_image)
    run_dir = Path(args.run_dir) if args.run_dir else None
    record = build_image(engine, args.service, ref, base, run_dir=run_dir)
    sys.stdout.write(
        f"built {ref} ({record['image_id']}) with {engine.name} on {base};"
        f" wrote build/{args.service}_build_metadata.json\n"
    )


def stage_model(args: argparse.Namespace) -> None:
    sys.stdout.write(_stage(Path(args.run_dir), Path(args.dest)) + "\n")


def _stage(source: Path, dest: Path) -> str:
    """Verify a run directory, copy it to ``dest`` (links resolved); its manifest digest."""
    from artifact_contract import ContractError, verify_run_dir

    if not (source / "manifest.json").is_file():
        raise BuildError(f"no run directory at {source} (make train first, or pass RUN_DIR=...)")
    resolved = source.resolve()
    try:
        verify_run_dir(resolved)
    except ContractError as exc:
        raise BuildError(f"{source} is not a valid run directory: {exc}") from None
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(resolved, dest, symlinks=False)
    verify_run_dir(dest)
    return _sha256(dest / "manifest.json")


def copy_sources(dockerfile: Path) -> list[str]:
    """The build-context sources of a Dockerfile's COPY/ADD instructions (not --from=stage)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    sources: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or words[0].upper() not in ("COPY", "ADD"):
            continue
        if any(word.startswith("--from") for word in words):
            continue
        sources += [word for word in words[1:-1] if not word.startswith("--")]
    return sources


def check_context(args: argparse.Namespace) -> None:
    from docker.utils.build import PatternMatcher  # type: ignore[import-untyped]

    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    matcher = PatternMatcher(patterns)

    def excluded(path: str) -> bool:
        # As Docker walks the context: a path is left out when it, or a folder above it, matches.
        parts = path.split("/")
        return any(matcher.matches("/".join(parts[: i + 1])) for i in range(len(parts)))

    problems: list[str] = []
    for name in args.dockerfiles:
        for source in copy_sources(ROOT / name):
            if "$" in source:  # a build argument (Dockerfile.local's RUN_DIR): see MUST_SEND
                continue
            path = ROOT / source
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            if not files:
                problems.append(f"{name}: COPY source {source} does not exist")
            elif all(excluded(str(f.relative_to(ROOT))) for f in files):
                problems.append(f"{name}: COPY source {source} is excluded by .dockerignore")
    problems += [f".dockerignore drops {p}, which must be sent" for p in MUST_SEND if excluded(p)]
    problems += [f".dockerignore sends {p}" for p in MUST_NOT_SEND if not excluded(p)]
    if problems:
        raise BuildError("; ".join(problems))
    sys.stdout.write(f"build context ok for {len(args.dockerfiles)} Dockerfile(s)\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    image = sub.add_parser("build", help="build one image and write its build metadata")
    image.add_argument("service", choices=sorted(RECIPES))
    image.add_argument("--image", required=True, help="repository name, e.g. mlpipeline-inference")
    image.add_argument("--tag", required=True)
    image.add_argument(
        "--docker", help="engine program (default: docker if it answers, else podman)"
    )
    image.add_argument("--python-image", help="base image (default: python:3.11-slim or stand-in)")
    image.add_argument("--inference-image", default="mlpipeline-inference", help="for local")
    image.add_argument("--run-dir", help="for local: the run directory to bake in")
    image.set_defaults(func=build)
    stage = sub.add_parser("stage-model", help="verify and copy a run directory")
    stage.add_argument("run_dir")
    stage.add_argument("dest")
    stage.set_defaults(func=stage_model)
    context = sub.add_parser("check-context", help="check .dockerignore against the Dockerfiles")
    context.add_argument("dockerfiles", nargs="+")
    context.set_defaults(func=check_context)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (BuildError, EngineError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
