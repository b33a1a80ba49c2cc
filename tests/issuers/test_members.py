from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import prometheus_client
import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient

from tests.conftest import ADMIN, bearer

Client = TestClient[Litestar]
NUMBER = "5521-9047-3318"  # as a partner's CRM might print it
CANONICAL = "552190473318"
ABSENT = "731846205917"


def partner(client: Client, name: str = "Grocer", **fields: Any) -> tuple[str, dict[str, str]]:
    response = client.post("/v1/admin/issuers", json={"name": name, **fields}, headers=ADMIN)
    assert response.status_code == 201, response.text
    created = response.json()
    return created["issuer"]["issuer_id"], bearer(created["api_key"])


def user(client: Client) -> dict[str, str]:
    return bearer(client.post("/v1/users", json={}).json()["token"])


def test_put_creates_then_updates_and_get_reads_back(client: Client) -> None:
    _, key = partner(client)
    created = client.put(
        f"/v1/partner/members/{NUMBER}",
        json={"tier": "gold", "points": 120, "tags": ["vip", "dairy", "vip"]},
        headers=key,
    )
    assert created.status_code == 201
    body = created.json()
    assert body["member_number"] == CANONICAL  # spaces and dashes dropped
    assert body["tags"] == ["vip", "dairy"]
    assert body["attributes"] == {}
    updated = client.put(
        f"/v1/partner/members/{CANONICAL}",
        json={
            "points": 150,
            "attributes": {"store": "Lyon", "visits": 7, "ratio": 0.5, "kid": True},
        },
        headers=key,
    )
    assert updated.status_code == 200
    got = client.get(f"/v1/partner/members/{NUMBER}", headers=key).json()
    assert got == updated.json()
    assert got["tier"] == "gold" and got["points"] == 150 and got["tags"] == ["vip", "dairy"]
    assert got["attributes"] == {"store": "Lyon", "visits": 7, "ratio": 0.5, "kid": True}
    cleared = client.put(f"/v1/partner/members/{NUMBER}", json={"tier": None}, headers=key)
    assert cleared.json()["tier"] is None and cleared.json()["points"] == 150


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"points": -1}, "points"),
        ({"tier": ""}, "tier"),
        ({"tags": [""]}, "tags[0]"),
        ({"attributes": {"nested": {"a": 1}}}, "attributes"),
        ({"attributes": {"list": [1]}}, "attributes"),
        ({"nickname": "x"}, "nickname"),
    ],
)
def test_invalid_member_fields_name_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    _, key = partner(client)
    response = client.put(f"/v1/partner/members/{CANONICAL}", json=body, headers=key)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith(field)


def test_unknown_member_is_404(client: Client) -> None:
    _, key = partner(client)
    response = client.get("/v1/partner/members/000000000000", headers=key)
    assert response.status_code == 404
    assert response.json()["code"] == "member_not_found"


def test_a_partner_never_reads_another_partners_member(client: Client) -> None:
    _, key_a = partner(client, "A")
    _, key_b = partner(client, "B")
    client.put(f"/v1/partner/members/{CANONICAL}", json={"tier": "gold"}, headers=key_a)
    response = client.get(f"/v1/partner/members/{CANONICAL}", headers=key_b)
    assert response.status_code == 404
    assert response.json()["code"] == "member_not_found"
    # B's own member with the same number is a separate record.
    assert client.put(f"/v1/partner/members/{CANONICAL}", json={}, headers=key_b).status_code == 201
    assert client.get(f"/v1/partner/members/{CANONICAL}", headers=key_a).json()["tier"] == "gold"


def test_member_routes_need_a_partner_key(client: Client) -> None:
    assert client.get(f"/v1/partner/members/{CANONICAL}").status_code == 401
    assert client.get(f"/v1/partner/members/{CANONICAL}", headers=user(client)).status_code == 403


