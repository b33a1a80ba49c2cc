from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.conftest import ADMIN, bearer

Client = TestClient[Litestar]

COFFEE = {
    "name": "Coffee Club",
    "branding": {"background_color": "#112233", "logo_url": "https://cdn.example/coffee.png"},
    "barcode_format": "code128",  # a rotating code does not fit EAN-13's fixed length
    "number_patterns": [{"prefix": "290", "lengths": [13], "check_digit": "ean"}],
    "code_policy": {"mode": "totp", "period_s": 30, "digits": 8},
}


def create(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/admin/issuers", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_admin_creates_a_program_with_all_fields(client: Client) -> None:
    created = create(client, COFFEE)
    issuer = created["issuer"]
    assert issuer["issuer_id"].startswith("iss_")
    assert issuer["barcode_format"] == "code128"
    assert issuer["code_policy"]["mode"] == "totp"
    assert issuer["code_policy"]["ttl_s"] == 120  # default kept
    assert created["api_key"].startswith("wpk_")
    mine = client.get("/v1/partner/issuer", headers=bearer(created["api_key"])).json()
    assert mine == issuer


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "barcode_format": "matrix"}, "barcode_format"),
        ({"name": "x", "code_policy": {"mode": "totp", "period_s": 5}}, "code_policy.period_s"),
        ({"name": "x", "code_policy": {"digits": 11}}, "code_policy.digits"),
        ({"name": "x", "branding": {"background_color": "red"}}, "branding.background_color"),
        ({"name": "x", "number_patterns": [{"lengths": []}]}, "number_patterns[0].lengths"),
        (
            {"name": "x", "number_patterns": [{"lengths": [8], "check_digit": "mod97"}]},
            "number_patterns[0].check_digit",
        ),
    ],
)
def test_invalid_program_fields_name_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/admin/issuers", json=body, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


@pytest.mark.parametrize("regex", ["(a+)+$", "([0-9]*)*", "[unclosed"])
def test_dangerous_or_broken_regex_is_refused(client: Client, regex: str) -> None:
    body = {"name": "x", "number_patterns": [{"regex": regex, "lengths": [10]}]}
    response = client.post("/v1/admin/issuers", json=body, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_number_pattern"
    assert response.json()["errors"][0]["field"] == "number_patterns[0].regex"


def test_partner_patches_only_given_fields(client: Client) -> None:
    key = create(client, COFFEE)["api_key"]
    patched = client.patch(
        "/v1/partner/issuer",
        json={"code_policy": {"mode": "one_time", "ttl_s": 60}, "name": "Coffee Club+"},
        headers=bearer(key),
    ).json()
    assert patched["name"] == "Coffee Club+"
    assert patched["code_policy"]["mode"] == "one_time"
    assert patched["barcode_format"] == "code128"
    bad = client.patch(
        "/v1/partner/issuer", json={"code_policy": {"ttl_s": 1}}, headers=bearer(key)
    )
    assert bad.status_code == 422
    after = client.get("/v1/partner/issuer", headers=bearer(key)).json()
    assert after["code_policy"]["ttl_s"] == 60


def test_api_key_rotation(client: Client) -> None:
    old = create(client, COFFEE)["api_key"]
    new = client.post("/v1/partner/api-keys", json={"label": "pos-2026"}, headers=bearer(old))
    assert new.status_code == 201
    new_key = new.json()["key"]
    listed = client.get("/v1/partner/api-keys", headers=bearer(new_key)).json()
    assert len(listed) == 2
    assert all("key" not in item for item in listed)
    old_id = next(item["id"] for item in listed if item["id"] != new.json()["id"])
    assert (
        client.delete(f"/v1/partner/api-keys/{old_id}", headers=bearer(new_key)).status_code == 204
    )
    assert client.get("/v1/partner/issuer", headers=bearer(old)).status_code == 401
    assert client.get("/v1/partner/issuer", headers=bearer(new_key)).status_code == 200
    last = client.delete(f"/v1/partner/api-keys/{new.json()['id']}", headers=bearer(new_key))
    assert last.status_code == 422
    assert last.json()["code"] == "last_api_key"


def test_partner_cannot_revoke_another_partners_key(client: Client) -> None:
    a = create(client, COFFEE)["api_key"]
    b = create(client, {"name": "Other"})["api_key"]
    b_key_id = client.get("/v1/partner/api-keys", headers=bearer(b)).json()[0]["id"]
    response = client.delete(f"/v1/partner/api-keys/{b_key_id}", headers=bearer(a))
    assert response.status_code == 404
    assert client.get("/v1/partner/issuer", headers=bearer(b)).status_code == 200


def test_catalogue_search_and_pagination(client: Client, user_token: str) -> None:
    for name in ["Green Grocer", "Grand Cinema", "Book Nook", "Green Garden Centre"]:
        create(client, {"name": name})
    found = client.get("/v1/issuers", params={"q": "green"}, headers=bearer(user_token)).json()
    assert sorted(i["name"] for i in found["items"]) == ["Green Garden Centre", "Green Grocer"]
    assert client.get("/v1/issuers", params={"q": "gr"}, headers=bearer(user_token)).json()["items"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/issuers", params=params, headers=bearer(user_token)).json()
        seen += [i["name"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 4
    bad = client.get("/v1/issuers", params={"cursor": "!!!"}, headers=bearer(user_token))
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_cursor"


def test_recognize_ranks_matching_programs(client: Client, user_token: str) -> None:
    coffee = create(client, COFFEE)["issuer"]["issuer_id"]
    generic = create(client, {"name": "Any 13", "number_patterns": [{"lengths": [13]}]})
    luhn = create(
        client, {"name": "Cardy", "number_patterns": [{"lengths": [16], "check_digit": "luhn"}]}
    )
    result = client.post(
        "/v1/issuers/recognize", json={"number": "2901234 567896"}, headers=bearer(user_token)
    ).json()
    ids = [m["issuer_id"] for m in result["matches"]]
    assert ids[:2] == [coffee, generic["issuer"]["issuer_id"]]
    assert result["matches"][0]["check_digit_verified"] is True
    wrong_digit = client.post(
        "/v1/issuers/recognize", json={"number": "2901234567895"}, headers=bearer(user_token)
    ).json()
    assert coffee not in [m["issuer_id"] for m in wrong_digit["matches"]]
    visa = client.post(
        "/v1/issuers/recognize", json={"number": "4111 1111 1111 1111"}, headers=bearer(user_token)
    ).json()
    assert [m["issuer_id"] for m in visa["matches"]] == [luhn["issuer"]["issuer_id"]]
