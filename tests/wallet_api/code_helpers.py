"""Builders shared by the dynamic-code and POS tests: programs, terminals, cards, codes."""

from __future__ import annotations

import hashlib
import hmac
import struct
import time
from typing import Any

import httpx
import pyotp
from litestar import Litestar
from litestar.testing import TestClient

from issuers.check_digits import gtin_check_digit
from tests.conftest import ADMIN, bearer

Client = TestClient[Litestar]
AsyncClient = httpx.AsyncClient
Headers = dict[str, str]


class Program:
    def __init__(self, client: Client, name: str, fmt: str = "qr", **policy: Any) -> None:
        body = {"name": name, "barcode_format": fmt, "code_policy": policy}
        response = client.post("/v1/admin/issuers", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        self.client = client
        self.fmt = fmt
        self.issuer_id: str = response.json()["issuer"]["issuer_id"]
        self.headers = bearer(response.json()["api_key"])
        self._numbers = 0

    def terminal(self, **body: Any) -> Headers:
        response = self.client.post(
            "/v1/partner/terminals", json={"name": "Till", **body}, headers=self.headers
        )
        assert response.status_code == 201, response.text
        return bearer(response.json()["key"])

    def new_number(self) -> str:
        """A distinct member number the program's format can draw: EAN-13-shaped
        (2-prefixed: in-store numbering), 12 digits for UPC-A, 14 for ITF (digit pairs)."""
        self._numbers += 1
        body = "29" + self.issuer_id[-6:].translate(_DIGITS) + f"{self._numbers:04d}"
        if self.fmt == "itf":
            body = "1" + body
        elif self.fmt == "upca":
            body = body[1:]
        return body + gtin_check_digit(body)

    def member(self, number: str, **fields: Any) -> None:
        response = self.client.put(
            f"/v1/partner/members/{number}", json=fields, headers=self.headers
        )
        assert response.status_code in (200, 201), response.text

    def enrolled_card(self, user: Headers, number: str | None = None) -> tuple[str, str]:
        """(card id, member number) of a card the partner enrolled into ``user``'s wallet."""
        number = number or self.new_number()
        code = self.client.post(
            "/v1/partner/enrollments", json={"member_number": number}, headers=self.headers
        )
        assert code.status_code == 201, code.text
        card = self.client.post(
            "/v1/me/cards", json={"enrollment_code": code.json()["code"]}, headers=user
        )
        assert card.status_code == 201, card.text
        return card.json()["id"], number

    def self_added_card(self, user: Headers, number: str | None = None) -> tuple[str, str]:
        number = number or self.new_number()
        card = self.client.post(
            "/v1/me/cards", json={"number": number, "issuer_id": self.issuer_id}, headers=user
        )
        assert card.status_code == 201, card.text
        return card.json()["id"], number


_DIGITS = str.maketrans("abcdefghijklmnopqrstuvwxyz", "01234567890123456789012345")


def new_user(client: Client) -> Headers:
    response = client.post("/v1/users", json={})
    assert response.status_code == 201, response.text
    return bearer(response.json()["token"])


def provisioning(client: Client, user: Headers, card_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/me/cards/{card_id}/totp", headers=user)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def one_time_code(client: Client, user: Headers, card_id: str) -> str:
    """A fresh one-time code's payload, as the phone would show it."""
    response = client.post(f"/v1/me/cards/{card_id}/codes", headers=user)
    assert response.status_code == 201, response.text
    payload: str = response.json()["payload"]
    return payload


def ref_of(data: dict[str, Any]) -> str:
    ref: str = data["value_pattern"].removesuffix("{totp_value_0}")
    return ref


def pyotp_payload(data: dict[str, Any], at: float | None = None) -> str:
    """The payload a phone shows, computed by pyotp from the provisioning data."""
    totp = pyotp.TOTP(data["secret"], digits=data["digits"], interval=data["period_s"])
    return ref_of(data) + totp.at(time.time() if at is None else at)


def rfc6238(secret_hex: str, at: float, period_s: int, digits: int) -> str:
    """An independent RFC 6238 / RFC 4226 computation (hmac + struct), for interoperability."""
    counter = struct.pack(">Q", int(at) // period_s)
    mac = hmac.new(bytes.fromhex(secret_hex), counter, hashlib.sha1).digest()
    offset = mac[19] & 0xF
    (value,) = struct.unpack(">I", mac[offset : offset + 4])
    return str((value & 0x7FFFFFFF) % 10**digits).rjust(digits, "0")


def verify(client: Client, terminal: Headers, payload: str) -> Any:
    return client.post("/v1/pos/verify", json={"payload": payload}, headers=terminal)


async def async_card(aclient: AsyncClient, mode: str) -> tuple[Headers, Headers, str]:
    """(terminal, user, card id): a program of ``mode``, its terminal, one enrolled card,
    all made over ``aclient`` (an async test must not mix in the sync client)."""
    body = {"name": "Coffee", "barcode_format": "qr", "code_policy": {"mode": mode}}
    created = (await aclient.post("/v1/admin/issuers", json=body, headers=ADMIN)).json()
    partner = bearer(created["api_key"])
    terminal = await aclient.post("/v1/partner/terminals", json={"name": "T"}, headers=partner)
    enrollment = await aclient.post(
        "/v1/partner/enrollments", json={"member_number": "2900000000017"}, headers=partner
    )
    user = bearer((await aclient.post("/v1/users", json={})).json()["token"])
    card = await aclient.post(
        "/v1/me/cards", json={"enrollment_code": enrollment.json()["code"]}, headers=user
    )
    assert card.status_code == 201, card.text
    return bearer(terminal.json()["key"]), user, card.json()["id"]
