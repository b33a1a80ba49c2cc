"""``wallet rotate-keys`` for real: data sealed under k1 stays readable with only k2 after it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import msgspec
import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient

from issuers.check_digits import gtin_check_digit
from issuers.members.models import EnrollmentRecord, MemberRecord
from kernel.keyring import Keyring, generate_key_material
from tests.conftest import ADMIN, bearer
from wallet_api.app import create_app
from wallet_api.rotation import rotate_all
from wallet_api.settings import Settings

Client = TestClient[Litestar]
SCANNED = "290123456789" + gtin_check_digit("290123456789")
ENROLLED = "290555555555" + gtin_check_digit("290555555555")
PENDING = "290999999999" + gtin_check_digit("290999999999")


def _seed(client: Client) -> dict[str, Any]:
    """Cards of all three kinds, a member, and an enrollment code not used yet."""
    body = {
        "name": "Grocer",
        "barcode_format": "ean13",
        "number_patterns": [{"prefix": "290", "lengths": [13], "check_digit": "ean"}],
    }
    created = client.post("/v1/admin/issuers", json=body, headers=ADMIN).json()
    key = bearer(created["api_key"])
    who = bearer(client.post("/v1/users", json={}).json()["token"])
    client.put(f"/v1/partner/members/{ENROLLED}", json={"tier": "gold"}, headers=key)

    def code(number: str) -> str:
        response = client.post(
            "/v1/partner/enrollments", json={"member_number": number}, headers=key
        )
        value: str = response.json()["code"]
        return value

    for card in (
        {"number": SCANNED},
        {"number": "LOCKER-77", "barcode_format": "qr"},
        {"enrollment_code": code(ENROLLED)},
    ):
        assert client.post("/v1/me/cards", json=card, headers=who).status_code == 201
    return {"partner": key, "user": who, "pending_code": code(PENDING)}


def _numbers(client: Client, who: dict[str, str]) -> list[str]:
    response = client.get("/v1/me/cards", headers=who)
    assert response.status_code == 200, response.text
    return sorted(card["number"] for card in response.json()["items"])


def _member_key_ids(client: redis.Redis, prefix: str, keyring: Keyring) -> list[str]:
    """The key id each stored member and enrollment number is sealed with."""
    found = []
    for key in client.scan_iter(match=f"{prefix}:members:*"):
        for raw in cast(dict[bytes, bytes], client.hgetall(key)).values():
            member = msgspec.msgpack.decode(raw, type=MemberRecord)
            found.append(keyring.key_id_of(member.number_sealed))
    for key in client.scan_iter(match=f"{prefix}:enroll:*"):
        raw = cast(bytes, client.get(key))
        enrollment = msgspec.msgpack.decode(raw, type=EnrollmentRecord)
        found.append(keyring.key_id_of(enrollment.number_sealed))
    return found


def test_rotate_keys_reseals_cards_and_members(
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    assert settings.data_keys
    old = settings.data_keys  # "k1:<material>"
    new = f"k2:{generate_key_material()}"
    both = msgspec.structs.replace(settings, data_keys=f"{new},{old}")
    only_new = msgspec.structs.replace(settings, data_keys=new)
    expected = sorted([SCANNED, "LOCKER77", ENROLLED])
    assert both.data_keys and both.index_key
    keyring = Keyring.parse(both.data_keys, both.index_key)

    with TestClient(create_app(settings)) as client:
        seeded = _seed(client)
        assert _numbers(client, seeded["user"]) == expected

    # Before rotation, a deployment holding only k2 cannot open what k1 sealed.
    with TestClient(create_app(only_new)) as client, caplog.at_level(logging.CRITICAL):
        assert client.get("/v1/me/cards", headers=seeded["user"]).status_code == 500

    # Cards are read and written under k2 while k1 is still configured.
    with TestClient(create_app(both)) as client:
        assert _numbers(client, seeded["user"]) == expected
    assert _member_key_ids(redis_client, key_prefix, keyring) == ["k1", "k1"]
    counts = asyncio.run(rotate_all(both))
    # the member and the pending code; no dynamic codes here (tests/wallet_api/test_codes.py)
    assert counts == {"cards": 3, "members": 2, "codes": 0}
    assert asyncio.run(rotate_all(both)) == {"cards": 0, "members": 0, "codes": 0}
    assert _member_key_ids(redis_client, key_prefix, keyring) == ["k2", "k2"]

    with TestClient(create_app(only_new)) as client:
        assert _numbers(client, seeded["user"]) == expected
        card = client.get("/v1/me/cards", headers=seeded["user"]).json()["items"]
        assert [c["member"]["tier"] for c in card if c["kind"] == "enrolled"] == ["gold"]
        member = client.get(f"/v1/partner/members/{ENROLLED}", headers=seeded["partner"])
        assert member.json()["member_number"] == ENROLLED
        attached = client.post(
            "/v1/me/cards", json={"enrollment_code": seeded["pending_code"]}, headers=seeded["user"]
        )
        assert attached.status_code == 201
        assert attached.json()["number"] == PENDING
        barcode = client.get(
            f"/v1/me/cards/{attached.json()['id']}/barcode.svg", headers=seeded["user"]
        )
        assert barcode.status_code == 200
