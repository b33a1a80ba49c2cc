"""Stores through the HTTP API: CRUD, fences, validation, beacons, tenants, change feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient

from issuers.stores.service import StoreService
from tests.conftest import ADMIN, bearer

Client = TestClient[Litestar]
Headers = dict[str, str]

BEACON_UUID = "F7826DA6-4FA2-4E98-8024-BC5B71E0893E"
BEACON: dict[str, Any] = {"uuid": BEACON_UUID, "major": 1, "minor": 7, "zone": "door"}
PARIS = {"name": "Paris Opera", "lat": 48.8719, "lon": 2.3316, "timezone": "Europe/Paris"}
# A 1 km x 1.1 km square in Fiji whose east half lies beyond the antimeridian.
FIJI_RING = [[179.995, -17.0], [-179.995, -17.0], [-179.995, -16.99], [179.995, -16.99]]
SQUARE_RING = [[2.33, 48.87], [2.34, 48.87], [2.34, 48.88], [2.33, 48.88]]


def closed(ring: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def new_partner(client: Client, name: str = "Corner Shop") -> Headers:
    response = client.post("/v1/admin/issuers", json={"name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return bearer(response.json()["api_key"])


@pytest.fixture
def partner(client: Client) -> Headers:
    return new_partner(client)


@asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP into the real app on this event loop. AsyncTestClient runs each request to the end
    through a blocking portal, so its gathered requests never overlap; these do."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def warm_up(http: httpx.AsyncClient, headers: Headers) -> None:
    """Open enough Redis connections first, so racing requests start together instead of
    queueing behind connection set-up."""
    await asyncio.gather(*(http.get("/v1/partner/stores", headers=headers) for _ in range(8)))


def create(client: Client, headers: Headers, **fields: Any) -> dict[str, Any]:
    body = {**PARIS, "radius_m": 80, **fields}
    response = client.post("/v1/partner/stores", json=body, headers=headers)
    assert response.status_code == 201, response.text
    store: dict[str, Any] = response.json()
    return store


def test_create_circle_store_and_read_it_back(client: Client, partner: Headers) -> None:
    body = {
        **PARIS,
        "radius_m": 120,
        "external_id": "P-001",
        "address": {"line1": "8 rue Scribe", "city": "Paris", "country": "FR"},
        "opening_hours": [{"day": "mon", "opens": "08:00", "closes": "20:00"}],
        "beacons": [BEACON],
        "dwell_s": 600,
    }
    response = client.post("/v1/partner/stores", json=body, headers=partner)
    assert response.status_code == 201, response.text
    store = response.json()
    assert store["id"].startswith("sto_")
    assert (store["lat"], store["lon"], store["radius_m"]) == (48.8719, 2.3316, 120)
    assert store["beacons"] == [{**BEACON, "uuid": BEACON_UUID.lower()}]
    assert "polygon" not in store
    fetched = client.get(f"/v1/partner/stores/{store['id']}", headers=partner)
    assert fetched.status_code == 200
    assert fetched.json() == store


def test_polygon_store_takes_its_centre_from_the_fence(client: Client, partner: Headers) -> None:
    body = {"name": "Mall", "timezone": "Europe/Paris", "polygon": closed(SQUARE_RING)}
    store = client.post("/v1/partner/stores", json=body, headers=partner).json()
    assert store["lat"] == pytest.approx(48.875)
    assert store["lon"] == pytest.approx(2.335)
    assert store["polygon"] == closed(SQUARE_RING)
    assert "radius_m" not in store


def test_antimeridian_polygon_is_indexed_where_it_is(
    client: Client, partner: Headers, redis_client: redis.Redis, key_prefix: str
) -> None:
    body = {"name": "Suva Market", "timezone": "Pacific/Fiji", "polygon": closed(FIJI_RING)}
    response = client.post("/v1/partner/stores", json=body, headers=partner)
    assert response.status_code == 201, response.text
    store = response.json()
    assert abs(store["lon"]) == pytest.approx(180.0)
    assert store["lat"] == pytest.approx(-16.995)
    for lon in (179.999, -179.999):  # a user on either side of the line finds the store
        found = redis_client.geosearch(
            f"{key_prefix}:geo:{{stores}}", longitude=lon, latitude=-16.995, radius=500, unit="m"
        )
        assert found == [store["id"].encode()]


def test_list_paginates_in_creation_order(client: Client, partner: Headers) -> None:
    ids = [create(client, partner, name=f"Store {i}")["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/partner/stores", params=params, headers=partner).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page.get("next_cursor")
        if cursor is None:
            break
    assert seen == ids
    bad = client.get("/v1/partner/stores", params={"cursor": "bm9wZQ"}, headers=partner)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"


def test_patch_changes_only_what_is_sent_and_swaps_fences(client: Client, partner: Headers) -> None:
    store = create(client, partner, beacons=[BEACON])
    path = f"/v1/partner/stores/{store['id']}"
    renamed = client.patch(path, json={"name": "Opera"}, headers=partner).json()
    assert renamed["name"] == "Opera" and renamed["beacons"] == store["beacons"]
    assert renamed["radius_m"] == 80 and renamed["created_at"] == store["created_at"]
    to_polygon = client.patch(path, json={"polygon": closed(SQUARE_RING)}, headers=partner)
    assert to_polygon.status_code == 200
    assert "radius_m" not in to_polygon.json()
    assert to_polygon.json()["lat"] == pytest.approx(48.875)
    to_circle = client.patch(path, json={"radius_m": 300}, headers=partner).json()
    assert "polygon" not in to_circle and to_circle["radius_m"] == 300
    no_fence = client.patch(path, json={"radius_m": None}, headers=partner)
    assert no_fence.status_code == 422 and no_fence.json()["code"] == "fence_required"


def test_delete_removes_the_store_its_index_entries_and_beacon_claims(
    client: Client, partner: Headers, redis_client: redis.Redis, key_prefix: str
) -> None:
    store = create(client, partner, beacons=[BEACON], external_id="X1")
    path = f"/v1/partner/stores/{store['id']}"
    assert client.delete(path, headers=partner).status_code == 204
    assert client.get(path, headers=partner).json()["code"] == "store_not_found"
    assert client.delete(path, headers=partner).status_code == 404
    assert redis_client.geopos(f"{key_prefix}:geo:{{stores}}", store["id"]) == [None]
    again = create(client, partner, beacons=[BEACON], external_id="X1")  # both freed
    assert again["id"] != store["id"]


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"lat": 91}, 422, "validation_error", "lat"),
        ({"lon": -180.5}, 422, "validation_error", "lon"),
        ({"radius_m": 19}, 422, "validation_error", "radius_m"),
        ({"radius_m": 5001}, 422, "validation_error", "radius_m"),
        ({"timezone": "Mars/Olympus_Mons"}, 422, "unknown_timezone", "timezone"),
        ({"timezone": "../../etc/passwd"}, 422, "unknown_timezone", "timezone"),
        ({"lat": 85.1}, 422, "latitude_out_of_range", "lat"),
        ({"lat": -89.0}, 422, "latitude_out_of_range", "lat"),
        ({"radius_m": None}, 422, "fence_required", "radius_m"),
        ({"polygon": closed(SQUARE_RING)}, 422, "fence_conflict", "polygon"),
        ({"lat": None}, 422, "validation_error", "lat"),
        ({"beacons": [BEACON, {**BEACON, "zone": "till"}]}, 422, "duplicate_beacon", "beacons[1]"),
        ({"beacons": [{**BEACON, "major": 65536}]}, 422, "validation_error", "beacons[0].major"),
        ({"surprise": 1}, 422, "validation_error", "surprise"),
    ],
)
def test_invalid_stores_are_rejected_with_code_and_field(
    client: Client,
    partner: Headers,
    change: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    body = {**PARIS, "radius_m": 80, **change}
    response = client.post("/v1/partner/stores", json=body, headers=partner)
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["code"] == code
    assert field in [e["field"] for e in problem["errors"]]
    assert client.get("/v1/partner/stores", headers=partner).json()["items"] == []


@pytest.mark.parametrize(
    ("polygon", "code"),
    [
        (closed([[2.33, 85.2], [2.34, 85.2], [2.34, 85.3], [2.33, 85.3]]), "latitude_out_of_range"),
        ({"type": "Polygon", "coordinates": [SQUARE_RING]}, "invalid_polygon"),  # not closed
        (closed([[2.0, 48.0], [2.9, 48.0], [2.9, 48.9], [2.0, 48.9]]), "invalid_polygon"),  # huge
        (closed([[2.33, 48.87], [2.34, 48.87], [2.35, 48.87]]), "invalid_polygon"),  # no area
    ],
)
def test_invalid_polygons_are_rejected(
    client: Client, partner: Headers, polygon: dict[str, Any], code: str
) -> None:
    body = {"name": "Mall", "timezone": "Europe/Paris", "polygon": polygon}
    response = client.post("/v1/partner/stores", json=body, headers=partner)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert response.json()["errors"][0]["field"] == "polygon"


def test_circle_without_coordinates_is_rejected(client: Client, partner: Headers) -> None:
    body = {"name": "Kiosk", "timezone": "UTC", "radius_m": 50, "lat": 1.0}
    response = client.post("/v1/partner/stores", json=body, headers=partner)
    assert response.json()["code"] == "coordinates_required"
    assert response.json()["errors"][0]["field"] == "lon"


def test_a_beacon_belongs_to_one_store_across_all_programs(client: Client) -> None:
    a, b = new_partner(client, "A"), new_partner(client, "B")
    owner = create(client, a, beacons=[BEACON])
    lower_case = {**BEACON, "uuid": BEACON_UUID.lower()}
    for headers in (a, b):
        taken = client.post(
            "/v1/partner/stores",
            json={**PARIS, "radius_m": 80, "beacons": [lower_case]},
            headers=headers,
        )
        assert taken.status_code == 409
        assert taken.json()["code"] == "beacon_taken"
        assert taken.json()["errors"][0]["field"] == "beacons[0]"
    # Program A is told which of its stores holds it; program B learns nothing about A.
    same_program = client.post(
        "/v1/partner/stores", json={**PARIS, "radius_m": 80, "beacons": [BEACON]}, headers=a
    )
    assert owner["id"] in same_program.json()["detail"]
    other_program = client.post(
        "/v1/partner/stores", json={**PARIS, "radius_m": 80, "beacons": [BEACON]}, headers=b
    )
    assert owner["id"] not in other_program.text
    assert client.get("/v1/partner/stores", headers=b).json()["items"] == []


def test_a_rejected_patch_changes_nothing(client: Client, partner: Headers) -> None:
    create(client, partner, beacons=[BEACON])
    other = create(client, partner, name="Other", beacons=[{**BEACON, "minor": 8}])
    path = f"/v1/partner/stores/{other['id']}"
    response = client.patch(
        path, json={"name": "Renamed", "beacons": [BEACON], "radius_m": 500}, headers=partner
    )
    assert response.status_code == 409 and response.json()["code"] == "beacon_taken"
    assert client.get(path, headers=partner).json() == other
    # Its own beacon stayed claimed: nobody else can take it.
    clash = client.post(
        "/v1/partner/stores",
        json={**PARIS, "radius_m": 80, "beacons": [{**BEACON, "minor": 8}]},
        headers=partner,
    )
    assert clash.status_code == 409


def test_a_patch_releases_beacons_it_drops(client: Client, partner: Headers) -> None:
    store = create(client, partner, beacons=[BEACON])
    path = f"/v1/partner/stores/{store['id']}"
    assert client.patch(path, json={"beacons": []}, headers=partner).status_code == 200
    create(client, partner, beacons=[BEACON])


def test_external_id_is_unique_within_a_program_only(client: Client) -> None:
    a, b = new_partner(client, "A"), new_partner(client, "B")
    first = create(client, a, external_id="S-1")
    clash = client.post(
        "/v1/partner/stores", json={**PARIS, "radius_m": 80, "external_id": "S-1"}, headers=a
    )
    assert clash.status_code == 409 and clash.json()["code"] == "external_id_taken"
    create(client, b, external_id="S-1")
    second = create(client, a, external_id="S-2")
    moved = client.patch(
        f"/v1/partner/stores/{second['id']}", json={"external_id": "S-1"}, headers=a
    )
    assert moved.status_code == 409
    client.patch(f"/v1/partner/stores/{first['id']}", json={"external_id": None}, headers=a)
    moved = client.patch(
        f"/v1/partner/stores/{second['id']}", json={"external_id": "S-1"}, headers=a
    )
    assert moved.status_code == 200 and moved.json()["external_id"] == "S-1"


def test_create_is_idempotent(client: Client, partner: Headers) -> None:
    headers = {**partner, "Idempotency-Key": "store-1"}
    body = {**PARIS, "radius_m": 80}
    first = client.post("/v1/partner/stores", json=body, headers=headers)
    again = client.post("/v1/partner/stores", json=body, headers=headers)
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert len(client.get("/v1/partner/stores", headers=partner).json()["items"]) == 1


def test_partner_cannot_touch_another_programs_store(client: Client) -> None:
    a, b = new_partner(client, "A"), new_partner(client, "B")
    theirs = create(client, b, beacons=[BEACON])
    path = f"/v1/partner/stores/{theirs['id']}"
    attempts = [
        client.get(path, headers=a),
        client.patch(path, json={"name": "Mine now"}, headers=a),
        client.delete(path, headers=a),
    ]
    for response in attempts:
        assert response.status_code == 404
        assert response.json()["code"] == "store_not_found"
        assert theirs["name"] not in response.text
    assert client.get(path, headers=b).json() == theirs
    assert client.get("/v1/partner/stores", headers=a).json()["items"] == []


@pytest.mark.parametrize("kind", ["user", "admin"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/partner/stores"),
        ("POST", "/v1/partner/stores"),
        ("POST", "/v1/partner/stores/import"),
        ("GET", "/v1/partner/stores/sto_0000000000000000000000000"),
        ("GET", "/v1/partner/terminals"),
        ("POST", "/v1/partner/terminals"),
    ],
)
def test_other_principals_are_refused_on_partner_routes(
    client: Client, user_token: str, kind: str, method: str, path: str
) -> None:
    headers = bearer(user_token) if kind == "user" else ADMIN
    response = client.request(method, path, headers=headers, json={"name": "x"})
    assert response.status_code == 403
    assert response.json()["code"] == "wrong_principal"


async def test_two_concurrent_creates_cannot_both_claim_a_beacon(
    app: Litestar, redis_client: redis.Redis, key_prefix: str
) -> None:
    async with serving(app) as http:
        created = await http.post("/v1/admin/issuers", json={"name": "Race"}, headers=ADMIN)
        headers = bearer(created.json()["api_key"])
        body = {**PARIS, "radius_m": 80, "beacons": [BEACON]}
        await warm_up(http, headers)
        responses = await asyncio.gather(
            *(http.post("/v1/partner/stores", json=body, headers=headers) for _ in range(8))
        )
        listed = (await http.get("/v1/partner/stores", headers=headers)).json()["items"]
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    winner = next(r.json()["id"] for r in responses if r.status_code == 201)
    claim_key = f"{key_prefix}:beacon:{{{BEACON_UUID.lower()}:1:7}}"
    claim = cast(bytes | None, redis_client.get(claim_key))
    assert claim is not None and claim.decode().startswith(winner + ":")
    assert [s["id"] for s in listed] == [winner]


async def test_concurrent_patches_leave_no_stray_beacon_claims(app: Litestar) -> None:
    async with serving(app) as http:
        created = await http.post("/v1/admin/issuers", json={"name": "Race"}, headers=ADMIN)
        headers = bearer(created.json()["api_key"])
        body = {**PARIS, "radius_m": 80, "beacons": [BEACON]}
        store = (await http.post("/v1/partner/stores", json=body, headers=headers)).json()
        path = f"/v1/partner/stores/{store['id']}"
        minors = range(10, 16)
        patches = [{"beacons": [{**BEACON, "minor": m}]} for m in minors]
        await warm_up(http, headers)
        responses = await asyncio.gather(
            *(http.patch(path, json=patch, headers=headers) for patch in patches)
        )
        # Writers that lose the optimistic race three times in a row are told to retry.
        assert all(
            r.status_code == 200 or r.json()["code"] == "concurrent_update" for r in responses
        )
        assert any(r.status_code == 200 for r in responses)
        final = (await http.get(path, headers=headers)).json()["beacons"][0]["minor"]
        # Every beacon but the final one is free: overwritten patches released theirs.
        for minor in [7, *minors]:
            claim = {**PARIS, "radius_m": 80, "beacons": [{**BEACON, "minor": minor}]}
            response = await http.post("/v1/partner/stores", json=claim, headers=headers)
            assert response.status_code == (409 if minor == final else 201), minor


async def test_every_write_is_published_for_the_presence_engine(app: Litestar) -> None:
    async with serving(app) as http:
        created = await http.post("/v1/admin/issuers", json={"name": "Feed"}, headers=ADMIN)
        headers = bearer(created.json()["api_key"])
        stores: StoreService = app.state.services.stores
        start = await stores.version()
        body = {**PARIS, "radius_m": 80}
        store = (await http.post("/v1/partner/stores", json=body, headers=headers)).json()
        path = f"/v1/partner/stores/{store['id']}"
        await http.patch(path, json={"name": "Renamed"}, headers=headers)
        rejected = await http.patch(path, json={"timezone": "Nowhere/City"}, headers=headers)
        assert rejected.status_code == 422
        renamed = await stores.get_record(store["id"])
        assert renamed is not None and renamed.name == "Renamed"
        await http.delete(path, headers=headers)
        changes = await stores.changes_since("0-0", 100)
        assert [(c.store_id, c.op) for c in changes] == [
            (store["id"], "upsert"),
            (store["id"], "upsert"),
            (store["id"], "delete"),
        ]
        assert {c.issuer_id for c in changes} == {created.json()["issuer"]["issuer_id"]}
        assert await stores.changes_since(changes[1].change_id, 100) == changes[2:]
        assert await stores.version() == start + 3
        assert await stores.get_record(store["id"]) is None
