"""POS verification, continued: lockouts, the partner's log, the verification's connection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
from litestar.testing import TestClient

from tests.wallet_api.code_helpers import (
    Client,
    Program,
    new_user,
    one_time_code,
    provisioning,
    pyotp_payload,
    ref_of,
    verify,
)
from wallet_api.app import create_app
from wallet_api.embedded_redis import EmbeddedRedis
from wallet_api.settings import Lockout, Settings

# --- brute force ---------------------------------------------------------------------------


def _locks(redis_client: redis.Redis, key_prefix: str) -> list[bytes]:
    return list(redis_client.scan_iter(match=f"{key_prefix}:poslock:*"))


def test_terminal_is_locked_after_thirty_failures_and_unlocked_after(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    program = Program(client, "Coffee", "qr", mode="totp")
    terminal, other_till = program.terminal(), program.terminal()
    user = new_user(client)
    data = provisioning(client, user, program.enrolled_card(user)[0])
    for attempt in range(30):
        response = verify(client, terminal, f"garbage-{attempt}")
        assert response.json()["code"] == "code_unknown"
    locked = verify(client, terminal, pyotp_payload(data))  # even a good code
    assert (locked.status_code, locked.json()["code"]) == (429, "too_many_attempts")
    assert 290 <= int(locked.headers["retry-after"]) <= 300
    # Only that terminal: another till of the program still works.
    assert verify(client, other_till, pyotp_payload(data)).status_code == 200
    # Five minutes later (the lock's TTL, shortened here) the terminal works again.
    (lock,) = _locks(redis_client, key_prefix)
    redis_client.pexpire(lock, 1)
    time.sleep(0.01)
    response = verify(client, terminal, "garbage-again")
    assert response.json()["code"] == "code_unknown"


def test_card_reference_is_locked_after_ten_failures(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    program = Program(client, "Coffee", "qr", mode="totp", digits=8)
    terminal = program.terminal()
    user = new_user(client)
    data = provisioning(client, user, program.enrolled_card(user)[0])
    neighbour = provisioning(client, user, program.enrolled_card(user)[0])
    for guess in range(10):
        response = verify(client, terminal, ref_of(data) + f"{guess:08d}")
        assert response.json()["code"] in {"code_unknown", "code_expired"}
    locked = verify(client, terminal, pyotp_payload(data))
    assert (locked.status_code, locked.json()["code"]) == (429, "too_many_attempts")
    assert 590 <= int(locked.headers["retry-after"]) <= 600
    # The terminal itself is not locked (10 < 30): other cards still verify.
    assert verify(client, terminal, pyotp_payload(neighbour)).status_code == 200
    (lock,) = _locks(redis_client, key_prefix)
    redis_client.pexpire(lock, 1)
    time.sleep(0.01)
    assert verify(client, terminal, pyotp_payload(data)).status_code == 200


def test_replays_do_not_lock_a_busy_till(client: Client) -> None:
    """A double scan is not a guess: 40 replays leave the terminal usable."""
    program = Program(client, "Coffee", "ean13", mode="one_time")
    terminal = program.terminal()
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    payload = one_time_code(client, user, card_id)
    codes = [verify(client, terminal, payload).status_code for _ in range(41)]
    assert codes == [200] + [409] * 40
    fresh = one_time_code(client, user, card_id)
    assert verify(client, terminal, fresh).status_code == 200


@pytest.fixture
def short_locks(settings: Settings) -> Iterator[Client]:
    quick = msgspec.structs.replace(
        settings,
        pos_terminal_lockout=Lockout(3, 60, 1),
        pos_card_lockout=Lockout(2, 60, 1),
    )
    with TestClient(create_app(quick)) as client:
        yield client


def test_lockout_limits_come_from_settings_and_expire(short_locks: Client) -> None:
    client = short_locks
    terminal = Program(client, "Coffee", "qr", mode="totp").terminal()
    for _ in range(3):
        assert verify(client, terminal, "nope").json()["code"] == "code_unknown"
    locked = verify(client, terminal, "nope")
    assert (locked.status_code, locked.headers["retry-after"]) == (429, "1")
    time.sleep(1.1)  # the configured lock is one second
    assert verify(client, terminal, "nope").json()["code"] == "code_unknown"


# --- the partner's log ---------------------------------------------------------------------


def test_every_verification_is_in_the_partners_log(client: Client) -> None:
    program = Program(client, "Coffee", "qr", mode="totp")
    store = client.post(
        "/v1/partner/stores",
        json={"name": "Opera", "lat": 48.87, "lon": 2.33, "radius_m": 60, "timezone": "UTC"},
        headers=program.headers,
    )
    assert store.status_code == 201, store.text
    terminal = program.terminal(store_id=store.json()["id"])
    me = client.get("/v1/pos/me", headers=terminal).json()
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    data = provisioning(client, user, card_id)
    accepted = verify(client, terminal, pyotp_payload(data)).json()
    verify(client, terminal, pyotp_payload(data))
    verify(client, terminal, "garbage")
    page = client.get("/v1/partner/verifications", params={"limit": 2}, headers=program.headers)
    assert page.status_code == 200
    first = page.json()
    rest = client.get(
        "/v1/partner/verifications",
        params={"cursor": first["next_cursor"]},
        headers=program.headers,
    ).json()
    entries: list[dict[str, Any]] = first["items"] + rest["items"]
    assert [(e["outcome"], e["method"], e["card_id"]) for e in entries] == [
        ("code_unknown", None, None),
        ("code_replayed", "totp", card_id),
        ("accepted", "totp", card_id),
    ]
    assert entries[2]["id"] == accepted["verification_id"]
    assert {(e["terminal_id"], e["store_id"]) for e in entries} == {
        (me["terminal_id"], store.json()["id"])
    }
    assert all(e["time"].endswith("Z") for e in entries)
    assert rest["next_cursor"] is None
    # Another program sees none of it.
    other = Program(client, "Bakery", "qr", mode="totp")
    assert client.get("/v1/partner/verifications", headers=other.headers).json()["items"] == []


def test_log_cursor_is_validated(client: Client) -> None:
    program = Program(client, "Coffee", "qr", mode="totp")
    response = client.get(
        "/v1/partner/verifications", params={"cursor": "bm9wZQ"}, headers=program.headers
    )
    assert (response.status_code, response.json()["code"]) == (422, "invalid_cursor")


# --- the verification's own connection -----------------------------------------------------


def test_verification_connects_like_the_client_unix_socket_password_and_db(
    settings: Settings, tmp_path: Path
) -> None:
    """The embedded default listens on a unix socket; deployments may add a password and a
    database number: the multiplexed connection (kernel/direct_redis.py) must follow all three."""
    with EmbeddedRedis(tmp_path / "r") as server:
        with redis.Redis.from_url(server.url) as admin:
            admin.config_set("requirepass", "s3cret")
        try:
            url = f"{server.url}?db=3&password=s3cret"
            with TestClient(create_app(msgspec.structs.replace(settings, redis_url=url))) as c:
                program = Program(c, "Coffee", "qr", mode="totp")
                terminal = program.terminal()
                user = new_user(c)
                data = provisioning(c, user, program.enrolled_card(user)[0])
                assert verify(c, terminal, pyotp_payload(data)).status_code == 200
                replay = verify(c, terminal, pyotp_payload(data))
                assert replay.json()["code"] == "code_replayed"
            with redis.Redis.from_url(url) as check:
                assert check.exists(*check.keys(f"{settings.key_prefix}:verifications:*")) == 1
        finally:
            with redis.Redis.from_url(f"{server.url}?password=s3cret") as admin:
                admin.config_set("requirepass", "")


def test_verification_survives_a_dropped_connection(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    program = Program(client, "Coffee", "ean13", mode="one_time")
    terminal = program.terminal()
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)

    def fresh() -> str:
        return one_time_code(client, user, card_id)

    assert verify(client, terminal, fresh()).status_code == 200
    ours = [c for c in redis_client.client_list() if c["name"] == f"{key_prefix}-direct"]
    assert len(ours) == 1  # one multiplexed connection, named for operators
    redis_client.client_kill_filter(_id=ours[0]["id"])
    assert verify(client, terminal, fresh()).status_code == 200  # reconnected
