"""``MODEL_REFERENCE``: serve what a deployment reference names.

The reference (``<target>.json``, written by ``trainer promote``; format in the contract library)
is a local path, ``file://`` or ``s3://bucket/key``. Its ``artifact_uri`` becomes the model
source and its ``manifest_sha256`` the digest the artifact must have: a changed artifact is
refused exactly as with ``MODEL_SHA256``.
"""

from __future__ import annotations

from dataclasses import replace

from artifact_contract import ContractError, Reference, parse_reference
from artifact_contract.uris import S3Location, UnsupportedURI, parse_location

from inference.errors import ConfigurationError, ModelSourceError
from inference.settings import Settings


def read_reference(location: str) -> Reference:
    """The reference at ``location``; one-line ModelSourceError when unreadable or malformed."""
    try:
        return parse_reference(_read_bytes(location), location)
    except ContractError as exc:
        raise ModelSourceError(f"MODEL_REFERENCE {exc}") from None


def resolve(settings: Settings) -> Settings:
    """Settings with the model source and digest the reference names (unchanged without one)."""
    location = settings.model_reference_uri
    if location is None:
        return settings
    if settings.model_artifact_uri is not None or settings.model_sha256 is not None:
        raise ConfigurationError(
            "MODEL_REFERENCE names the model and its digest: leave MODEL_ARTIFACT_URI and "
            "MODEL_SHA256 unset"
        )
    return follow(settings, read_reference(location))


def follow(settings: Settings, reference: Reference) -> Settings:
    return replace(
        settings,
        model_artifact_uri=reference.artifact_uri,
        model_sha256=reference.manifest_sha256,
    )


def _read_bytes(location: str) -> bytes:
    try:
        where = parse_location(location)
    except UnsupportedURI:
        raise ModelSourceError(
            f"MODEL_REFERENCE {location}: use a path, file:// or s3://bucket/key"
        ) from None
    if isinstance(where, S3Location):
        return _read_s3(where.bucket, where.key, location)
    try:
        return where.read_bytes()
    except OSError as exc:
        raise ModelSourceError(
            f"MODEL_REFERENCE {location}: cannot read ({exc.strerror})"
        ) from None


def _read_s3(bucket: str, key: str, location: str) -> bytes:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = boto3.client("s3").get_object(Bucket=bucket, Key=key)
        return bytes(response["Body"].read())
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ModelSourceError(f"MODEL_REFERENCE {location}: cannot read ({code})") from None
    except BotoCoreError as exc:
        raise ModelSourceError(f"MODEL_REFERENCE {location}: cannot read ({exc})") from None
