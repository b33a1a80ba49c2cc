from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient

from issuers.check_digits import gtin_check_digit, luhn_check_digit
from tests.conftest import ADMIN, bearer, find_in_redis

Client = TestClient[Litestar]
Headers = dict[str, str]

COFFEE = {
    "name": "Coffee Club",
    "branding": {"background_color": "#112233"},
    "barcode_format": "ean13",
    "number_patterns": [{"prefix": "290", "lengths": [13], "check_digit": "ean"}],
}
BOOKS = {
    "name": "Book Nook",
    "barcode_format": "code128",
    "number_patterns": [{"prefix": "77", "lengths": [10], "check_digit": "luhn"}],
}
COFFEE_NUMBER = "290123456789" + gtin_check_digit("290123456789")
BOOKS_NUMBER = "771234567" + luhn_check_digit("771234567")
MEMBER_NUMBER = "290777777777" + gtin_check_digit("290777777777")


def partner(client: Client, body: dict[str, Any]) -> tuple[str, Headers]:
    response = client.post("/v1/admin/issuers", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()["issuer"]["issuer_id"], bearer(response.json()["api_key"])


def user(client: Client) -> Headers:
    return bearer(client.post("/v1/users", json={}).json()["token"])


def add(client: Client, who: Headers, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/me/cards", json=body, headers=who)
    assert response.status_code == 201, response.text
    card: dict[str, Any] = response.json()
    return card


def enrollment_code(client: Client, key: Headers, number: str) -> str:
    response = client.post("/v1/partner/enrollments", json={"member_number": number}, headers=key)
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


def test_self_added_card_with_its_program(client: Client) -> None:
    issuer_id, _ = partner(client, COFFEE)
    spaced = f"{COFFEE_NUMBER[:4]} {COFFEE_NUMBER[4:8]}-{COFFEE_NUMBER[8:]}"
    card = add(client, user(client), number=spaced, issuer_id=issuer_id, label="morning")
    assert card["id"].startswith("crd_")
    assert card["kind"] == "self_added"
    assert card["number"] == COFFEE_NUMBER
    assert card["issuer"]["issuer_id"] == issuer_id
    assert card["issuer"]["name"] == "Coffee Club"
    assert card["issuer"]["branding"]["background_color"] == "#112233"
    assert card["issuer"]["barcode_format"] == "ean13"
    assert card["barcode_format"] == "ean13"
    assert card["label"] == "morning"
    assert card["favorite"] is False and card["position"] == 0
    assert card["created_at"].endswith("Z")


def test_program_is_recognised_when_not_given(client: Client) -> None:
    partner(client, COFFEE)
    books_id, _ = partner(client, BOOKS)
    card = add(client, user(client), number=BOOKS_NUMBER)
    assert card["kind"] == "self_added"
    assert card["issuer"]["issuer_id"] == books_id
    assert card["barcode_format"] == "code128"


def test_unknown_number_becomes_a_custom_card(client: Client) -> None:
    partner(client, COFFEE)
    who = user(client)
    card = add(client, who, number="GYM-0042-XY")
    assert card["kind"] == "custom"
    assert card["issuer"] is None  # present, and null
    assert card["number"] == "GYM0042XY"
    assert card["barcode_format"] == "code128"
    qr = add(client, who, number="https://gym.example/m/42", barcode_format="qr")
    assert qr["barcode_format"] == "qr" and qr["kind"] == "custom"


def test_wrong_check_digit_is_refused_for_a_chosen_program(client: Client) -> None:
    issuer_id, _ = partner(client, COFFEE)
    wrong = COFFEE_NUMBER[:-1] + str((int(COFFEE_NUMBER[-1]) + 1) % 10)
    response = client.post(
        "/v1/me/cards", json={"number": wrong, "issuer_id": issuer_id}, headers=user(client)
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_check_digit"
    assert response.json()["errors"][0]["field"] == "number"


def test_number_must_be_drawable_in_the_cards_format(client: Client) -> None:
    who = user(client)
    response = client.post(
        "/v1/me/cards", json={"number": "ABC123", "barcode_format": "ean13"}, headers=who
    )
    assert response.status_code == 422
    assert response.json()["code"] == "barcode_unencodable"
    assert response.json()["errors"][0]["field"] == "number"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({}, "card_source_required", "number"),
        ({"label": "x"}, "card_source_required", "number"),
        ({"number": "123", "enrollment_code": "AAAA"}, "card_source_required", "enrollment_code"),
        (
            {"enrollment_code": "AAAA", "barcode_format": "qr"},
            "card_source_required",
            "barcode_format",
        ),
        ({"number": " - "}, "invalid_card_number", "number"),
        ({"number": "caf\u00e9"}, "invalid_card_number", "number"),
        ({"number": "123", "issuer_id": "iss_nope"}, "issuer_not_found", "issuer_id"),
        ({"enrollment_code": "not a code"}, "enrollment_code_invalid", "enrollment_code"),
    ],
)
def test_bad_add_requests_say_what_is_wrong(
    client: Client, body: dict[str, Any], code: str, field: str
) -> None:
    response = client.post("/v1/me/cards", json=body, headers=user(client))
    assert response.status_code in {404, 422}
    assert response.json()["code"] == code
    assert response.json()["errors"][0]["field"] == field


def test_the_same_card_twice_is_a_conflict(client: Client) -> None:
    issuer_id, _ = partner(client, COFFEE)
    who = user(client)
    first = add(client, who, number=COFFEE_NUMBER, issuer_id=issuer_id)
    again = client.post("/v1/me/cards", json={"number": COFFEE_NUMBER}, headers=who)
    assert again.status_code == 409
    assert again.json()["code"] == "card_exists"
    assert first["id"] in again.json()["detail"]
    add(client, who, number="LOCKER7")
    dup = client.post("/v1/me/cards", json={"number": "LOCKER-7"}, headers=who)
    assert dup.json()["code"] == "card_exists"
    # Another user may hold the same number; so may this user as a card of another program.
    add(client, user(client), number=COFFEE_NUMBER)
    books_id, _ = partner(client, {"name": "Other", "barcode_format": "code128"})
    add(client, who, number=COFFEE_NUMBER, issuer_id=books_id)


def test_add_is_idempotent_with_a_key(client: Client) -> None:
    who = user(client)
    headers = {**who, "Idempotency-Key": "add-1"}
    first = client.post("/v1/me/cards", json={"number": "IDEM1"}, headers=headers)
    second = client.post("/v1/me/cards", json={"number": "IDEM1"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert len(client.get("/v1/me/cards", headers=who).json()["items"]) == 1


def test_list_follows_position_then_creation_and_pages(client: Client) -> None:
    who = user(client)
    ids = [add(client, who, number=f"ORDER{i}")["id"] for i in range(5)]
    assert [c["position"] for c in client.get("/v1/me/cards", headers=who).json()["items"]] == [
        0,
        1,
        2,
        3,
        4,
    ]
    client.patch(f"/v1/me/cards/{ids[4]}", json={"position": 0}, headers=who)  # tie with ids[0]
    client.patch(f"/v1/me/cards/{ids[0]}", json={"position": 9}, headers=who)
    listed = client.get("/v1/me/cards", headers=who).json()
    assert [c["id"] for c in listed["items"]] == [ids[4], ids[1], ids[2], ids[3], ids[0]]
    client.patch(f"/v1/me/cards/{ids[1]}", json={"position": 0}, headers=who)  # older of a tie
    page1 = client.get("/v1/me/cards", params={"limit": 2}, headers=who).json()
    assert [c["id"] for c in page1["items"]] == [ids[1], ids[4]]
    page2 = client.get(
        "/v1/me/cards", params={"limit": 2, "cursor": page1["next_cursor"]}, headers=who
    ).json()
    page3 = client.get(
        "/v1/me/cards", params={"limit": 2, "cursor": page2["next_cursor"]}, headers=who
    ).json()
    assert [c["id"] for c in page2["items"] + page3["items"]] == [ids[2], ids[3], ids[0]]
    assert "next_cursor" not in page3 or page3["next_cursor"] is None
    bad = client.get("/v1/me/cards", params={"cursor": "!!"}, headers=who)
    assert bad.status_code == 422


def test_patch_changes_label_favorite_and_position(client: Client) -> None:
    who = user(client)
    card = add(client, who, number="PATCH1", label="old")
    changed = client.patch(
        f"/v1/me/cards/{card['id']}", json={"label": "gym", "favorite": True}, headers=who
    ).json()
    assert changed["label"] == "gym" and changed["favorite"] is True
    assert changed["number"] == "PATCH1" and changed["position"] == card["position"]
    cleared = client.patch(f"/v1/me/cards/{card['id']}", json={"label": None}, headers=who).json()
    assert "label" not in cleared and cleared["favorite"] is True
    assert client.get(f"/v1/me/cards/{card['id']}", headers=who).json() == cleared
    bad = client.patch(f"/v1/me/cards/{card['id']}", json={"position": -1}, headers=who)
    assert bad.status_code == 422
    unknown = client.patch(f"/v1/me/cards/{card['id']}", json={"number": "X"}, headers=who)
    assert unknown.status_code == 422


def test_delete_removes_the_card_and_frees_the_number(client: Client) -> None:
    who = user(client)
    card = add(client, who, number="GONE1")
    assert client.delete(f"/v1/me/cards/{card['id']}", headers=who).status_code == 204
    response = client.get(f"/v1/me/cards/{card['id']}", headers=who)
    assert response.status_code == 404
    assert response.json()["code"] == "card_not_found"
    assert client.delete(f"/v1/me/cards/{card['id']}", headers=who).status_code == 404
    assert client.get("/v1/me/cards", headers=who).json()["items"] == []
    add(client, who, number="GONE1")


def test_a_user_cannot_touch_another_users_card(client: Client) -> None:
    alice, bob = user(client), user(client)
    card = add(client, alice, number="ALICE42", label="mine")
    path = f"/v1/me/cards/{card['id']}"
    attempts = [
        client.get(path, headers=bob),
        client.patch(path, json={"label": "stolen"}, headers=bob),
        client.delete(path, headers=bob),
        client.get(path + "/barcode.svg", headers=bob),
        client.get(path + "/barcode.png", headers=bob),
    ]
    for response in attempts:
        assert response.status_code == 404
        assert response.json()["code"] == "card_not_found"
        assert "ALICE42" not in response.text
    assert client.get(path, headers=alice).json() == card  # untouched
    assert client.get("/v1/me/cards", headers=bob).json()["items"] == []
    assert client.get("/v1/me/cards/not-an-id", headers=alice).status_code == 404


def test_card_routes_need_a_user(client: Client) -> None:
    _, key = partner(client, BOOKS)
    assert client.get("/v1/me/cards").status_code == 401
    assert client.get("/v1/me/cards", headers=key).status_code == 403
    assert client.post("/v1/me/cards", json={"number": "1"}, headers=ADMIN).status_code == 403


async def test_limit_holds_under_concurrent_adds(aclient: httpx.AsyncClient) -> None:
    who = bearer((await aclient.post("/v1/users", json={})).json()["token"])
    for i in range(199):
        response = await aclient.post("/v1/me/cards", json={"number": f"LIM{i}"}, headers=who)
        assert response.status_code == 201
    racing = await asyncio.gather(
        *(aclient.post("/v1/me/cards", json={"number": f"RACE{i}"}, headers=who) for i in range(2))
    )
    assert sorted(r.status_code for r in racing) == [201, 409]
    refused = next(r for r in racing if r.status_code == 409)
    assert refused.json()["code"] == "card_limit_reached"
    listed = await aclient.get("/v1/me/cards", params={"limit": 200}, headers=who)
    assert len(listed.json()["items"]) == 200 and listed.json().get("next_cursor") is None
    over = await aclient.post("/v1/me/cards", json={"number": "ONE-MORE"}, headers=who)
    assert over.json()["code"] == "card_limit_reached"


def test_export_and_erase_cover_cards(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    issuer_id, key = partner(client, COFFEE)
    who = user(client)
    add(client, who, number=COFFEE_NUMBER, issuer_id=issuer_id)
    add(client, who, enrollment_code=enrollment_code(client, key, MEMBER_NUMBER))
    add(client, who, number="EXPORT1")
    export = client.get("/v1/me/export", headers=who).json()
    assert sorted(c["number"] for c in export["cards"]) == sorted(
        [COFFEE_NUMBER, MEMBER_NUMBER, "EXPORT1"]
    )
    assert client.delete("/v1/me", headers=who).status_code == 204
    families = {k.split(b":")[1] for k in redis_client.scan_iter(match=f"{key_prefix}:*")}
    assert families.isdisjoint({b"card", b"cards", b"cardref"})


def test_cardref_lists_every_wallet_holding_a_programs_number(client: Client) -> None:
    issuer_id, key = partner(client, COFFEE)
    alice, bob = user(client), user(client)
    enrolled = add(client, alice, enrollment_code=enrollment_code(client, key, COFFEE_NUMBER))
    scanned = add(client, bob, number=COFFEE_NUMBER)
    add(client, bob, number="CUSTOM1")
    cards = client.app.state.services.cards

    def holders(number: str) -> set[str]:
        # The service runs on the app's event loop, which the test client's portal owns.
        found = client.blocking_portal.call(cards.holders_of, issuer_id, number)
        return {holder.card_id for holder in found}

    assert holders(COFFEE_NUMBER) == {enrolled["id"], scanned["id"]}
    assert holders("CUSTOM1") == set()
    client.delete(f"/v1/me/cards/{enrolled['id']}", headers=alice)
    assert holders(COFFEE_NUMBER) == {scanned["id"]}


def test_no_card_or_member_number_is_stored_in_clear(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    coffee_id, coffee_key = partner(client, COFFEE)
    _, books_key = partner(client, BOOKS)
    secrets = [COFFEE_NUMBER, BOOKS_NUMBER, "CLEARTEXT9876", MEMBER_NUMBER, "MEMBER555000"]
    who = user(client)
    add(client, who, number=COFFEE_NUMBER, issuer_id=coffee_id)
    add(client, who, number=BOOKS_NUMBER)
    add(client, who, number="CLEARTEXT9876", barcode_format="qr")
    client.put(f"/v1/partner/members/{MEMBER_NUMBER}", json={"tier": "gold"}, headers=coffee_key)
    add(client, who, enrollment_code=enrollment_code(client, coffee_key, MEMBER_NUMBER))
    client.put("/v1/partner/members/MEMBER555000", json={"points": 5}, headers=books_key)
    enrollment_code(client, books_key, "MEMBER555000")  # a pending code holds a number too
    assert find_in_redis(redis_client, key_prefix, secrets) == []
    # The detector itself finds a number stored in clear (in a value or in a key name).
    redis_client.hset(f"{key_prefix}:probe", "f", f"x{BOOKS_NUMBER}y")
    redis_client.set(f"{key_prefix}:probe:{COFFEE_NUMBER}", "1")
    assert sorted(find_in_redis(redis_client, key_prefix, secrets)) == [
        COFFEE_NUMBER,
        BOOKS_NUMBER,
    ]
