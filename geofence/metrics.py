"""Prometheus counters of the presence engine (served by ``GET /metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

IGNORED = Counter(
    "wallet_presence_ignored_total",
    "Evidence the presence engine did not use, by input and reason",
    ["input", "reason"],
)
TRANSITIONS = Counter(
    "wallet_presence_transitions_total", "Presence transitions emitted, by type", ["type"]
)
TRANSITIONS_BY_TYPE = {kind: TRANSITIONS.labels(kind) for kind in ("enter", "exit", "dwell")}
"""Resolved once: ``labels()`` costs a lock and a dict lookup per call on the hot path."""
CONFLICTS = Counter(
    "wallet_presence_conflicts_total",
    "Write-backs refused because the user's state changed meanwhile (then retried)",
)
INDEX_CHANGES = Counter(
    "wallet_presence_index_changes_total", "Store changes applied to this worker's fence index"
)
