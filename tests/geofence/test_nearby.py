"""The fences kept around each device answer exactly what the whole index answers."""

from __future__ import annotations

import random

from geofence.index import FenceIndex
from geofence.nearby import NEARBY_M, NearbyCache
from tests.geofence.fences import PARIS, entry, offset


def _ids(found: list) -> set[str]:  # type: ignore[type-arg]
    return {e.store_id for e, _ in found}


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
        mine = cache.fences_for(index, user).containing(lat, lon)
        everyone = index.containing(lat, lon)
        assert _ids(mine) == _ids(everyone)
        assert sorted(d for _, d in mine) == sorted(d for _, d in everyone)


def test_a_fresh_index_is_never_answered_from_an_older_one() -> None:
    old, new = FenceIndex(), FenceIndex()
    old.put(entry("sto_gone", *PARIS, radius_m=50))
    cache = NearbyCache(size=10)
    assert _ids(cache.fences_for(old, "usr_1").containing(*PARIS)) == {"sto_gone"}
    # A reload swaps in another index (same number of edits): nothing carries over.
    new.put(entry("sto_new", *PARIS, radius_m=50))
    assert _ids(cache.fences_for(new, "usr_1").containing(*PARIS)) == {"sto_new"}
