"""Bulk import: JSON arrays and NDJSON, row errors by line, upserts by external_id."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient

from tests.conftest import ADMIN, bearer

Client = TestClient[Litestar]
Headers = dict[str, str]
NDJSON = {"Content-Type": "application/x-ndjson"}
OPEN_RING = {"type": "Polygon", "coordinates": [[[13.4, 52.5], [13.41, 52.5], [13.41, 52.51]]]}
UUID = "0c9b2f8e-1d7a-4c55-9a10-3f7e0b6d2a41"


def new_partner(client: Client, name: str = "Grocer") -> Headers:
    response = client.post("/v1/admin/issuers", json={"name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return bearer(response.json()["api_key"])


@pytest.fixture
def partner(client: Client) -> Headers:
    return new_partner(client)


def row(external_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "name": f"Store {external_id}",
        "lat": 52.52,
        "lon": 13.405,
        "radius_m": 100,
        "timezone": "Europe/Berlin",
        **fields,
    }


def beacon(minor: int) -> dict[str, Any]:
    return {"uuid": UUID, "major": 1, "minor": minor, "zone": "entrance"}


def import_json(client: Client, headers: Headers, rows: list[Any]) -> dict[str, Any]:
    response = client.post("/v1/partner/stores/import", json=rows, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def all_stores(client: Client, headers: Headers) -> list[dict[str, Any]]:
    stores: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/partner/stores", params=params, headers=headers).json()
        stores += page["items"]
        cursor = page.get("next_cursor")
        if cursor is None:
            return stores


def test_json_array_with_bad_rows_writes_the_good_ones(client: Client, partner: Headers) -> None:
    rows = [
        row("A1", beacons=[beacon(1)]),  # 1 good
        row("A2", lat=95),  # 2 latitude out of range
        {k: v for k, v in row("A3").items() if k != "external_id"},  # 3
        row("A4", timezone="Europe/Atlantis"),  # 4
        row("A5"),  # 5 good
        row("A6", beacons=[beacon(2), beacon(2)]),  # 6 duplicate within the row
        row("A7", beacons=[beacon(1)]),  # 7 beacon already claimed by line 1
        42,  # 8 not a store
        row("A1", name="again"),  # 9 same external_id as line 1
        row("A10", radius_m=5),  # 10 radius out of bounds
        row("A11", lat=86.0),  # 11 beyond the geo index
        row("A12", radius_m=None),  # 12 no fence
        row("A13", radius_m=None, polygon=OPEN_RING),  # 13 ring not closed
        row("A14", surprise=True),  # 14 unknown field
    ]
    result = import_json(client, partner, rows)
    assert (result["created"], result["updated"]) == (2, 0)
    assert [(e["line"], e["code"]) for e in result["errors"]] == [
        (2, "validation_error"),
        (3, "external_id_required"),
        (4, "unknown_timezone"),
        (6, "duplicate_beacon"),
        (7, "beacon_taken"),
        (8, "validation_error"),
        (9, "duplicate_external_id"),
        (10, "validation_error"),
        (11, "latitude_out_of_range"),
        (12, "fence_required"),
        (13, "invalid_polygon"),
        (14, "validation_error"),
    ]
    messages = {e["line"]: e["message"] for e in result["errors"]}
    assert "lat" in messages[2] and "radius_m" in messages[10] and "surprise" in messages[14]
    assert "Europe/Atlantis" in messages[4]
    stores = all_stores(client, partner)
    assert [s["external_id"] for s in stores] == ["A1", "A5"]
    assert stores[0]["beacons"][0]["minor"] == 1


def test_ndjson_reports_physical_line_numbers(client: Client, partner: Headers) -> None:
    lines = [
        json.dumps(row("N1")),
        "",  # blank lines are skipped but counted
        '{"external_id": "N2", "name": ',  # 3 broken JSON
        json.dumps(row("N3", lon=200)),  # 4
        "   ",
        json.dumps(row("N4")) + "\r",  # CRLF files work
    ]
    response = client.post(
        "/v1/partner/stores/import",
        content="\n".join(lines).encode(),
        headers={**partner, **NDJSON},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["created"], result["updated"]) == (2, 0)
    assert [(e["line"], e["code"]) for e in result["errors"]] == [
        (3, "malformed_json"),
        (4, "validation_error"),
    ]


def test_ndjson_is_recognised_without_its_content_type(client: Client, partner: Headers) -> None:
    body = "\n".join(json.dumps(row(f"Q{i}")) for i in range(3))
    response = client.post(
        "/v1/partner/stores/import",
        content=body.encode(),
        headers={**partner, "Content-Type": "application/json"},
    )
    assert response.json()["created"] == 3


def test_reimport_updates_instead_of_creating(client: Client, partner: Headers) -> None:
    first = import_json(client, partner, [row("R1", beacons=[beacon(5)]), row("R2")])
    assert first["created"] == 2
    before = {s["external_id"]: s for s in all_stores(client, partner)}
    second = import_json(
        client,
        partner,
        [row("R1", name="Renamed", beacons=[beacon(6)]), row("R2", lat=52.0), row("R3")],
    )
    assert (second["created"], second["updated"], second["errors"]) == (1, 2, [])
    after = {s["external_id"]: s for s in all_stores(client, partner)}
    assert after["R1"]["id"] == before["R1"]["id"]
    assert after["R1"]["created_at"] == before["R1"]["created_at"]
    assert after["R1"]["name"] == "Renamed"
    assert after["R2"]["lat"] == 52.0
    # The beacon R1 dropped is free again; the one it took is not.
    third = import_json(client, partner, [row("R4", beacons=[beacon(5)])])
    assert third["created"] == 1
    fourth = import_json(client, partner, [row("R5", beacons=[beacon(6)])])
    assert [e["code"] for e in fourth["errors"]] == ["beacon_taken"]


def test_import_also_updates_stores_created_one_by_one(client: Client, partner: Headers) -> None:
    made = client.post("/v1/partner/stores", json=row("API-1"), headers=partner).json()
    result = import_json(client, partner, [row("API-1", name="From the file")])
    assert (result["created"], result["updated"]) == (0, 1)
    fetched = client.get(f"/v1/partner/stores/{made['id']}", headers=partner).json()
    assert fetched["name"] == "From the file"


def test_imported_stores_are_in_the_geo_index(
    client: Client, partner: Headers, redis_client: redis.Redis, key_prefix: str
) -> None:
    rows = [row(f"G{i}", lat=52.5 + i * 0.01, lon=13.4) for i in range(5)]
    rows.append(row("FAR", lat=-33.86, lon=151.21, timezone="Australia/Sydney"))
    assert import_json(client, partner, rows)["created"] == 6
    ids = {s["external_id"]: s["id"] for s in all_stores(client, partner)}
    near = redis_client.geosearch(
        f"{key_prefix}:geo:{{stores}}",
        longitude=13.4,
        latitude=52.5,
        radius=2500,
        unit="m",
        sort="ASC",
    )
    assert [cast(bytes, m).decode() for m in near] == [ids[f"G{i}"] for i in range(3)]
    owners = redis_client.hmget(f"{key_prefix}:geo:{{stores}}:issuer", list(ids.values()))
    assert len({o for o in owners if o is not None}) == 1 and None not in owners


def test_import_cannot_reach_another_programs_stores(client: Client) -> None:
    a, b = new_partner(client, "A"), new_partner(client, "B")
    import_json(client, b, [row("SHARED", beacons=[beacon(9)])])
    theirs = all_stores(client, b)[0]
    result = import_json(client, a, [row("SHARED", name="Hijack"), row("X", beacons=[beacon(9)])])
    assert result["created"] == 1 and result["updated"] == 0
    assert [e["code"] for e in result["errors"]] == ["beacon_taken"]
    assert theirs["id"] not in result["errors"][0]["message"]
    assert all_stores(client, b) == [theirs]
    assert [s["name"] for s in all_stores(client, a)] == ["Hijack"]


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"[1, 2", "malformed_import"), (b"[" + b"{}," * 100_000 + b"{}]", "too_many_stores")],
)
def test_unreadable_or_oversized_imports_are_refused_whole(
    client: Client, partner: Headers, body: bytes, code: str
) -> None:
    response = client.post(
        "/v1/partner/stores/import",
        content=body,
        headers={**partner, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert all_stores(client, partner) == []


def test_an_empty_import_is_fine(client: Client, partner: Headers) -> None:
    assert import_json(client, partner, []) == {"created": 0, "updated": 0, "errors": []}


def test_five_thousand_generated_stores(
    client: Client, partner: Headers, redis_client: redis.Redis, key_prefix: str
) -> None:
    rows: list[Any] = [
        row(
            f"S{i:05d}",
            lat=40 + (i % 100) * 0.05,
            lon=-3 + (i // 100) * 0.05,
            beacons=[beacon(i)],
        )
        for i in range(5000)
    ]
    rows[1234] = row("BAD", timezone="Nowhere/At_All")
    lines = "\n".join(json.dumps(r) for r in rows).encode()
    response = client.post(
        "/v1/partner/stores/import", content=lines, headers={**partner, **NDJSON}
    )
    result = response.json()
    assert (result["created"], result["updated"]) == (4999, 0)
    assert result["errors"] == [
        {"line": 1235, "code": "unknown_timezone", "message": result["errors"][0]["message"]}
    ]
    assert redis_client.zcard(f"{key_prefix}:geo:{{stores}}") == 4999
    listed = all_stores(client, partner)
    assert [s["external_id"] for s in listed] == [
        r["external_id"] for r in rows if r is not rows[1234]
    ]
    again = client.post("/v1/partner/stores/import", content=lines, headers={**partner, **NDJSON})
    assert (again.json()["created"], again.json()["updated"]) == (0, 4999)
