"""Dynamic codes for the wallet holder: TOTP provisioning, one-time codes, code images."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from io import BytesIO
from typing import Any, cast

import msgspec
import pytest
import redis
import zxingcpp
from litestar.testing import TestClient
from PIL import Image

from issuers.check_digits import gtin_valid
from kernel.keyring import Keyring, generate_key_material
from tests.conftest import ADMIN
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
    verify,
)
from wallet_api.app import create_app
from wallet_api.codes.models import CodeRefRecord
from wallet_api.rotation import rotate_all
from wallet_api.settings import Settings

ZX = zxingcpp.BarcodeFormat


def stored_values(client: redis.Redis, prefix: str) -> list[bytes]:
    """Every value under the prefix, read by type (DUMP may compress and hide a value)."""
    found: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}:*"):
        kind = client.type(key)
        if kind == b"string":
            found.append(cast(bytes, client.get(key) or b""))
        elif kind == b"hash":
            fields = cast(dict[bytes, bytes], client.hgetall(key))
            found += [k + v for k, v in fields.items()]
        elif kind == b"zset":
            found += cast(list[bytes], client.zrange(key, 0, -1))
        elif kind == b"stream":
            rows = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(key))
            found += [b"".join(k + v for k, v in f.items()) for _, f in rows]
    return found


def scanned(png: bytes) -> list[tuple[zxingcpp.BarcodeFormat, str]]:
    with Image.open(BytesIO(png)) as image:
        return [(found.format, found.text) for found in zxingcpp.read_barcodes(image)]


# --- TOTP provisioning -----------------------------------------------------------------


def test_totp_provisioning_has_every_field_the_issue_lists(client: Client) -> None:
    program = Program(client, "Coffee", "qr", mode="totp", period_s=45, digits=7)
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    response = client.get(f"/v1/me/cards/{card_id}/totp", headers=user)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    assert set(data) == {
        "secret",
        "secret_hex",
        "period_s",
        "digits",
        "algorithm",
        "value_pattern",
        "google_wallet_rotating_barcode",
    }
    assert re.fullmatch(r"[A-Z2-7]{32}", data["secret"])  # 160 bits, base32 without padding
    assert re.fullmatch(r"[0-9a-f]{40}", data["secret_hex"])
    assert (data["period_s"], data["digits"], data["algorithm"]) == (45, 7, "SHA1")
    assert re.fullmatch(r"[1-9][0-9]{9}\{totp_value_0\}", data["value_pattern"])


def test_google_wallet_object_matches_the_spec_names_and_types(client: Client) -> None:
    """specs.md: {type, renderEncoding, valuePattern, alternateText, totpDetails: {algorithm:
    "TOTP_SHA1", periodMillis: "<int64 as string>", parameters: [{key: hex, valueLength}]}}."""
    program = Program(client, "Coffee", "pdf417", mode="totp", period_s=30, digits=8)
    user = new_user(client)
    data = provisioning(client, user, program.enrolled_card(user)[0])
    barcode = data["google_wallet_rotating_barcode"]
    assert set(barcode) == {
        "type",
        "renderEncoding",
        "valuePattern",
        "alternateText",
        "totpDetails",
    }
    assert barcode["type"] == "PDF_417"
    assert barcode["renderEncoding"] == "UTF_8"
    assert barcode["valuePattern"] == data["value_pattern"]
    assert "{totp_value_0}" in barcode["valuePattern"]
    assert isinstance(barcode["alternateText"], str)
    details = barcode["totpDetails"]
    assert set(details) == {"algorithm", "periodMillis", "parameters"}
    assert details["algorithm"] == "TOTP_SHA1"
    assert details["periodMillis"] == "30000" and isinstance(details["periodMillis"], str)
    assert details["parameters"] == [{"key": data["secret_hex"], "valueLength": 8}]
    assert isinstance(details["parameters"][0]["valueLength"], int)


@pytest.mark.parametrize(
    ("fmt", "google_type"),
    [
        ("qr", "QR_CODE"),
        ("aztec", "AZTEC"),
        ("code128", "CODE_128"),
        ("code39", "CODE_128"),  # Google rotates only four symbologies (docs/pos.md)
        ("itf", "CODE_128"),
    ],
)
def test_google_barcode_type_follows_the_programs_format(
    client: Client, fmt: str, google_type: str
) -> None:
    program = Program(client, "Coffee", fmt, mode="totp", digits=8)
    user = new_user(client)
    data = provisioning(client, user, program.enrolled_card(user)[0])
    assert data["google_wallet_rotating_barcode"]["type"] == google_type


def test_a_card_keeps_one_secret_for_its_life(client: Client) -> None:
    program = Program(client, "Coffee", "qr", mode="totp")
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    first = provisioning(client, user, card_id)
    assert provisioning(client, user, card_id) == first
    # The program changes its digits: the same secret, the new length.
    policy = {"code_policy": {"mode": "totp", "digits": 6}}
    client.patch("/v1/partner/issuer", json=policy, headers=program.headers)
    changed = provisioning(client, user, card_id)
    assert (changed["secret"], changed["digits"]) == (first["secret"], 6)
    assert changed["value_pattern"] == first["value_pattern"]
    # Another card of the same user gets its own secret and reference.
    other = provisioning(client, user, program.enrolled_card(user)[0])
    assert other["secret"] != first["secret"]
    assert ref_of(other) != ref_of(first)


async def test_concurrent_first_provisioning_returns_one_secret(aclient: AsyncClient) -> None:
    _, user, card_id = await async_card(aclient, "totp")
    responses = await asyncio.gather(
        *(aclient.get(f"/v1/me/cards/{card_id}/totp", headers=user) for _ in range(20))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["secret"] for r in responses}) == 1
    assert len({r.json()["value_pattern"] for r in responses}) == 1
    again = await aclient.get(f"/v1/me/cards/{card_id}/totp", headers=user)
    assert again.json() == responses[0].json()


def test_totp_secret_is_sealed_at_rest(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    program = Program(client, "Coffee", "qr", mode="totp")
    user = new_user(client)
    card_id, number = program.enrolled_card(user)
    data = provisioning(client, user, card_id)
    seed = bytes.fromhex(data["secret_hex"])
    stored = b"".join(stored_values(redis_client, key_prefix))
    assert b"coderef" in b"".join(redis_client.scan_iter(match=f"{key_prefix}:*"))
    for clear in (seed, data["secret"].encode(), data["secret_hex"].encode(), number.encode()):
        assert clear not in stored


# --- eligibility ------------------------------------------------------------------------


def test_dynamic_codes_are_not_enabled_for_static_programs_and_custom_cards(
    client: Client,
) -> None:
    static = Program(client, "Library", "code128")
    user = new_user(client)
    enrolled, _ = static.enrolled_card(user)
    custom = client.post(
        "/v1/me/cards", json={"number": "LOCKER-7", "barcode_format": "qr"}, headers=user
    ).json()["id"]
    for card_id in (enrolled, custom):
        for response in (
            client.get(f"/v1/me/cards/{card_id}/totp", headers=user),
            client.post(f"/v1/me/cards/{card_id}/codes", headers=user),
            client.get(f"/v1/me/cards/{card_id}/code.svg", headers=user),
        ):
            assert response.status_code == 409
            assert response.json()["code"] == "dynamic_codes_not_enabled"
        # ... and they keep their static barcode.
        assert client.get(f"/v1/me/cards/{card_id}/barcode.png", headers=user).status_code == 200


def test_each_policy_offers_only_its_own_kind_of_code(client: Client) -> None:
    user = new_user(client)
    totp_card, _ = Program(client, "Rotating", "qr", mode="totp").enrolled_card(user)
    once_card, _ = Program(client, "Online", "qr", mode="one_time").enrolled_card(user)
    refused = client.post(f"/v1/me/cards/{totp_card}/codes", headers=user)
    assert (refused.status_code, refused.json()["code"]) == (409, "dynamic_codes_not_enabled")
    refused = client.get(f"/v1/me/cards/{once_card}/totp", headers=user)
    assert (refused.status_code, refused.json()["code"]) == (409, "dynamic_codes_not_enabled")


def test_self_added_cards_get_dynamic_codes_only_when_the_program_allows(
    client: Client,
) -> None:
    program = Program(client, "Coffee", "qr", mode="totp")
    user = new_user(client)
    card_id, _ = program.self_added_card(user)
    refused = client.get(f"/v1/me/cards/{card_id}/totp", headers=user)
    assert (refused.status_code, refused.json()["code"]) == (409, "dynamic_codes_not_enabled")
    # Not eligible, so its static barcode is what it has.
    assert client.get(f"/v1/me/cards/{card_id}/barcode.svg", headers=user).status_code == 200
    policy = {"mode": "totp", "allow_self_added": True}
    client.patch("/v1/partner/issuer", json={"code_policy": policy}, headers=program.headers)
    assert client.get(f"/v1/me/cards/{card_id}/totp", headers=user).status_code == 200


def test_static_barcode_is_refused_where_dynamic_codes_are_required(client: Client) -> None:
    user = new_user(client)
    for mode in ("totp", "one_time"):
        card_id, _ = Program(client, f"Shop {mode}", "qr", mode=mode).enrolled_card(user)
        for image in ("svg", "png"):
            response = client.get(f"/v1/me/cards/{card_id}/barcode.{image}", headers=user)
            assert response.status_code == 409
            assert response.json()["code"] == "dynamic_codes_required"


def test_unknown_card_has_no_codes(client: Client) -> None:
    user = new_user(client)
    for response in (
        client.get("/v1/me/cards/crd_0000000000000000000000000/totp", headers=user),
        client.post("/v1/me/cards/crd_0000000000000000000000000/codes", headers=user),
    ):
        assert (response.status_code, response.json()["code"]) == (404, "card_not_found")
    someone_else, _ = Program(client, "Coffee", "qr", mode="totp").enrolled_card(new_user(client))
    response = client.get(f"/v1/me/cards/{someone_else}/totp", headers=user)
    assert (response.status_code, response.json()["code"]) == (404, "card_not_found")


# --- policies a format cannot carry -----------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "policy"),
    [
        ("ean13", {"mode": "totp"}),
        ("ean8", {"mode": "totp"}),
        ("upca", {"mode": "totp"}),
        ("itf", {"mode": "totp", "digits": 7}),  # 17 digits: ITF takes pairs
        ("ean8", {"mode": "one_time"}),  # 7 random digits are too easy to guess
    ],
)
def test_policy_the_format_cannot_carry_is_refused(
    client: Client, fmt: str, policy: dict[str, Any]
) -> None:
    body = {"name": "Shop", "barcode_format": fmt, "code_policy": policy}
    response = client.post("/v1/admin/issuers", json=body, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["code"] == "policy_incompatible_with_format"
    assert response.json()["errors"][0]["field"] == "code_policy.mode"


def test_changing_the_format_under_a_dynamic_policy_is_checked_too(client: Client) -> None:
    program = Program(client, "Coffee", "qr", mode="totp")
    response = client.patch(
        "/v1/partner/issuer", json={"barcode_format": "ean13"}, headers=program.headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "policy_incompatible_with_format"
    assert client.get("/v1/partner/issuer", headers=program.headers).json()["barcode_format"] == (
        "qr"
    )
    ok = client.patch("/v1/partner/issuer", json={"barcode_format": "itf"}, headers=program.headers)
    assert ok.status_code == 200  # 10 + 8 digits: an even count


# --- one-time codes ---------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "length"), [("ean13", 13), ("upca", 12), ("code128", 12)])
def test_one_time_code_fits_the_programs_format(client: Client, fmt: str, length: int) -> None:
    program = Program(client, "Coffee", fmt, mode="one_time", ttl_s=90)
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    before = time.time()
    response = client.post(f"/v1/me/cards/{card_id}/codes", headers=user)
    assert response.status_code == 201
    code = response.json()
    assert set(code) == {"payload", "barcode_format", "expires_at"}
    assert code["barcode_format"] == fmt
    assert code["payload"].isdigit() and len(code["payload"]) == length
    if fmt != "code128":
        assert gtin_valid(code["payload"])
    expires = datetime.fromisoformat(code["expires_at"].replace("Z", "+00:00")).timestamp()
    assert before + 89 <= expires <= time.time() + 91


def test_one_time_codes_are_distinct(client: Client) -> None:
    program = Program(client, "Coffee", "ean13", mode="one_time")
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    payloads = [one_time_code(client, user, card_id) for _ in range(30)]
    assert len(set(payloads)) == 30


# --- code images ------------------------------------------------------------------------


def test_totp_code_image_scans_as_the_current_payload(client: Client) -> None:
    program = Program(client, "Coffee", "qr", mode="totp")
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    data = provisioning(client, user, card_id)
    before = pyotp_payload(data)
    response = client.get(f"/v1/me/cards/{card_id}/code.png", headers=user)
    after = pyotp_payload(data)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    ((fmt, text),) = scanned(response.content)
    assert fmt == ZX.QRCode
    assert text in {before, after}  # a step may turn between the two computations


@pytest.mark.parametrize(("fmt", "zx"), [("ean13", ZX.EAN13), ("code128", ZX.Code128)])
def test_one_time_code_image_scans_and_verifies(
    client: Client, fmt: str, zx: zxingcpp.BarcodeFormat
) -> None:
    program = Program(client, "Coffee", fmt, mode="one_time")
    terminal = program.terminal()
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    response = client.get(f"/v1/me/cards/{card_id}/code.png", headers=user)
    assert response.status_code == 200
    ((found, text),) = scanned(response.content)
    assert found == zx
    accepted = verify(client, terminal, text)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["card_id"] == card_id


def test_totp_code_svg_scans(client: Client) -> None:
    cairosvg = pytest.importorskip("cairosvg")
    program = Program(client, "Coffee", "code128", mode="totp")
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    data = provisioning(client, user, card_id)
    response = client.get(f"/v1/me/cards/{card_id}/code.svg", headers=user)
    assert response.headers["content-type"].startswith("image/svg+xml")
    ((fmt, text),) = scanned(cairosvg.svg2png(bytestring=response.content))
    assert fmt == ZX.Code128
    assert text.startswith(ref_of(data)) and len(text) == 18


# --- lifecycle --------------------------------------------------------------------------


def test_deleting_a_card_deletes_its_codes(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    program = Program(client, "Coffee", "qr", mode="totp")
    terminal = program.terminal()
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    data = provisioning(client, user, card_id)
    assert client.delete(f"/v1/me/cards/{card_id}", headers=user).status_code == 204
    response = verify(client, terminal, pyotp_payload(data))
    assert (response.status_code, response.json()["code"]) == (422, "code_unknown")
    assert list(redis_client.scan_iter(match=f"{key_prefix}:coderef:*")) == []


def test_deleting_a_card_deletes_its_live_one_time_tokens(
    client: Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    program = Program(client, "Coffee", "ean13", mode="one_time")
    terminal = program.terminal()
    user = new_user(client)
    card_id, _ = program.enrolled_card(user)
    kept_id, _ = program.enrolled_card(user)
    payloads = [one_time_code(client, user, card_id) for _ in range(2)]
    kept = one_time_code(client, user, kept_id)

    def token_keys() -> list[bytes]:
        return [
            key
            for family in ("otc", "otclive")
            for key in redis_client.scan_iter(match=f"{key_prefix}:{family}:*")
        ]

    assert len(token_keys()) == 6  # a record and a claim per token
    assert client.delete(f"/v1/me/cards/{card_id}", headers=user).status_code == 204
    assert len(token_keys()) == 2  # the other card's token only
    for payload in payloads:
        response = verify(client, terminal, payload)
        assert (response.status_code, response.json()["code"]) == (422, "code_unknown")
    assert verify(client, terminal, kept).status_code == 200


def rotation_settings(settings: Settings) -> tuple[Settings, Settings]:
    """The settings during ``wallet rotate-keys`` (new key k2 first, the old one still
    readable) and after it (k2 only)."""
    assert settings.data_keys
    new = f"k2:{generate_key_material()}"
    both = msgspec.structs.replace(settings, data_keys=f"{new},{settings.data_keys}")
    return both, msgspec.structs.replace(settings, data_keys=new)


def test_key_rotation_reseals_totp_secrets(settings: Settings, redis_client: redis.Redis) -> None:
    both, only_new = rotation_settings(settings)
    assert only_new.data_keys and settings.index_key
    with TestClient(create_app(settings)) as client:
        program = Program(client, "Coffee", "qr", mode="totp")
        user = new_user(client)
        card_id, _ = program.enrolled_card(user)
        data = provisioning(client, user, card_id)
    counts = asyncio.run(rotate_all(both))
    assert counts["codes"] == 1
    assert asyncio.run(rotate_all(both))["codes"] == 0
    keyring = Keyring.parse(only_new.data_keys, settings.index_key)
    for key in redis_client.scan_iter(match=f"{settings.key_prefix}:coderef:*"):
        raw = cast(bytes, redis_client.get(key))
        record = msgspec.msgpack.decode(raw, type=CodeRefRecord)
        assert keyring.key_id_of(record.seed_sealed) == "k2"
    with TestClient(create_app(only_new)) as client:
        assert provisioning(client, user, card_id) == data
        program.client = client
        response = verify(client, program.terminal(), pyotp_payload(data))
        assert response.status_code == 200, response.text


def test_key_rotation_reseals_live_one_time_tokens(
    settings: Settings,
) -> None:
    both, only_new = rotation_settings(settings)
    with TestClient(create_app(settings)) as client:
        program = Program(client, "Coffee", "ean13", mode="one_time")
        user = new_user(client)
        card_id, number = program.enrolled_card(user)
        payload = one_time_code(client, user, card_id)
    assert asyncio.run(rotate_all(both))["codes"] == 1
    assert asyncio.run(rotate_all(both))["codes"] == 0
    with TestClient(create_app(only_new)) as client:
        program.client = client
        response = verify(client, program.terminal(), payload)
        assert response.status_code == 200, response.text
        assert (response.json()["card_id"], response.json()["member_number"]) == (card_id, number)
