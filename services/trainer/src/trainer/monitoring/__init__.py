"""Monitoring: sampled prediction logs, drift against the training profile, test traffic."""
