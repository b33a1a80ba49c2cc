"""The engine's rules, each shown by a scripted walk (pure: no Redis, no clock)."""

from __future__ import annotations

import pytest

from geofence.state import HeldPrograms, MembershipNeeded, Undecided
from tests.geofence.fences import PARIS, index_of, offset, record, ring_m
from tests.geofence.walks import Walk

A = "sto_a"


def shop(**fields: object) -> Walk:
    """One 50 m store at the walk's origin (default exit margin: max(50, 25) = 50 m)."""
    return Walk(index_of(record(A, *PARIS, **fields)), PARIS)  # type: ignore[arg-type]


def test_approach_enter_linger_leave() -> None:
    walk = shop()
    assert walk.fix(0, 500) == []
    assert walk.fix(30, 200) == []
    assert walk.fix(60, 80) == []  # 30 m outside the edge: not inside yet
    assert walk.fix(90, 10) == [("enter", A, None, 90)]
    for at in range(150, 390, 60):
        assert walk.fix(at, 15, 5) == []
    assert walk.fix(390, 5) == [("dwell", A, None, 390)]
    assert walk.fix(450, 20) == []  # dwell fires once per visit
    assert walk.fix(540, 70) == []  # 20 m past the edge: inside the exit margin
    assert walk.fix(570, 150) == [("exit", A, None, 570)]
    assert walk.last is not None
    [visit] = walk.last.closed
    assert (visit.entered_at, visit.exited_at, visit.dwelled) == (walk.now - 480, walk.now, True)


def test_standing_on_the_boundary_does_not_flap() -> None:
    walk = shop()
    distances = [60, 40, 60, 45, 55, 35, 65, 48, 52, 40, 90, 100]
    for i, metres in enumerate(distances):
        walk.fix(10 * i, metres)
    assert walk.transitions == [("enter", A, None, 10)]


def test_a_fix_much_less_accurate_than_the_fence_is_no_evidence_of_inside() -> None:
    walk = shop()
    assert walk.fix(0, 0, accuracy_m=500) == []
    assert walk.fix(10, 0, accuracy_m=101) == []  # more than twice the 50 m radius
    assert walk.fix(20, 0, accuracy_m=20) == [("enter", A, None, 20)]
    # ...and it is no evidence of outside either: a vague fix keeps the visit.
    assert walk.fix(30, 120, accuracy_m=400) == []


def test_the_exit_margin_is_per_store() -> None:
    tight = shop(exit_margin_m=0)
    default = shop()
    for walk in (tight, default):
        walk.fix(0, 0)
    assert tight.fix(10, 75) == [("exit", A, None, 10)]  # 25 m out, beyond 0 m + accuracy
    assert default.fix(10, 75) == []


def test_a_batch_out_of_order_is_applied_in_time_order() -> None:
    ordered, shuffled = shop(), shop()
    fixes = [(0, 500, 0, 10), (30, 200, 0, 10), (60, 10, 0, 10), (90, 0, 0, 10), (120, 200, 0, 10)]
    ordered.fixes(fixes)
    shuffled.fixes([fixes[3], fixes[0], fixes[4], fixes[2], fixes[1]])
    expected = [("enter", A, None, 60), ("exit", A, None, 120)]
    assert ordered.transitions == shuffled.transitions == expected


def test_stale_and_out_of_order_fixes_create_no_transitions() -> None:
    walk = shop()
    walk.fix(100, 300)
    assert walk.fix(50, 0) == []  # older than the last accepted fix, though inside
    assert walk.ignored.stale == 1
    assert walk.fix(100, 0) == []  # as old as it: a duplicate
    assert walk.ignored.stale == 1
    assert walk.fix(110, 0) == [("enter", A, None, 110)]


def test_fixes_older_than_an_hour_or_from_the_future_are_ignored_and_counted() -> None:
    walk = shop()
    assert walk.fix(100, 0, now=100 + 3601) == []
    assert walk.ignored.too_old == 1
    assert walk.fix(5000 + 120, 0, now=5000) == []
    assert walk.ignored.future == 1
    assert walk.state.fix is None
    assert walk.fix(100 + 3500, 0, now=100 + 3601) == [("enter", A, None, 3600)]


def test_a_teleport_is_ignored_and_a_confirmed_move_is_accepted() -> None:
    walk = shop()
    walk.fix(0, 0)
    assert walk.fix(10, 100_000) == []  # 100 km in 10 s
    assert walk.ignored.too_fast == 1
    assert walk.fix(20, 5) == []  # back where we were: plausible, no transition
    assert walk.state.jump is None
    # A flight: the first far fix is held, the next one consistent with it confirms it.
    assert walk.fix(600, 100_000) == []
    assert walk.ignored.too_fast == 1
    assert walk.fix(660, 100_400) == [("exit", A, None, 660)]


def test_a_retry_storm_produces_the_transitions_once() -> None:
    walk = shop()
    walk.fix(0, 300)
    assert walk.fix(30, 0) == [("enter", A, None, 30)]
    for _ in range(5):
        assert walk.fix(30, 0) == []
    assert walk.transitions == [("enter", A, None, 30)]


