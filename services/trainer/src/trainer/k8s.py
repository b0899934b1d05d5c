"""``trainer render-k8s``: the Kubernetes manifests of infra/k8s/ filled in for one target.

The templates are plain YAML whose string values may be ``${PLACEHOLDER}``s (so they validate
as they are); each value is written as a JSON string, which YAML reads back as exactly that
string, whatever characters the reference holds. Every template is rendered in memory before
anything is written, and each file is replaced atomically.
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
from pathlib import Path
from typing import Any

from artifact_contract import Reference
from artifact_contract.files import atomic_write_text

from trainer import handoff
from trainer.errors import EXIT_OK
from trainer.settings import Settings

TEMPLATES = Path("infra") / "k8s"
# A Service name is a DNS-1035 label.
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render-k8s",
        help="render infra/k8s/ for a target's promoted model (kubectl apply -f OUT)",
        description="Fill in the Kubernetes manifests (Deployment, Service, "
        "HorizontalPodAutoscaler, ...) with the inference image and the target's deployment "
        "reference: its S3 artifact as MODEL_ARTIFACT_URI and its digest as MODEL_SHA256.",
    )
    handoff.add_reference_arguments(parser)
    parser.add_argument("--image", required=True, help="inference image, e.g. REGISTRY/NAME:TAG")
    parser.add_argument("--out", type=Path, required=True, help="directory for the manifests")
    parser.add_argument("--name", help="resource name (default mlpipeline-inference-<target>)")
    parser.add_argument(
        "--templates", type=Path, help=f"template directory (default <repo>/{TEMPLATES})"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    reference = handoff.load_reference(settings, args.target, args.reference)
    values = placeholder_values(
        reference,
        target=args.target,
        image=args.image,
        name=args.name or f"mlpipeline-inference-{args.target}",
    )
    templates = args.templates or settings.repo_root / TEMPLATES
    written = write(args.out, render(templates, values))
    summary = {
        "out": str(args.out),
        "files": [path.name for path in written],
        "model_version": reference.model_version,
        "manifest_sha256": reference.manifest_sha256,
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return EXIT_OK


def placeholder_values(
    reference: Reference, *, target: str, image: str, name: str
) -> dict[str, str]:
    if not _NAME.match(name):
        raise handoff.HandoffError(
            f"--name {name!r}: 1-63 lower-case letters, digits and hyphens, starting with a letter"
        )
    if not image.strip() or any(char.isspace() for char in image):
        raise handoff.HandoffError(f"--image {image!r} is not an image reference")
    return {
        "NAME": name,
        "TARGET": target,
        "IMAGE": image,
        "MODEL_ARTIFACT_URI": handoff.s3_artifact(reference),
        "MODEL_SHA256": reference.manifest_sha256,
        "MODEL_VERSION": reference.model_version,
    }


def render(templates: Path, values: dict[str, str]) -> dict[str, str]:
    """Every ``*.yaml`` of ``templates`` with its placeholders filled: file name -> text."""
    sources = sorted(templates.glob("*.yaml"))
    if not sources:
        raise handoff.HandoffError(f"{templates}: no *.yaml templates to render")
    quoted = {key: json.dumps(value) for key, value in values.items()}
    rendered = {}
    for source in sources:
        try:
            rendered[source.name] = string.Template(source.read_text("utf-8")).substitute(quoted)
        except KeyError as exc:
            raise handoff.HandoffError(
                f"{source}: unknown placeholder ${{{exc.args[0]}}} (known: {', '.join(values)})"
            ) from None
        except ValueError as exc:
            raise handoff.HandoffError(f"{source}: {exc}") from None
    return rendered


def write(out: Path, rendered: dict[str, str]) -> list[Path]:
    try:
        return [_write_file(out / name, text) for name, text in rendered.items()]
    except OSError as exc:
        raise handoff.HandoffError(f"{out}: cannot write ({exc.strerror})") from None


def _write_file(path: Path, text: str) -> Path:
    atomic_write_text(path, text)
    return path
