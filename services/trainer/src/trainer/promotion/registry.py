"""The MLflow model registry side of a promotion: find the registered version of an artifact and
move the ``staging`` / ``production`` alias to it.

A registered version is found by its provenance tags (``model_version`` *and*
``manifest_sha256``, written by ``trainer train``), never by MLflow's own version number: two
artifact roots can both hold a v001, but never with the same manifest digest.

Promotion tags say which targets a version holds *now*: ``promoted_to`` lists them
("staging,production"), and ``<target>.promoted_at`` / ``<target>.approved_by`` /
``<target>.policy_sha256`` describe each. When an alias moves on (a newer promotion, a rollback)
the version it leaves loses that target's tags, so only one version ever claims a target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from artifact_contract.errors import first_line

from trainer.errors import TrackingError
from trainer.promotion.deployments import TARGETS
from trainer.training.tracking import store_lock

PROMOTED_TO = "promoted_to"
TARGET_TAGS = ("promoted_at", "approved_by", "policy_sha256")
# Before per-target tags, one flat set described a version's last promotion; a version an alias
# moves to or from loses it.
LEGACY_TAGS = ("promoted_at", "approved_by", "policy_sha256")


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
                f"MLflow registry at {self.tracking_uri}: {first_line(exc)}"
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
        """Point ``alias`` at ``version`` (MLflow moves it off any other version), tag it with
        ``<alias>.<key>`` for each of ``tags``, and strip the version it left of that alias's
        tags, so the registry never shows two versions claiming one target."""
        from mlflow.exceptions import MlflowException

        try:
            with store_lock(self.tracking_uri):
                client = self._client()
                try:
                    left = str(client.get_model_version_by_alias(self.name, alias).version)
                except MlflowException:
                    left = None  # nothing held the alias yet
                client.set_registered_model_alias(self.name, alias, version.version)
                for key, value in tags.items():
                    client.set_model_version_tag(
                        self.name, version.version, f"{alias}.{key}", value
                    )
                self._retag(client, version.version, drop=())
                if left is not None and left != version.version:
                    self._retag(client, left, drop=tuple(f"{alias}.{key}" for key in TARGET_TAGS))
        except MlflowException as exc:
            raise TrackingError(
                f"MLflow registry at {self.tracking_uri}: {first_line(exc)}"
            ) from None

    def _retag(self, client: Any, number: str, drop: tuple[str, ...]) -> None:
        """Drop ``drop`` and the legacy tags from a version; set ``promoted_to`` from the
        aliases it holds now (removed when it holds none)."""
        found = client.get_model_version(self.name, number)
        for key in (*drop, *LEGACY_TAGS):
            if key in found.tags:
                client.delete_model_version_tag(self.name, number, key)
        held = [target for target in TARGETS if target in (found.aliases or ())]
        if held:
            client.set_model_version_tag(self.name, number, PROMOTED_TO, ",".join(held))
        elif PROMOTED_TO in found.tags:
            client.delete_model_version_tag(self.name, number, PROMOTED_TO)


def _quote(text: str) -> str:
    return text.replace("'", "\\'")
