"""The container engine behind `make image-*` and `make images-smoke` (standard library only).

Docker when a Docker engine answers; else rootful podman, installed through apt when it is
missing and we are root. Podman runs with what machines without systemd need (see
containers.conf beside this file): chroot isolation, Docker image format (OCI would drop
HEALTHCHECK), runc, cgroupfs, a file event log. Builds get the host's CA bundle mounted over
the image's, so a TLS-inspecting proxy that only the host trusts does not break pip or uv.

The base image is python:3.11-slim when the engine has it; else the stand-in
(localhost/python:3.11-slim) when it was built before; else python:3.11-slim when it can be
pulled; else the stand-in, built now by python-base.sh from Debian's mirror.

Expected failures raise EngineError: a short reason (a failed build adds its log's tail), no
traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTAINERS_CONF = HERE / "containers.conf"
BASE_SCRIPT = HERE / "python-base.sh"
UPSTREAM_BASE = "docker.io/library/python:3.11-slim"
STAND_IN_BASE = "localhost/python:3.11-slim"
# What a Debian machine without Docker needs: podman (which builds with buildah's library) and
# runc, slirp4netns for ports published on 127.0.0.1, debootstrap for the stand-in base.
APT_PACKAGES = ("podman", "runc", "slirp4netns", "debootstrap")
PULL_TIMEOUT = 120
APT_ATTEMPTS = 3


class EngineError(Exception):
    """An expected failure: reported without a traceback."""


def _say(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def caller_environment() -> dict[str, str]:
    """This process's environment, passed on to the engine and apt (a build script, not a
    service: there is no settings object to read it once)."""
    return dict(os.environ)  # noqa: TID251


def host_ca_bundle() -> Path | None:
    """The CA bundle this host trusts, when there is one (SSL_CERT_FILE, or Debian's path)."""
    for candidate in (
        caller_environment().get("SSL_CERT_FILE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@dataclass(frozen=True)
class Engine:
    program: str  # what to run: "docker", "podman" or a path to either
    podman: bool

    @property
    def name(self) -> str:
        return "podman" if self.podman else "docker"

    def environment(self) -> dict[str, str]:
        env = caller_environment()
        if self.podman:
            env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
            env.setdefault("BUILDAH_ISOLATION", "chroot")
            env.setdefault("BUILDAH_FORMAT", "docker")
        return env

    def run(
        self,
        *args: str,
        check: bool = True,
        capture: bool = True,
        timeout: float | None = None,
        log: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the engine; with ``log``, its output goes to that file (and its tail into the
        error when it fails)."""
        argv = [self.program, *args]
        try:
            if log is not None:
                with log.open("w") as out:
                    done = subprocess.run(
                        argv,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        text=True,
                        env=self.environment(),
                        timeout=timeout,
                        check=False,
                    )
            else:
                done = subprocess.run(
                    argv,
                    capture_output=capture,
                    text=True,
                    env=self.environment(),
                    timeout=timeout,
                    check=False,
                )
        except subprocess.TimeoutExpired:
            raise EngineError(f"{self.name} {args[0]} did not finish within {timeout} s") from None
        if check and done.returncode != 0:
            if log is not None:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                detail = "\n  ".join(tail)
                raise EngineError(f"{self.name} {args[0]} failed (log: {log}):\n  {detail}")
            first = (done.stderr or "").strip().splitlines()
            reason = first[-1] if first else f"exit status {done.returncode}"
            raise EngineError(f"{self.name} {' '.join(args[:2])} failed: {reason}")
        return done

    def image_id(self, ref: str) -> str | None:
        done = self.run("image", "inspect", "--format", "{{.Id}}", ref, check=False)
        return (done.stdout.strip() or None) if done.returncode == 0 else None

    def build_flags(self) -> list[str]:
        """Flags for every `build`: podman mounts the host's CA bundle into each RUN step."""
        bundle = host_ca_bundle()
        if self.podman and bundle is not None:
            return ["--volume", f"{bundle}:/etc/ssl/certs/ca-certificates.crt:ro"]
        return []

    def network_flags(self, network: bool) -> list[str]:
        """`run` flags: no network at all, or one whose ports publish on 127.0.0.1 only (rootful
        podman's default bridge needs iptables and a firewall we do not have)."""
        if not network:
            return ["--network", "none"]
        if self.podman:
            return ["--network", "slirp4netns:port_handler=slirp4netns"]
        return []

    def read_only_flags(self) -> list[str]:
        """A read-only root filesystem with nothing writable added (podman would add tmpfs
        mounts on /tmp, /var/tmp and /run; Docker adds none)."""
        return ["--read-only", "--read-only-tmpfs=false"] if self.podman else ["--read-only"]


def _answers(program: str) -> bool:
    try:
        done = subprocess.run([program, "info"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _apt_install(packages: Sequence[str], missing: str) -> None:
    """Install ``packages`` with apt-get when we are root on Debian/Ubuntu, else say how."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise EngineError(
            f"{missing} (as root on Debian/Ubuntu: apt-get install -y {' '.join(packages)})"
        )
    _say(f"installing {' '.join(packages)} with apt-get (once)")
    env = {**caller_environment(), "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        for attempt in range(1, APT_ATTEMPTS + 1):  # a mirror's hiccup should not fail CI
            done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
            if done.returncode == 0:
                break
            if attempt == APT_ATTEMPTS:
                lines = (done.stderr or done.stdout).strip().splitlines()
                raise EngineError(f"{' '.join(argv[:2])} failed: {lines[-1] if lines else '?'}")
            time.sleep(5 * attempt)


def find_engine(requested: str | None = None) -> Engine:
    """The engine to use: ``requested`` (DOCKER=...) if given, else Docker when its engine
    answers, else podman (installed through apt when missing, if we may)."""
    if requested:
        podman = "podman" in Path(requested).name
        if not podman and not _answers(requested):
            raise EngineError(
                f"no Docker engine answers ({requested} info failed): start Docker,"
                " or leave DOCKER unset to build with podman"
            )
        if podman and shutil.which(requested) is None:
            _apt_install(APT_PACKAGES, f"{requested} not found")
        return Engine(requested, podman)
    if shutil.which("docker") and _answers("docker"):
        return Engine("docker", podman=False)
    if shutil.which("podman") is None:
        _apt_install(APT_PACKAGES, "no container engine: start Docker, or install podman")
    return Engine("podman", podman=True)


def python_base(engine: Engine, requested: str | None = None) -> str:
    """The base image for the Dockerfiles' PYTHON_IMAGE: ``requested`` if given, else as the
    module docstring says (a pull is tried only when neither base is present)."""
    if requested:
        return requested
    if engine.image_id(UPSTREAM_BASE):
        return UPSTREAM_BASE
    if engine.image_id(STAND_IN_BASE):
        return STAND_IN_BASE
    try:
        pulled = engine.run("pull", "--quiet", UPSTREAM_BASE, check=False, timeout=PULL_TIMEOUT)
    except EngineError:  # timed out: as good as refused
        pulled = None
    if pulled is not None and pulled.returncode == 0:
        return UPSTREAM_BASE
    _say(f"{UPSTREAM_BASE} cannot be pulled: building the stand-in {STAND_IN_BASE} (once)")
    if shutil.which("debootstrap") is None:
        _apt_install(["debootstrap"], "the stand-in base needs debootstrap")
    for attempt in range(1, APT_ATTEMPTS + 1):  # debootstrap fetches ~100 packages: retry a hiccup
        done = subprocess.run(
            ["bash", str(BASE_SCRIPT), STAND_IN_BASE],
            env={**engine.environment(), "DOCKER": engine.program},
            check=False,
        )
        if done.returncode == 0 and engine.image_id(STAND_IN_BASE):
            return STAND_IN_BASE
        _say(f"{BASE_SCRIPT.name} failed (attempt {attempt} of {APT_ATTEMPTS})")
    raise EngineError(f"could not build {STAND_IN_BASE} with {BASE_SCRIPT.name}")
