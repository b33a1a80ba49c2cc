"""Issue 3's figures: store import, add-card and list-cards, and what they cost in Redis.

    .venv/bin/python -m benchmarks.cards_and_stores [--stores 100000] [--seconds 10]

Runs the production server (benchmarks.harness), measures the two foundation baselines in
the same run, then prints:
- store import rate (stores/s) for one NDJSON import of generated stores, and Redis memory
  per store (used_memory delta / stores, and MEMORY USAGE of one store's record);
- POST /v1/me/cards and GET /v1/me/cards (20 cards) requests/s, as ratios to the
  one-Redis-round-trip baseline;
- Redis bytes per user holding 20 cards (MEMORY USAGE of every key in the user's slot).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from itertools import islice
from typing import Any

import httpx
import redis

from benchmarks.harness import Server, measure_baselines, running_server, wrk


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _store_row(i: int, rng: random.Random) -> dict[str, Any]:
    # A country-sized spread (France-ish box): realistic geo-index load.
    return {
        "external_id": f"S{i:07d}",
        "name": f"Store {i}",
        "lat": rng.uniform(43.0, 50.5),
        "lon": rng.uniform(-1.5, 7.5),
        "radius_m": rng.choice([40, 60, 100, 150]),
        "timezone": "Europe/Paris",
    }


def import_stores(server: Server, partner: str, count: int) -> None:
    rng = random.Random(7)
    body = "\n".join(json.dumps(_store_row(i, rng)) for i in range(count)).encode()
    with redis.Redis.from_url(server.redis_url) as client:
        before = int(client.info("memory")["used_memory"])
        started = time.perf_counter()
        response = httpx.post(
            server.base_url + "/v1/partner/stores/import",
            content=body,
            headers={**_auth(partner), "Content-Type": "application/x-ndjson"},
            timeout=600,
        )
        elapsed = time.perf_counter() - started
        after = int(client.info("memory")["used_memory"])
        records = list(islice(client.scan_iter(match=f"{server.key_prefix}:store:*"), 500))
        record_bytes = sum(int(client.memory_usage(k) or 0) for k in records) / max(1, len(records))
    result = response.json()
    assert response.status_code == 200 and result["created"] == count, response.text[:500]
    print(f"store import: {count} stores in {elapsed:.1f} s = {count / elapsed:,.0f} stores/s")
    # used_memory moves with everything else on a shared Redis: read it as a rough figure.
    print(f"Redis memory per store (used_memory delta): {(after - before) / count:,.0f} bytes")
    print(f"MEMORY USAGE of one store record (mean of {len(records)}): {record_bytes:,.0f} bytes")


def _users(server: Server, count: int) -> list[str]:
    with httpx.Client(base_url=server.base_url) as http:
        return [http.post("/v1/users", json={}).json()["token"] for _ in range(count)]


_ADD_CARD_LUA = """
local tokens = {%s}
local n = 0
request = function()
  n = n + 1
  local token = tokens[(n %% #tokens) + 1]
  local body = '{"number":"' .. string.format("%%012d", n) .. '","barcode_format":"code128"}'
  return wrk.format("POST", "/v1/me/cards",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end
"""

_LIST_LUA = """
local tokens = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/v1/me/cards?limit=50",
    {["Authorization"] = "Bearer " .. tokens[(n %% #tokens) + 1]})
end
"""


def _lua_list(tokens: list[str]) -> str:
    return ",".join(f'"{t}"' for t in tokens)


def bytes_per_user(server: Server, token: str, issuer_prefix: str) -> int:
    with httpx.Client(base_url=server.base_url, headers=_auth(token)) as http:
        user_id = http.get("/v1/me").json()["user_id"]
        for i in range(20):
            number = f"{issuer_prefix}{i:09d}"
            http.post("/v1/me/cards", json={"number": number}).raise_for_status()
    with redis.Redis.from_url(server.redis_url) as client:
        keys = list(client.scan_iter(match=f"{server.key_prefix}:*{{{user_id}}}*"))
        return sum(int(client.memory_usage(k) or 0) for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stores", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with running_server() as server:
        baselines = measure_baselines(server, args.seconds)
        admin = httpx.post(
            server.base_url + "/v1/admin/issuers",
            json={"name": "Bench Mart", "number_patterns": [{"prefix": "77", "lengths": [11]}]},
            headers=_auth(server.admin_token),
        ).json()
        import_stores(server, admin["api_key"], args.stores)
        writers = _users(server, 400)
        add = wrk(server.base_url, seconds=args.seconds, script=_ADD_CARD_LUA % _lua_list(writers))
        readers = _users(server, 50)
        for token in readers:
            with httpx.Client(base_url=server.base_url, headers=_auth(token)) as http:
                for i in range(20):
                    http.post("/v1/me/cards", json={"number": f"9{i:011d}"}).raise_for_status()
        listing = wrk(server.base_url, seconds=args.seconds, script=_LIST_LUA % _lua_list(readers))
        per_user = bytes_per_user(server, _users(server, 1)[0], "77")
    baselines.print()
    print(add.row("POST /v1/me/cards (add a card)", baselines.one_round_trip))
    print(listing.row("GET /v1/me/cards (20 cards)", baselines.one_round_trip))
    print(f"Redis bytes per user with 20 cards: {per_user:,}")


if __name__ == "__main__":
    main()
