"""The registry side of promotion on a real SQLite MLflow store (versions registered directly,
no training): aliases move, and the version an alias leaves stops claiming that target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trainer.promotion.registry import RegisteredVersion, Registry

NAME = "registry-tests"


def register(client: Any, model_version: str, tags: dict[str, str] | None = None) -> str:
    created = client.create_model_version(
        NAME,
        source=f"file:///runs/{model_version}",
        tags={"model_version": model_version, "manifest_sha256": model_version[-1] * 64},
    )
    for key, value in (tags or {}).items():
        client.set_model_version_tag(NAME, created.version, key, value)
    return str(created.version)


@pytest.fixture
def store(tmp_path: Path) -> tuple[Registry, Any]:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(NAME)
    return Registry(uri, NAME), client


def promotion_tags(client: Any, number: str) -> dict[str, str]:
    tags = client.get_model_version(NAME, number).tags
    return {
        key: value for key, value in tags.items() if key not in ("model_version", "manifest_sha256")
    }


def test_only_one_version_claims_a_target_after_the_alias_moves(
    store: tuple[Registry, Any],
) -> None:
    registry, client = store
    # v001 was promoted before per-target tags: one flat set describing its last promotion.
    legacy = {"promoted_to": "production", "approved_by": "alice", "promoted_at": "t0"}
    one = register(client, "v001", legacy)
    two = register(client, "v002")
    first = registry.find("v001", "1" * 64)
    second = registry.find("v002", "2" * 64)
    assert isinstance(second, RegisteredVersion) and second.version == two

    registry.move_alias("production", first, {"promoted_at": "t1", "approved_by": "alice"})
    assert promotion_tags(client, one) == {
        "promoted_to": "production",
        "production.promoted_at": "t1",
        "production.approved_by": "alice",
    }

    registry.move_alias("staging", second, {"promoted_at": "t2", "approved_by": ""})
    registry.move_alias(
        "production", second, {"promoted_at": "t3", "approved_by": "bob", "policy_sha256": "p"}
    )
    assert promotion_tags(client, one) == {}  # holds nothing: claims nothing
    assert promotion_tags(client, two) == {
        "promoted_to": "staging,production",
        "staging.promoted_at": "t2",
        "staging.approved_by": "",
        "production.promoted_at": "t3",
        "production.approved_by": "bob",
        "production.policy_sha256": "p",
    }

    # A rollback moves production back: v002 keeps only its staging claim.
    registry.move_alias("production", first, {"promoted_at": "t4", "approved_by": "alice"})
    assert promotion_tags(client, two) == {
        "promoted_to": "staging",
        "staging.promoted_at": "t2",
        "staging.approved_by": "",
    }
    assert promotion_tags(client, one)["promoted_to"] == "production"
    assert registry.alias("production") == RegisteredVersion(NAME, one, "v001", ("production",))
