"""POS verification: who stands at the till, proven by a code accepted exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import cast

import msgspec
import pyotp
import pytest
import redis
from litestar.testing import TestClient

from kernel.keyring import Keyring
from tests.conftest import ADMIN, bearer
from tests.wallet_api.code_helpers import (
    AsyncClient,
    Client,
    Program,
    async_card,
    new_user,
    one_time_code,
    provisioning,
    pyotp_payload,
    ref_of,
    rfc6238,
    verify,
)
from wallet_api.app import create_app
from wallet_api.codes.models import OneTimeRecord
from wallet_api.settings import Settings

# --- what the till gets --------------------------------------------------------------------


def test_pyotp_code_verifies_and_names_the_member(client: Client) -> None:
    program = Program(client, "Coffee", "qr", mode="totp", period_s=30, digits=8)
    terminal = program.terminal()
    user = new_user(client)
    card_id, number = program.enrolled_card(user)
    program.member(number, tier="gold", points=1200)
    data = provisioning(client, user, card_id)
    response = verify(client, terminal, pyotp_payload(data))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.pop("verification_id").startswith("ver_")
    assert body == {
        "card_id": card_id,
        "issuer_id": program.issuer_id,
        "member_number": number,
        "tier": "gold",
        "points": 1200,
        "method": "totp",
        "coupons": [],
    }


@pytest.mark.parametrize(("period", "digits"), [(15, 6), (30, 8), (120, 10)])
def test_independent_rfc6238_code_from_secret_hex_verifies(
    client: Client, period: int, digits: int
) -> None:
    """Google Wallet computes from the hex key, pattern and period: so must any RFC 6238."""
    program = Program(client, "Coffee", "qr", mode="totp", period_s=period, digits=digits)
    terminal = program.terminal()
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    data = provisioning(client, user, card_id)
    details = data["google_wallet_rotating_barcode"]["totpDetails"]
    period_s = int(details["periodMillis"]) // 1000
    now = time.time()
    value = rfc6238(details["parameters"][0]["key"], now, period_s, digits)
    assert value == pyotp.TOTP(data["secret"], digits=digits, interval=period).at(now)
    payload = data["google_wallet_rotating_barcode"]["valuePattern"].replace(
        "{totp_value_0}", value
    )
    response = verify(client, terminal, payload)
    assert response.status_code == 200, response.text
    assert response.json()["card_id"] == card_id


def test_self_added_card_verifies_with_its_number_when_the_crm_has_no_member(
    client: Client,
) -> None:
    program = Program(client, "Coffee", "qr", mode="totp", allow_self_added=True)
    terminal = program.terminal()
    user = new_user(client)
    card_id, number = program.self_added_card(user)
    response = verify(client, terminal, pyotp_payload(provisioning(client, user, card_id)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["member_number"], body["tier"], body["points"]) == (number, None, None)


def test_one_time_code_verifies_once(client: Client) -> None:
    program = Program(client, "Coffee", "ean13", mode="one_time")
    terminal = program.terminal()
    user = new_user(client)
    card_id, number = program.enrolled_card(user)
    program.member(number, points=5)
    payload = one_time_code(client, user, card_id)
    accepted = verify(client, terminal, payload)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["method"] == "one_time"
    assert (accepted.json()["member_number"], accepted.json()["points"]) == (number, 5)
    again = verify(client, terminal, payload)
    assert (again.status_code, again.json()["code"]) == (409, "code_replayed")


def test_upca_code_read_as_thirteen_digits_verifies(client: Client) -> None:
    program = Program(client, "Deli", "upca", mode="one_time")
    terminal = program.terminal()
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    payload = one_time_code(client, user, card_id)
    assert len(payload) == 12
    response = verify(client, terminal, "0" + payload)  # what many scanners send
    assert response.status_code == 200, response.text


def test_static_number_verifies_where_the_policy_is_static(client: Client) -> None:
    program = Program(client, "Library", "code128")
    terminal = program.terminal()
    user = new_user(client)
    card_id, number = program.enrolled_card(user)
    program.member(number, tier="reader")
    for _ in range(2):  # a static card is shown again and again
        response = verify(client, terminal, number)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["method"], body["card_id"], body["tier"]) == ("static", card_id, "reader")


# --- refusals ------------------------------------------------------------------------------


def test_code_from_two_steps_ago_is_expired_and_one_step_back_is_accepted(
    client: Client,
) -> None:
    program = Program(client, "Coffee", "qr", mode="totp", period_s=30)
    terminal = program.terminal()
    user = new_user(client)
    data = provisioning(client, user, program.enrolled_card(user)[0])
    old = verify(client, terminal, pyotp_payload(data, time.time() - 60))
    assert (old.status_code, old.json()["code"]) == (422, "code_expired")
    assert old.json()["errors"][0]["field"] == "payload"
    # Clock skew: the previous step is still accepted.
    assert verify(client, terminal, pyotp_payload(data, time.time() - 30)).status_code == 200


def test_replays_and_steps_at_or_below_the_last_accepted_are_refused(client: Client) -> None:
    program = Program(client, "Coffee", "qr", mode="totp", period_s=60)
    terminal = program.terminal()
    user = new_user(client)
    data = provisioning(client, user, program.enrolled_card(user)[0])
    current = pyotp_payload(data)
    assert verify(client, terminal, current).status_code == 200
    replay = verify(client, terminal, current)
    assert (replay.status_code, replay.json()["code"]) == (409, "code_replayed")
    replay = verify(client, program.terminal(), current)  # another till: still once, ever
    assert (replay.status_code, replay.json()["code"]) == (409, "code_replayed")
    previous = verify(client, terminal, pyotp_payload(data, time.time() - 60))
    assert previous.status_code == 422
    assert previous.json()["code"] == "code_expired"


def test_skew_window_is_configurable(settings: Settings) -> None:
    strict = msgspec.structs.replace(settings, totp_skew_steps=0)
    with TestClient(create_app(strict)) as client:
        program = Program(client, "Coffee", "qr", mode="totp", period_s=30)
        terminal = program.terminal()
        user = new_user(client)
        data = provisioning(client, user, program.enrolled_card(user)[0])
        previous = verify(client, terminal, pyotp_payload(data, time.time() - 30))
        assert (previous.status_code, previous.json()["code"]) == (422, "code_expired")
        assert verify(client, terminal, pyotp_payload(data)).status_code == 200


def test_another_programs_card_is_the_wrong_issuer(client: Client) -> None:
    mine = Program(client, "Coffee", "qr", mode="totp")
    theirs = Program(client, "Bakery", "qr", mode="totp")
    user = new_user(client)
    data = provisioning(client, user, theirs.enrolled_card(user)[0])
    response = verify(client, mine.terminal(), pyotp_payload(data))
    assert (response.status_code, response.json()["code"]) == (422, "code_wrong_issuer")
    # Refused at the wrong till, the code is still good at the right one.
    assert verify(client, theirs.terminal(), pyotp_payload(data)).status_code == 200


def test_one_time_code_of_another_program_is_the_wrong_issuer(client: Client) -> None:
    mine = Program(client, "Coffee", "ean13", mode="one_time")
    theirs = Program(client, "Bakery", "ean13", mode="one_time")
    user = new_user(client)
    card_id, _ = theirs.enrolled_card(user)
    payload = one_time_code(client, user, card_id)
    response = verify(client, mine.terminal(), payload)
    assert (response.status_code, response.json()["code"]) == (422, "code_wrong_issuer")
    # Also at a till that reads card numbers: a token is not a number of that program.
    static = Program(client, "Grocer", "ean13", mode="static")
    response = verify(client, static.terminal(), payload)
    assert (response.status_code, response.json()["code"]) == (422, "code_wrong_issuer")
    assert verify(client, theirs.terminal(), payload).status_code == 200


@pytest.mark.parametrize("mode", ["totp", "one_time"])
def test_static_number_under_a_dynamic_policy_is_refused(client: Client, mode: str) -> None:
    program = Program(client, "Coffee", "code128", mode=mode)
    terminal = program.terminal()
    user = new_user(client)
    _, number = program.enrolled_card(user)
    response = verify(client, terminal, number)
    assert (response.status_code, response.json()["code"]) == (422, "code_static_not_allowed")
    # A member the CRM knows but no wallet holds: the plastic card, refused just the same.
    plastic = program.new_number()
    program.member(plastic, tier="gold")
    response = verify(client, terminal, plastic)
    assert response.json()["code"] == "code_static_not_allowed"


@pytest.mark.parametrize(
    "payload",
    ["hello", "0", "1234567890123456", "9" * 18, "' or 1=1 --", "ümlaut", " " * 3 + "x", "9" * 512],
)
def test_garbage_is_an_unknown_code(client: Client, payload: str) -> None:
    terminal = Program(client, "Coffee", "qr", mode="totp").terminal()
    response = verify(client, terminal, payload)
    assert (response.status_code, response.json()["code"]) == (422, "code_unknown")


def test_wrong_totp_value_for_a_real_card_is_unknown(client: Client) -> None:
    program = Program(client, "Coffee", "qr", mode="totp", digits=8)
    terminal = program.terminal()
    user = new_user(client)
    data = provisioning(client, user, program.enrolled_card(user)[0])
    good = pyotp_payload(data)
    wrong = ref_of(data) + str((int(good[10:]) + 1) % 10**8).zfill(8)
    for payload in (wrong, ref_of(data) + good[10:-1]):  # wrong value, wrong length
        response = verify(client, terminal, payload)
        assert (response.status_code, response.json()["code"]) == (422, "code_unknown")
    assert verify(client, terminal, good).status_code == 200


def test_a_policy_change_retires_codes_of_the_old_policy(client: Client) -> None:
    program = Program(client, "Coffee", "qr", mode="totp")
    terminal = program.terminal()
    user = new_user(client)
    data = provisioning(client, user, program.enrolled_card(user)[0])
    policy = {"code_policy": {"mode": "one_time"}}
    client.patch("/v1/partner/issuer", json=policy, headers=program.headers)
    response = verify(client, terminal, pyotp_payload(data))
    assert (response.status_code, response.json()["code"]) == (422, "code_expired")


def test_expired_one_time_code_is_refused(
    client: Client, settings: Settings, redis_client: redis.Redis, key_prefix: str
) -> None:
    program = Program(client, "Coffee", "ean13", mode="one_time", ttl_s=15)
    terminal = program.terminal()
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    payload = one_time_code(client, user, card_id)
    # Age the stored token instead of waiting 15 s: its record says when it expires.
    assert settings.data_keys and settings.index_key
    index = Keyring.parse(settings.data_keys, settings.index_key).blind_index(
        "one-time-code", payload
    )
    key = f"{key_prefix}:otc:{{{program.issuer_id}}}:{index}"
    raw = cast(bytes, redis_client.hget(key, "record"))
    record = msgspec.msgpack.decode(raw, type=OneTimeRecord)
    aged = msgspec.structs.replace(record, expires_at=time.time() - 1)
    redis_client.hset(
        key, mapping={"record": msgspec.msgpack.encode(aged), "expires_at": repr(aged.expires_at)}
    )
    response = verify(client, terminal, payload)
    assert (response.status_code, response.json()["code"]) == (422, "code_expired")


# --- authentication ------------------------------------------------------------------------


def test_verify_needs_a_live_terminal_key(client: Client) -> None:
    program = Program(client, "Coffee", "qr", mode="totp")
    body = {"payload": "12345678901234567"}
    missing = client.post("/v1/pos/verify", json=body)
    assert missing.status_code == 401
    unknown = client.post("/v1/pos/verify", json=body, headers=bearer("wtk_" + "x" * 43))
    assert (unknown.status_code, unknown.json()["code"]) == (401, "invalid_token")
    malformed = client.post("/v1/pos/verify", json=body, headers={"Authorization": "Basic x"})
    assert malformed.status_code == 401
    for other in (new_user(client), program.headers, ADMIN):
        wrong = client.post("/v1/pos/verify", json=body, headers=other)
        assert (wrong.status_code, wrong.json()["code"]) == (403, "wrong_principal")
    # Revocation takes effect at once, though this process keeps the terminals it has read:
    # its script checks the kept record against the program's (each kind of payload).
    created = client.post("/v1/partner/terminals", json={"name": "T"}, headers=program.headers)
    terminal = bearer(created.json()["key"])
    user = new_user(client)
    data = provisioning(client, user, program.enrolled_card(user)[0])
    payloads = ["x", "1234567890128", pyotp_payload(data)]
    for payload in payloads:
        assert verify(client, terminal, payload).status_code in {200, 422}
    client.delete(f"/v1/partner/terminals/{created.json()['id']}", headers=program.headers)
    for payload in payloads:
        revoked = verify(client, terminal, payload)
        assert (revoked.status_code, revoked.json()["code"]) == (401, "invalid_token")


def test_unauthenticated_request_is_refused_before_its_body_is_read(client: Client) -> None:
    response = client.post("/v1/pos/verify", content=b"{not json")
    assert response.status_code == 401


# --- exactly once --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["totp", "one_time"])
async def test_hundred_concurrent_verifications_accept_one(aclient: AsyncClient, mode: str) -> None:
    terminal, user, card_id = await async_card(aclient, mode)
    if mode == "totp":
        data = (await aclient.get(f"/v1/me/cards/{card_id}/totp", headers=user)).json()
        payload = pyotp_payload(data)
    else:
        code = await aclient.post(f"/v1/me/cards/{card_id}/codes", headers=user)
        payload = code.json()["payload"]
    responses = await asyncio.gather(
        *(aclient.post("/v1/pos/verify", json={"payload": payload}, headers=terminal)
          for _ in range(100))
    )  # fmt: skip
    outcomes = Counter("accepted" if r.status_code == 200 else r.json()["code"] for r in responses)
    assert outcomes == {"accepted": 1, "code_replayed": 99}