def test_dwell_waits_for_the_threshold_and_fires_once_per_visit() -> None:
    walk = shop(dwell_s=120)
    walk.fix(0, 0)
    walk.fix(60, 5)
    walk.fix(90, 300)  # left before the threshold: no dwell
    walk.fix(200, 0)
    walk.fix(330, 5)
    walk.fix(400, 5)
    walk.fix(500, 300)
    assert walk.transitions == [
        ("enter", A, None, 0),
        ("exit", A, None, 90),
        ("enter", A, None, 200),
        ("dwell", A, None, 320),
        ("exit", A, None, 500),
    ]
    assert walk.last is not None
    assert walk.last.closed[0].dwelled


def test_polygons_use_their_outline_not_their_bounding_circle() -> None:
    # An L: a 200 x 200 m square without its north-east quarter.
    corners = [(-100, -100), (100, -100), (100, 0), (0, 0), (0, 100), (-100, 100)]
    walk = Walk(index_of(record(A, *PARIS, polygon=[ring_m(*PARIS, corners)])), PARIS)
    assert walk.fix(0, 60, 60, accuracy_m=5) == []  # in the notch
    assert walk.fix(30, -50, 50, accuracy_m=5) == [("enter", A, None, 30)]


@pytest.mark.parametrize("store_lon", [179.9995, -179.9995])
def test_a_store_on_the_antimeridian_works_from_both_sides(store_lon: float) -> None:
    store = (0.0, store_lon)
    walk = Walk(index_of(record(A, *store, radius_m=100)), store)
    assert walk.fix(0, -400) == []
    assert walk.fix(30, -80) == [("enter", A, None, 30)]
    assert walk.fix(60, 80) == []
    assert walk.fix(90, 400) == [("exit", A, None, 90)]
    crossed = {walk.point(-80, 0)[1] > 0, walk.point(80, 0)[1] > 0}
    assert crossed == {True, False}  # the walk really crossed the line


def test_a_store_near_the_geo_latitude_limit_works() -> None:
    store = (85.0, 10.0)
    walk = Walk(index_of(record(A, *store, radius_m=100)), store)
    assert walk.fix(0, 0, -500) == []
    assert walk.fix(60, 0, 0) == [("enter", A, None, 60)]
    assert walk.fix(120, 0, 600) == [("exit", A, None, 120)]  # beyond 85.05: still a fix


def test_only_held_programs_are_evaluated() -> None:
    index = index_of(record(A, *PARIS), record("sto_b", *offset(*PARIS, 500, 0), issuer_id="iss_b"))
    walk = Walk(index, PARIS, HeldPrograms({"iss_b"}))
    assert walk.fix(0, 0) == []
    assert walk.fix(30, 500) == [("enter", "sto_b", None, 30)]


def test_programs_are_looked_up_only_when_a_transition_is_due() -> None:
    walk = Walk(index_of(record(A, *PARIS)), PARIS, Undecided())
    assert walk.fix(0, 2000) == []  # nothing near: the wallet is not asked
    with pytest.raises(MembershipNeeded):
        walk.fix(60, 0)


def test_a_visit_whose_card_was_removed_ends_without_a_transition() -> None:
    walk = Walk(index_of(record(A, *PARIS)), PARIS, HeldPrograms({"iss_a"}))
    walk.fix(0, 0)
    walk.eligibility = HeldPrograms(set())
    assert walk.fix(60, 500) == []
    assert walk.state.visits == {}
    assert walk.last is not None
    assert walk.last.timers_cleared  # its dwell timer goes too


UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"


def beacon_shop() -> Walk:
    beacons = [(UUID, 1, 1, "entrance"), (UUID, 1, 2, "dairy")]
    return Walk(index_of(record(A, *PARIS, beacons=beacons)), PARIS)


def test_beacons_enter_the_store_and_move_between_zones() -> None:
    walk = beacon_shop()
    assert walk.sight(0, UUID, 1, 1, "near") == [
        ("enter", A, None, 0),
        ("enter", A, "entrance", 0),
    ]
    assert walk.sight(10, UUID, 1, 1, "immediate") == []
    assert walk.sight(20, UUID, 1, 2, "near") == [
        ("exit", A, "entrance", 20),
        ("enter", A, "dairy", 20),
    ]
    assert walk.sight(30, UUID, 1, 2, "far") == [("exit", A, "dairy", 30)]
    assert walk.sight(40, UUID, 1, 2, "near") == [("enter", A, "dairy", 40)]
    assert walk.fix(50, 400) == [("exit", A, "dairy", 50), ("exit", A, None, 50)]


def test_far_beacons_unknown_beacons_and_repeated_sightings_enter_nothing() -> None:
    walk = beacon_shop()
    assert walk.sight(0, UUID, 1, 1, "far") == []
    assert walk.sight(10, UUID, 9, 9, "immediate") == []
    assert walk.ignored.unknown == 1
    assert walk.sight(20, UUID, 1, 1, "near") != []
    assert walk.sight(20, UUID, 1, 1, "near") == []
    assert walk.ignored.stale == 1


def test_region_events_are_evidence_and_are_deduplicated() -> None:
    walk = shop()
    assert walk.region(0, A, "enter") == [("enter", A, None, 0)]
    assert walk.region(0, A, "enter") == []
    assert walk.ignored.stale == 1
    assert walk.region(5, A, "enter") == []  # already inside
    assert walk.region(400, A, "enter") == [("dwell", A, None, 300)]
    assert walk.region(500, A, "exit") == [("exit", A, None, 500)]
    assert walk.region(510, A, "exit") == []
    assert walk.region(520, "sto_gone", "enter") == []
    assert walk.ignored.unknown == 1
    assert walk.region(530, f"beacon:{UUID}", "enter") == []
