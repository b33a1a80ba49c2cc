"""POST /v1/me/location over HTTP, against the baselines of the same run.

The server is started on the benchmark's key prefix after the stores are loaded, so each
worker loads them at start (as after a deploy); its start time is printed. Two scenarios,
1,000 users each (location and discovery consent), one wrk thread cycling through them,
every request one fix 50 ms after the user's previous one (so every fix is accepted and
written back):

- walking: each user starts 40 m west of a store's edge and walks east 4 m per fix, so
  requests often enter or leave stores (in the dense city, several per user);
- standing: each user stands at a store's centre; after the first fix (the enter) nothing
  changes, which is what most fixes of a phone in daily use look like.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import httpx

from benchmarks.harness import Baselines, Load, Server, median, running_server, wrk
from geofence.index import FenceEntry

# Every request is built in init (as in pos_verify.py): formatting a body, a timestamp and a
# request per call would cost the load generator, which shares the machine's two cores with
# the server, CPU that the baselines' plain requests do not cost it.
_LOCATION_LUA = """
local tokens = {%s}
local starts = {%s}
local base = %d
local per_user = %d
local requests = {}
init = function(args)
  for k = 1, per_user do
    local t = base + k * 0.05
    local secs = math.floor(t)
    local stamp = os.date("!%%Y-%%m-%%dT%%H:%%M:%%S", secs)
      .. string.format(".%%03dZ", math.floor((t - secs) * 1000 + 0.5) %% 1000)
    for u = 1, #tokens do
      local s = starts[u]
      local body = string.format(
        '{"lat":%%.7f,"lon":%%.7f,"accuracy_m":10,"recorded_at":"%%s"}',
        s[1], s[2] + k * s[3], stamp)
      requests[#requests + 1] = wrk.format("POST", "/v1/me/location",
        {["Authorization"] = "Bearer " .. tokens[u], ["Content-Type"] = "application/json"},
        body)
    end
  end
end
local n = 0
request = function()
  n = n + 1
  return requests[((n - 1) %% #requests) + 1]
end
"""

_ME_LUA = """
local tokens = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/v1/me", {["Authorization"] = "Bearer " .. tokens[(n %% #tokens) + 1]})
end
"""


def _users(server: Server, count: int) -> list[str]:
    tokens = []
    consent = {"location": True, "discovery": True}
    with httpx.Client(base_url=server.base_url) as http:
        for _ in range(count):
            token = http.post("/v1/users", json={}).json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            http.put("/v1/me/consent", json=consent, headers=auth).raise_for_status()
            tokens.append(token)
    return tokens


def _starts(entries: Sequence[FenceEntry], walking: bool) -> str:
    """Lua rows {lat, lon, degrees east per fix} for each user."""
    rows = []
    for e in entries:
        per_m = 1 / (111_195 * math.cos(math.radians(e.lat)))
        west, step = ((e.reach_m + 40) * per_m, 4 * per_m) if walking else (0.0, 0.0)
        rows.append(f"{{{e.lat:.7f},{e.lon - west:.7f},{step:.9f}}}")
    return ",".join(rows)


def http_figures(
    url: str, prefix: str, entries: Sequence[FenceEntry], seconds: int, rounds: int
) -> None:
    """Rounds alternate ``/readyz`` and the two scenarios (fresh users each), so this
    machine's drift hits them alike; medians are printed, and each round's ratios."""
    started = time.perf_counter()
    # The stores are already under ``prefix``: each worker loads them at start.
    with running_server(url=url, prefix=prefix, ready_timeout_s=900) as server:
        print(f"server start (fence index loaded): {time.perf_counter() - started:.1f} s")
        healthz = wrk(server.base_url + "/healthz", seconds=seconds)
        readyz: list[Load] = []
        runs: dict[str, list[Load]] = {"walking": [], "standing": []}
        for n in range(rounds):
            readyz.append(wrk(server.base_url + "/readyz", seconds=seconds))
            # Fixes per user, so that none is sent twice: location cannot outrun /readyz.
            per_user = math.ceil(readyz[-1].requests_per_s * seconds * 1.5 / len(entries))
            for name, walking in (("walking", True), ("standing", False)):
                listed = ",".join(f'"{t}"' for t in _users(server, len(entries)))
                starts = _starts(entries, walking)
                script = _LOCATION_LUA % (listed, starts, int(time.time()) - 60, per_user)
                runs[name].append(wrk(server.base_url, seconds=seconds, script=script))
            base = readyz[-1].requests_per_s
            print(
                f"round {n + 1}: readyz {base:.0f} req/s, walking "
                f"{runs['walking'][-1].requests_per_s / base:.2f}x, standing "
                f"{runs['standing'][-1].requests_per_s / base:.2f}x",
                flush=True,
            )
        me = wrk(server.base_url, seconds=seconds, script=_ME_LUA % listed)
    baselines = Baselines(healthz=healthz, one_round_trip=median(readyz))
    print(f"--- {rounds} rounds, medians")
    baselines.print()
    print(me.row("GET /v1/me (auth + one GET, reference)", baselines.one_round_trip))
    for name, loads in runs.items():
        print(median(loads).row(f"POST /v1/me/location ({name})", baselines.one_round_trip))
    for name, loads in runs.items():
        load = median(loads)
        ratio = load.requests_per_s / baselines.one_round_trip.requests_per_s
        to_me = load.requests_per_s / me.requests_per_s
        verdict = "meets" if ratio >= 0.7 else "misses"
        print(
            f"HTTP {name}: {ratio:.2f}x the one-round-trip baseline ({verdict} the 0.7x "
            f"target), {to_me:.2f}x GET /v1/me"
        )
