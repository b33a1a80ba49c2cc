"""POS verification throughput beside the foundation's two baselines, in one run.

    .venv/bin/python -m benchmarks.pos_verify [--seconds 10] [--rounds 3] [--cards 200]

Starts ``wallet serve`` (production configuration), creates a program with one-time codes,
a terminal and many users with a card each, mints distinct valid one-time codes through the
API, then drives ``POST /v1/pos/verify`` with wrk (a Lua script walks the list, so every
request presents a code never seen before and each is accepted).  Rounds alternate the
baselines and verify, so drift on a shared machine hits all three alike; the medians are
printed with verify's ratio to the one-round-trip baseline (target: >= 0.8x).  Finally 100
concurrent requests with one code hit a 2-worker server: exactly one may succeed.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from benchmarks.harness import Load, Server, median, running_server, wrk

TARGET = 0.8
T = TypeVar("T")

# Requests are built once in init (wrk.format per request would cost the load generator,
# which shares the machine's cores with the server, more CPU per request).
_VERIFY_LUA = """
local requests = {}
init = function(args)
  local headers = {["Content-Type"] = "application/json",
                   ["Authorization"] = "Bearer %(key)s"}
  for line in io.lines("%(path)s") do
    requests[#requests + 1] = wrk.format("POST", "/v1/pos/verify", headers,
                                         '{"payload":"' .. line .. '"}')
  end
end
local i = 0
request = function()
  i = i + 1
  return requests[((i - 1) %% #requests) + 1]
end
"""


async def gather_limited(
    job: Callable[[int], Awaitable[T]], count: int, limit: int = 32
) -> list[T]:
    """``job(0) .. job(count - 1)``, at most ``limit`` at a time, results in order."""
    gate = asyncio.Semaphore(limit)

    async def run(i: int) -> T:
        async with gate:
            return await job(i)

    return await asyncio.gather(*(run(i) for i in range(count)))


class Fixture:
    """A program with one-time codes, its terminal, and users each holding a card."""

    def __init__(self, http: httpx.AsyncClient, admin_token: str) -> None:
        self.http = http
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.terminal_key = ""
        self.cards: list[tuple[dict[str, str], str]] = []

    async def build(self, cards: int) -> None:
        body = {
            "name": "Bench Coffee",
            "barcode_format": "code128",
            "code_policy": {"mode": "one_time", "ttl_s": 3600, "allow_self_added": True},
        }
        created = (await self.http.post("/v1/admin/issuers", json=body, headers=self.admin)).json()
        issuer_id = created["issuer"]["issuer_id"]
        partner = {"Authorization": f"Bearer {created['api_key']}"}
        terminal = await self.http.post(
            "/v1/partner/terminals", json={"name": "Till 1"}, headers=partner
        )
        self.terminal_key = terminal.json()["key"]

        async def one_card(n: int) -> tuple[dict[str, str], str]:
            token = (await self.http.post("/v1/users", json={})).json()["token"]
            user = {"Authorization": f"Bearer {token}"}
            number = f"77{n:010d}"
            member = {"tier": "gold", "points": n}
            await self.http.put(f"/v1/partner/members/{number}", json=member, headers=partner)
            card = await self.http.post(
                "/v1/me/cards", json={"number": number, "issuer_id": issuer_id}, headers=user
            )
            card.raise_for_status()
            return user, card.json()["id"]

        self.cards = await gather_limited(one_card, cards)

    async def mint(self, count: int) -> list[str]:
        async def one(i: int) -> str:
            user, card_id = self.cards[i % len(self.cards)]
            response = await self.http.post(f"/v1/me/cards/{card_id}/codes", headers=user)
            response.raise_for_status()
            payload: str = response.json()["payload"]
            return payload

        return await gather_limited(one, count)


def drive_verify(server: Server, terminal_key: str, payloads: list[str], seconds: int) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("\n".join(payloads) + "\n")
    script = _VERIFY_LUA % {"path": listing.name, "key": terminal_key}
    return wrk(server.base_url + "/v1/pos/verify", seconds=seconds, script=script)


async def measure(seconds: int, rounds: int, cards: int) -> None:
    healthz, readyz, verify = [], [], []
    with running_server() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            fixture = Fixture(http, server.admin_token)
            await fixture.build(cards)
            for _ in range(rounds):
                healthz.append(wrk(server.base_url + "/healthz", seconds=seconds))
                readyz.append(wrk(server.base_url + "/readyz", seconds=seconds))
                # Distinct codes for the whole round, with room to spare: a reused one
                # would be a replay (409, counted as an error below).
                needed = int(readyz[-1].requests_per_s * seconds * 1.6) + 1000
                payloads = await fixture.mint(needed)
                verify.append(drive_verify(server, fixture.terminal_key, payloads, seconds))
                print(
                    f"round {len(verify)}: healthz {healthz[-1].requests_per_s:.0f}, readyz "
                    f"{readyz[-1].requests_per_s:.0f}, verify {verify[-1].requests_per_s:.0f} "
                    f"req/s ({verify[-1].requests_per_s / readyz[-1].requests_per_s:.2f}x)",
                    flush=True,
                )
    base, one_rt, ver = median(healthz), median(readyz), median(verify)
    print(f"--- granian, 1 worker, 32 connections, {seconds} s x {rounds} rounds (medians)")
    print(base.row("baseline: GET /healthz (no I/O)"))
    print(one_rt.row("baseline: GET /readyz (1 Redis round trip)", one_rt))
    print(ver.row("POST /v1/pos/verify (distinct one-time codes)", one_rt))
    ratio = ver.requests_per_s / one_rt.requests_per_s
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"verify / one-round-trip baseline = {ratio:.2f}x ({verdict} the {TARGET}x target)")


async def exactly_once_across_workers(workers: int = 2, requests: int = 100) -> None:
    with running_server(workers=workers) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            fixture = Fixture(http, server.admin_token)
            await fixture.build(1)
            (payload,) = await fixture.mint(1)
            auth = {"Authorization": f"Bearer {fixture.terminal_key}"}

            async def attempt(_: int) -> int:
                response = await http.post(
                    "/v1/pos/verify", json={"payload": payload}, headers=auth
                )
                return response.status_code

            statuses = Counter(await gather_limited(attempt, requests, limit=requests))
    accepted = statuses.pop(200, 0)
    others = ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))
    verdict = "exactly once" if accepted == 1 else "BROKEN"
    print(
        f"{requests} concurrent verifies of one code, {workers} workers: "
        f"{accepted} accepted, {others} ({verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cards", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(measure(args.seconds, args.rounds, args.cards))
    asyncio.run(exactly_once_across_workers())


if __name__ == "__main__":
    main()