def test_member_numbers_stay_out_of_logs_and_metrics(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    _, key = partner(client)
    caplog.set_level(logging.DEBUG)
    client.put(f"/v1/partner/members/{CANONICAL}", json={"points": 1}, headers=key)
    client.get(f"/v1/partner/members/{CANONICAL}", headers=key)
    # A 404. Not a run of 9s: metrics print float sums such as 0.19999999999999998.
    client.get(f"/v1/partner/members/{ABSENT}", headers=key)
    client.post("/v1/partner/enrollments", json={"member_number": CANONICAL}, headers=key)
    # httpx is the test's own client (it logs the URL it requested); every other record is
    # the service's.
    served = [record for record in caplog.records if record.name != "httpx"]
    routes = [getattr(record, "route", None) for record in served]
    assert "/v1/partner/members/{member_number}" in routes  # the access log was captured
    logged = " ".join(str(value) for record in served for value in vars(record).values())
    assert CANONICAL not in logged and ABSENT not in logged
    metrics = prometheus_client.generate_latest().decode()
    assert 'route="/v1/partner/members/{member_number}"' in metrics
    assert CANONICAL not in metrics and ABSENT not in metrics


def test_enrollment_code_is_one_time_with_a_deep_link(client: Client) -> None:
    issuer_id, key = partner(client)
    before = datetime.now(UTC)
    response = client.post("/v1/partner/enrollments", json={"member_number": NUMBER}, headers=key)
    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4}", body["code"])
    assert body["deep_link"] == f"wallet://enroll?code={body['code']}"
    expires = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(hours=23) < expires <= before + timedelta(hours=24, minutes=1)
    alice, bob = user(client), user(client)
    card = client.post("/v1/me/cards", json={"enrollment_code": body["code"]}, headers=alice)
    assert card.status_code == 201
    assert card.json()["kind"] == "enrolled"
    assert card.json()["issuer"]["issuer_id"] == issuer_id
    assert card.json()["number"] == CANONICAL
    again = client.post("/v1/me/cards", json={"enrollment_code": body["code"]}, headers=bob)
    assert again.status_code == 404
    assert again.json()["code"] == "enrollment_code_invalid"


