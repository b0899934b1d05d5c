"""The record of one promotion or rollback: what ``promote`` and ``rollback`` print (and write to
``--record``), and what ``history.jsonl`` keeps. It is filled in as the command goes (gates, then
the install, then a post-promotion verification); ``to_dict`` is its JSON form, whose keys are
the history's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from artifact_contract import GitInfo, Reference

from trainer.policy import PromotionPolicy
from trainer.promotion.gates import Gate
from trainer.settings import Settings
from trainer.training import provenance

if TYPE_CHECKING:
    from trainer.promotion.verify import Verification

Event = Literal["promote", "rollback"]


@dataclass(frozen=True)
class RegistryAlias:
    """Where the target's registry alias points after the install."""

    name: str
    version: str  # MLflow's number
    alias: str
    tracking_uri: str


@dataclass
class PromotionRecord:
    event: Event
    target: str
    at: str
    model_version: str  # the version being installed
    current: Reference | None  # the target's reference before ("from")
    approved_by: str | None
    policy: PromotionPolicy | None
    git: GitInfo | None
    outcome: str = "started"
    gates: list[Gate] = field(default_factory=list)
    installed: Reference | None = None  # the target's reference after ("to")
    registry: RegistryAlias | None = None
    reason: str | None = None  # set: an automatic rollback, and why
    refused_at: str | None = None  # the gate that said no
    verification: Verification | None = None  # promote --verify-url
    rollback: PromotionRecord | None = None  # the automatic rollback after a failed verification

    @classmethod
    def start(
        cls,
        settings: Settings,
        event: Event,
        target: str,
        model_version: str,
        current: Reference | None,
        policy: PromotionPolicy | None,
        approved_by: str | None,
        reason: str | None = None,
    ) -> PromotionRecord:
        return cls(
            event=event,
            target=target,
            at=provenance.utc_now(),
            model_version=model_version,
            current=current,
            approved_by=approved_by,
            policy=policy,
            git=provenance.git_info(settings.repo_root),
            reason=reason,
        )

    @property
    def from_version(self) -> str | None:
        return self.current.model_version if self.current else None

    @property
    def to_version(self) -> str | None:
        return self.installed.model_version if self.installed else None

    def add_gate(self, gate: Gate) -> int:
        """Record a gate that ran; its number (1-based). A failed gate refuses the record."""
        self.gates.append(gate)
        if not gate.passed:
            self.outcome = "refused"
            self.refused_at = gate.name
        return len(self.gates)

    def install(self, reference: Reference, registry: RegistryAlias) -> None:
        self.outcome = "promoted" if self.event == "promote" else "rolled_back"
        self.installed = reference
        self.registry = registry

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "event": self.event,
            "target": self.target,
            "at": self.at,
            "outcome": self.outcome,
            "model_version": self.model_version,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "from": self.current.to_dict() if self.current else None,
            "to": self.installed.to_dict() if self.installed else None,
            "approved_by": self.approved_by,
            "gates": [gate.to_dict() for gate in self.gates],
            "policy": None
            if self.policy is None
            else {"path": str(self.policy.path), "sha256": self.policy.sha256},
            "git": None
            if self.git is None
            else {"commit": self.git.commit, "dirty": self.git.dirty},
            "registry": None
            if self.registry is None
            else {
                "name": self.registry.name,
                "version": self.registry.version,
                "alias": self.registry.alias,
                "tracking_uri": self.registry.tracking_uri,
            },
        }
        if self.reason is not None:
            record.update(automatic=True, reason=self.reason)
        if self.refused_at is not None:
            record["refused_at"] = self.refused_at
        if self.verification is not None:
            record["verification"] = self.verification.to_dict()
            if not self.verification.passed:
                # null: the automatic rollback itself failed
                rolled = self.rollback
                record["rolled_back_by"] = (
                    None if rolled is None else {"to_version": rolled.to_version, "at": rolled.at}
                )
        return record
