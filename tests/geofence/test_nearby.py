"""The fences kept around each device answer exactly what the whole index answers."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from geofence.engine import PresenceEngine
from geofence.geometry import haversine_m
from geofence.index import FenceEntry, FenceIndex
from geofence.models import ConsentRecord
from geofence.nearby import NEARBY_M, NearbyCache
from geofence.state import Everyone, FixEvidence, PresenceState
from tests.geofence.fences import PARIS, entry, offset

T0 = 1_700_000_000.0
EVERYONE = Everyone()
RECTANGLE = [(-30.0, -20.0), (30.0, -20.0), (30.0, 20.0), (-30.0, 20.0), (-30.0, -20.0)]


def _ids(found: Sequence[tuple[FenceEntry, float | None]]) -> set[str]:
    return {e.store_id for e, _ in found}


def _same_answer(
    mine: Sequence[tuple[FenceEntry, float | None]],
    everyone: Sequence[tuple[FenceEntry, float]],
) -> None:
    """The same fences, each once; where the device's answer measured a distance, the same
    distance (None: certain to hold by the triangle inequality, not measured)."""
    assert _ids(mine) == _ids(everyone)
    assert len(mine) == len(_ids(mine))
    exact = {e.store_id: d for e, d in everyone}
    for e, d in mine:
        assert d is None or d == exact[e.store_id]


def test_walks_with_edits_see_what_the_index_sees() -> None:
    """Users walk (steps of 0 to 2x the gathering radius) through a crowded square while
    stores are added, moved and removed around them; every fix finds the same fences with
    the same distances as a lookup in the whole index."""
    rng = random.Random(7)
    index = FenceIndex()
    for i in range(300):
        where = offset(*PARIS, rng.uniform(-300, 300), rng.uniform(-300, 300))
        index.put(entry(f"sto_{i}", *where, radius_m=rng.choice([20, 30, 60, 120, 700])))
    cache = NearbyCache(size=2)  # three users: evictions happen too
    walkers = {f"usr_{u}": offset(*PARIS, rng.uniform(-200, 200), 0) for u in range(3)}
    for step in range(600):
        user = rng.choice(list(walkers))
        east, north = rng.uniform(-2, 2) * NEARBY_M, rng.uniform(-2, 2) * NEARBY_M
        if rng.random() < 0.5:
            east, north = east / 20, north / 20  # mostly small steps, as phones report
        lat, lon = offset(*walkers[user], east, north)
        walkers[user] = (lat, lon)
        if step % 7 == 0:
            # An edit right where the user stands: it must be seen on this very fix.
            moved = f"sto_{rng.randrange(300)}"
            index.put(entry(moved, *offset(lat, lon, rng.uniform(-20, 20), 0), radius_m=30))
        if step % 11 == 0:
            index.remove(f"sto_{rng.randrange(300)}")
        _same_answer(cache.fences_for(index, user).containing(lat, lon), index.containing(lat, lon))


def test_a_walk_along_fence_edges_is_decided_exactly() -> None:
    """Fixes a few centimetres either side of a fence's edge, up to 50 m from where the
    fences were gathered: that fence is measured, the others around it are mostly decided by
    the bounds, and each is called as the index calls it."""
    rng = random.Random(11)
    index = FenceIndex()
    for i in range(60):
        where = offset(*PARIS, rng.uniform(-40, 40), rng.uniform(-40, 40))
        index.put(entry(f"sto_{i}", *where, radius_m=rng.uniform(20, 80)))
    cache = NearbyCache(size=10)
    fences = list(index.entries())
    for step in range(2000):
        fence = rng.choice(fences)
        # On the fence's edge, at a random bearing, give or take 5 cm.
        bearing = rng.uniform(0, 2 * math.pi)
        edge = fence.reach_m + rng.uniform(-0.05, 0.05)
        lat, lon = offset(fence.lat, fence.lon, edge * math.sin(bearing), edge * math.cos(bearing))
        if step % 50 == 0:
            cache.fences_for(index, "usr_1").containing(*PARIS)  # gathered at the square
        if haversine_m(*PARIS, lat, lon) > NEARBY_M:
            continue
        _same_answer(
            cache.fences_for(index, "usr_1").containing(lat, lon), index.containing(lat, lon)
        )


def test_a_fresh_index_is_never_answered_from_an_older_one() -> None:
    old, new = FenceIndex(), FenceIndex()
    old.put(entry("sto_gone", *PARIS, radius_m=50))
    cache = NearbyCache(size=10)
    assert _ids(cache.fences_for(old, "usr_1").containing(*PARIS)) == {"sto_gone"}
    # A reload swaps in another index (same number of edits): nothing carries over.
    new.put(entry("sto_new", *PARIS, radius_m=50))
    assert _ids(cache.fences_for(new, "usr_1").containing(*PARIS)) == {"sto_new"}


def test_the_engine_over_a_device_s_fences_emits_what_it_emits_over_the_index() -> None:
    """Phones wander through a crowded square (circles and rectangles, per-store exit
    margins, fixes of 5 to 60 m accuracy, steps from centimetres to twice the gathering
    radius): every fix gives the same transitions whether the engine asks the device's
    fences, bounds and all, or the whole index (the order of one fix's enters aside; an
    unmeasured fence is measured on the great circle where the index reads it planar, a
    1.1 mm difference that could only show on a fix that close to an accuracy limit)."""
    rng = random.Random(5)
    index = FenceIndex()
    for i in range(150):
        lat, lon = offset(*PARIS, rng.uniform(-250, 250), rng.uniform(-250, 250))
        if i % 10 == 0:
            ring = [list(offset(lat, lon, e, n))[::-1] for e, n in RECTANGLE]
            index.put(entry(f"sto_{i}", lat, lon, polygon=[ring]))
        else:
            margin = rng.choice([None, 0.0, 10.0, 80.0])
            index.put(
                entry(f"sto_{i}", lat, lon, radius_m=rng.uniform(20, 90), exit_margin_m=margin)
            )
    cache = NearbyCache(size=10)
    engine = PresenceEngine(lambda: "vis_same")
    fresh = PresenceState(consent=ConsentRecord(location=True, discovery=True))
    for user in range(4):
        mine, theirs = fresh, fresh
        where = offset(*PARIS, rng.uniform(-200, 200), rng.uniform(-200, 200))
        for step in range(400):
            scale = rng.choice([0.02, 0.2, 2.0, 10.0, 60.0])
            where = offset(*where, rng.uniform(-scale, scale), rng.uniform(-scale, scale))
            fix = [FixEvidence(*where, rng.choice([5.0, 10.0, 30.0, 60.0]), T0 + step)]
            a = engine.locate(mine, fix, cache.fences_for(index, f"usr_{user}"), EVERYONE, T0)
            b = engine.locate(theirs, fix, index, EVERYONE, T0)
            # Transitions of one fix come out in the order fences were found: compare sets.
            assert sorted(a.transitions) == sorted(b.transitions)
            assert a.state.visits.keys() == b.state.visits.keys()
            mine, theirs = a.state, b.state


def test_large_fences_near_the_pole_are_decided_exactly() -> None:
    """5 km circles at 84.5 deg, where a planar reading of their distance is ~15 mm long,
    whose edges pass within 2 cm of where the fences were gathered; fixes within 3 cm of
    that point are called as the index calls them."""
    rng = random.Random(3)
    here = (84.5, 10.0)
    index = FenceIndex()
    for i in range(40):
        away, bearing = rng.uniform(4_500, 4_950), rng.uniform(0, 2 * math.pi)
        centre = offset(*here, away * math.sin(bearing), away * math.cos(bearing))
        radius = haversine_m(*here, *centre) + rng.uniform(-0.02, 0.02)
        index.put(entry(f"sto_{i}", *centre, radius_m=radius))
    cache = NearbyCache(size=10)
    cache.fences_for(index, "usr_1").containing(*here)  # gathered here
    for _ in range(3000):
        lat, lon = offset(*here, rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03))
        _same_answer(
            cache.fences_for(index, "usr_1").containing(lat, lon), index.containing(lat, lon)
        )
