"""``to_rfc3339`` stamps every transition in the stream campaigns read: it must write what
the standard library writes, to the millisecond, also where rounding carries."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from kernel.clock import to_rfc3339


def _stdlib(ts: float) -> str:
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@pytest.mark.parametrize(
    "ts",
    [
        0.0,
        1763900000.0,
        1763900000.0005,  # half a millisecond: truncated, not rounded
        1763900000.9995,
        1763900000.9999996,  # rounds up to the next second
        1763900000.9999994,
        -0.0000004,
        -1.5,
        951782400.25,  # 2000-02-29
        4102444799.999,  # 2099-12-31T23:59:59.999
    ],
)
def test_edges_match_the_standard_library(ts: float) -> None:
    assert to_rfc3339(ts) == _stdlib(ts)


def test_any_timestamp_matches_the_standard_library() -> None:
    rng = random.Random(20261123)
    for _ in range(20_000):
        ts = rng.randrange(-(10**9), 4 * 10**9) + rng.randrange(10**6) / 1e6
        ts += rng.choice([0.0, 5e-7, -5e-7, 4.999e-4])
        assert to_rfc3339(ts) == _stdlib(ts), ts


def test_repeated_and_alternating_seconds() -> None:
    """The last second's text is reused: it must never leak into another second."""
    for ts in [1763900000.1, 1763900000.2, 1763900001.3, 1763900000.4, 1763900001.5]:
        assert to_rfc3339(ts) == _stdlib(ts)