def test_codes_are_distinct_and_ttl_is_bounded(client: Client) -> None:
    _, key = partner(client)
    codes = {
        client.post("/v1/partner/enrollments", json={"member_number": "1234"}, headers=key).json()[
            "code"
        ]
        for _ in range(20)
    }
    assert len(codes) == 20
    for ttl in (59, 7 * 24 * 3600 + 1):
        response = client.post(
            "/v1/partner/enrollments", json={"member_number": "1234", "ttl_s": ttl}, headers=key
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "ttl_s"
    short = client.post(
        "/v1/partner/enrollments", json={"member_number": "1234", "ttl_s": 60}, headers=key
    ).json()
    assert datetime.fromisoformat(short["expires_at"]) < datetime.now(UTC) + timedelta(minutes=2)


def test_code_is_accepted_as_people_type_it(client: Client) -> None:
    _, key = partner(client)
    code = client.post(
        "/v1/partner/enrollments", json={"member_number": CANONICAL}, headers=key
    ).json()["code"]
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    response = client.post("/v1/me/cards", json={"enrollment_code": typed}, headers=user(client))
    assert response.status_code == 201


def test_expired_code_is_refused(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    _, key = partner(client)
    code = client.post(
        "/v1/partner/enrollments", json={"member_number": CANONICAL}, headers=key
    ).json()["code"]
    [stored] = list(redis_client.scan_iter(match=f"{key_prefix}:enroll:*"))
    redis_client.delete(stored)  # what Redis does when the TTL runs out
    response = client.post("/v1/me/cards", json={"enrollment_code": code}, headers=user(client))
    assert response.status_code == 404
    assert response.json()["code"] == "enrollment_code_invalid"
    assert response.json()["errors"][0]["field"] == "enrollment_code"


def test_code_ttl_is_set_in_redis(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    _, key = partner(client)
    client.post(
        "/v1/partner/enrollments", json={"member_number": CANONICAL, "ttl_s": 600}, headers=key
    )
    [stored] = list(redis_client.scan_iter(match=f"{key_prefix}:enroll:*"))
    assert 590 <= redis_client.ttl(stored) <= 600


async def test_concurrent_attaches_of_one_code_attach_one_card(
    aclient: httpx.AsyncClient,
) -> None:
    created = await aclient.post("/v1/admin/issuers", json={"name": "Race"}, headers=ADMIN)
    key = bearer(created.json()["api_key"])
    code = (
        await aclient.post("/v1/partner/enrollments", json={"member_number": "4321"}, headers=key)
    ).json()["code"]
    users = [bearer((await aclient.post("/v1/users", json={})).json()["token"]) for _ in range(8)]
    responses = await asyncio.gather(
        *(aclient.post("/v1/me/cards", json={"enrollment_code": code}, headers=u) for u in users)
    )
    assert sorted(r.status_code for r in responses) == [201] + [404] * 7


async def test_concurrent_puts_create_a_member_once_and_lose_no_field(
    aclient: httpx.AsyncClient,
) -> None:
    created = await aclient.post("/v1/admin/issuers", json={"name": "Race"}, headers=ADMIN)
    key = bearer(created.json()["api_key"])
    # Each PUT changes one field: "fields left out keep their stored value" must hold for
    # all of them at once, and exactly one of the racing first writes creates the member.
    bodies = [{"points": 7}, {"tier": "gold"}, {"tags": ["vip"]}, {"attributes": {"store": 4}}]
    bodies += [{"attributes": {"store": 4}}] * 4
    responses = await asyncio.gather(
        *(aclient.put(f"/v1/partner/members/{CANONICAL}", json=b, headers=key) for b in bodies)
    )
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    member = (await aclient.get(f"/v1/partner/members/{CANONICAL}", headers=key)).json()
    expected = {"points": 7, "tier": "gold", "tags": ["vip"], "attributes": {"store": 4}}
    assert {name: member[name] for name in expected} == expected
    # Members of one program share a hash: racing writers of different members all land.
    others = await asyncio.gather(
        *(
            aclient.put(f"/v1/partner/members/{9100 + n}", json={"points": n}, headers=key)
            for n in range(20)
        )
    )
    assert [r.status_code for r in others] == [201] * 20


def test_member_number_must_fit_the_programs_barcode(client: Client) -> None:
    _, key = partner(client, barcode_format="ean13")
    response = client.post("/v1/partner/enrollments", json={"member_number": "ABC123"}, headers=key)
    assert response.status_code == 422
    assert response.json()["code"] == "barcode_unencodable"
    assert response.json()["errors"][0]["field"] == "member_number"


def test_enrolled_card_shows_the_members_data_live(client: Client) -> None:
    _, key = partner(client)
    client.put(
        f"/v1/partner/members/{CANONICAL}", json={"tier": "silver", "points": 10}, headers=key
    )
    code = client.post(
        "/v1/partner/enrollments", json={"member_number": CANONICAL}, headers=key
    ).json()["code"]
    alice = user(client)
    card = client.post("/v1/me/cards", json={"enrollment_code": code}, headers=alice).json()
    assert card["member"] == {"tier": "silver", "points": 10, "tags": [], "attributes": {}}
    client.put(
        f"/v1/partner/members/{CANONICAL}", json={"points": 99, "tags": ["new"]}, headers=key
    )
    live = client.get(f"/v1/me/cards/{card['id']}", headers=alice).json()
    assert live["member"] == {"tier": "silver", "points": 99, "tags": ["new"], "attributes": {}}


def test_self_added_card_does_not_see_member_data(client: Client) -> None:
    issuer_id, key = partner(client)
    client.put(f"/v1/partner/members/{CANONICAL}", json={"tier": "gold"}, headers=key)
    card = client.post(
        "/v1/me/cards", json={"number": CANONICAL, "issuer_id": issuer_id}, headers=user(client)
    ).json()
    assert card["kind"] == "self_added"
    assert "member" not in card  # unverified holders never see the partner's CRM data


def test_a_code_of_partner_a_attaches_a_card_of_a_only(client: Client) -> None:
    issuer_a, key_a = partner(client, "A")
    _, key_b = partner(client, "B")
    client.put(f"/v1/partner/members/{CANONICAL}", json={"tier": "a-tier"}, headers=key_a)
    client.put(f"/v1/partner/members/{CANONICAL}", json={"tier": "b-tier"}, headers=key_b)
    code = client.post(
        "/v1/partner/enrollments", json={"member_number": CANONICAL}, headers=key_a
    ).json()["code"]
    card = client.post("/v1/me/cards", json={"enrollment_code": code}, headers=user(client)).json()
    assert card["issuer"]["issuer_id"] == issuer_a
    assert card["member"]["tier"] == "a-tier"


def test_a_code_survives_when_its_card_cannot_be_attached(client: Client) -> None:
    _, key = partner(client)
    first, second = (
        client.post(
            "/v1/partner/enrollments", json={"member_number": CANONICAL}, headers=key
        ).json()["code"]
        for _ in range(2)
    )
    alice = user(client)
    assert (
        client.post("/v1/me/cards", json={"enrollment_code": first}, headers=alice).status_code
        == 201
    )
    held = client.post("/v1/me/cards", json={"enrollment_code": second}, headers=alice)
    assert held.status_code == 409
    assert held.json()["code"] == "card_exists"
    # Nothing was attached, so the code still works (for someone who does not hold the card).
    bob = user(client)
    assert (
        client.post("/v1/me/cards", json={"enrollment_code": second}, headers=bob).status_code
        == 201
    )
