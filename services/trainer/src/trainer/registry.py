"""The MLflow model registry side of a promotion: find the registered version of an artifact and
move the ``staging`` / ``production`` alias to it.

A registered version is found by its provenance tags (``model_version`` *and*
``manifest_sha256``, written by ``trainer train``), never by MLflow's own version number: two
artifact roots can both hold a v001, but never with the same manifest digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainer.errors import TrackingError
from trainer.training.tracking import store_lock


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str  # MLflow's number
    model_version: str  # ours, vNNN
    aliases: tuple[str, ...]


class Registry:
    def __init__(self, tracking_uri: str, name: str) -> None:
        self.tracking_uri = tracking_uri
        self.name = name

    def _client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def find(self, model_version: str, manifest_sha256: str) -> RegisteredVersion:
        from mlflow.exceptions import MlflowException

        query = (
            f"name = '{_quote(self.name)}' and tags.model_version = '{_quote(model_version)}'"
            f" and tags.manifest_sha256 = '{_quote(manifest_sha256)}'"
        )
        try:
            with store_lock(self.tracking_uri):
                found = self._client().search_model_versions(query)
        except MlflowException as exc:
            raise TrackingError(
                f"MLflow registry at {self.tracking_uri}: {_first_line(exc)}"
            ) from None
        if not found:
            raise TrackingError(
                f"no version of registered model {self.name!r} is tagged model_version="
                f"{model_version} with manifest sha256 {manifest_sha256[:12]}… "
                f"(registry {self.tracking_uri})"
            )
        newest = max(found, key=lambda item: int(item.version))
        return RegisteredVersion(
            self.name, str(newest.version), model_version, tuple(newest.aliases or ())
        )

    def alias(self, alias: str) -> RegisteredVersion | None:
        """The version ``alias`` points at, or None when the alias (or the model) is not set."""
        from mlflow.exceptions import MlflowException

        try:
            with store_lock(self.tracking_uri):
                found = self._client().get_model_version_by_alias(self.name, alias)
        except MlflowException:
            return None
        return RegisteredVersion(
            self.name,
            str(found.version),
            str(found.tags.get("model_version", "")),
            tuple(found.aliases or ()),
        )

    def move_alias(self, alias: str, version: RegisteredVersion, tags: dict[str, str]) -> None:
        """Point ``alias`` at ``version`` (MLflow moves it off any other version) and tag it."""
        from mlflow.exceptions import MlflowException

        try:
            with store_lock(self.tracking_uri):
                client = self._client()
                client.set_registered_model_alias(self.name, alias, version.version)
                for key, value in tags.items():
                    client.set_model_version_tag(self.name, version.version, key, value)
        except MlflowException as exc:
            raise TrackingError(
                f"MLflow registry at {self.tracking_uri}: {_first_line(exc)}"
            ) from None


def _quote(text: str) -> str:
    return text.replace("'", "\\'")


def _first_line(exc: Any) -> str:
    return str(getattr(exc, "message", exc)).strip().splitlines()[0]
