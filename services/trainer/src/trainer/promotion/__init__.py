"""Promotion: the gates, the smoke gate, deployment references, the registry, and the
promote, rollback and retrain commands."""
