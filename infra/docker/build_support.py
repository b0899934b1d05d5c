"""Helpers for the root Makefile's image targets (standard library only, run with python3.11).

  metadata     write build/<service>_build_metadata.json after a `docker build`
  stage-model  verify a run directory and copy it (symlinks resolved) into the build context,
               printing its manifest digest, for infra/docker/Dockerfile.local

Expected failures print one line to stderr and exit 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


def _image_id(docker: str, ref: str) -> str | None:
    try:
        out = subprocess.run(
            [docker, "image", "inspect", "--format", "{{.Id}}", ref],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def metadata(args: argparse.Namespace) -> None:
    lockfile = Path(args.lockfile)
    record: dict[str, object] = {
        "service": args.service,
        "image": args.image,
        "tag": args.tag,
        "image_ref": f"{args.image}:{args.tag}",
        "image_id": _image_id(args.docker, f"{args.image}:{args.tag}"),
        "dockerfile": args.dockerfile,
        "git_sha": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "lockfile": args.lockfile,
        "lockfile_sha256": _sha256(ROOT / lockfile if not lockfile.is_absolute() else lockfile),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    if args.manifest:
        record["manifest_sha256"] = _sha256(Path(args.manifest))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(out)
    sys.stdout.write(f"wrote {out}\n")


def stage_model(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "libs" / "artifact-contract" / "src"))
    from artifact_contract import ContractError, verify_run_dir

    source = Path(args.run_dir)
    if not (source / "manifest.json").is_file():
        raise BuildError(f"no run directory at {source} (make train first, or pass RUN_DIR=...)")
    resolved = source.resolve()
    try:
        verify_run_dir(resolved)
    except ContractError as exc:
        raise BuildError(f"{source} is not a valid run directory: {exc}") from None
    dest = Path(args.dest)
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(resolved, dest, symlinks=False)
    verify_run_dir(dest)
    sys.stdout.write(_sha256(dest / "manifest.json") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    meta = sub.add_parser("metadata", help="write the build metadata JSON")
    meta.add_argument("--service", required=True)
    meta.add_argument("--image", required=True)
    meta.add_argument("--tag", required=True)
    meta.add_argument("--dockerfile", required=True)
    meta.add_argument("--lockfile", required=True)
    meta.add_argument("--manifest", help="manifest.json of a baked model (image-local)")
    meta.add_argument("--docker", default="docker")
    meta.add_argument("--out", required=True)
    meta.set_defaults(func=metadata)
    stage = sub.add_parser("stage-model", help="verify and copy a run directory")
    stage.add_argument("run_dir")
    stage.add_argument("dest")
    stage.set_defaults(func=stage_model)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except BuildError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
