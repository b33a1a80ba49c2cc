"""Redis keys of POS verification (the only code that names them).

Issuer slot (hash tag ``iss_..``), touched only by the one verification script:
- ``posfail:{iss_..}:t:<terminal id>``  counter, TTL = the terminal window (failed attempts)
- ``poslock:{iss_..}:t:<terminal id>``  string, TTL = the terminal lock
- ``posfail:{iss_..}:c:<card subject>`` / ``poslock:{iss_..}:c:<card subject>``  the same per
  card reference (``r<ref>`` for TOTP, ``c<card id>`` for one-time tokens)
- ``codestep:{iss_..}:<ref>``           string, start (ms) of the card's last accepted TOTP
                                        step; TTL = until that step leaves the skew window
- ``otcused:{iss_..}:<token index>``    string, a consumed one-time token; TTL = the token's
- ``verifications:{iss_..}``            stream of attempts (v, t, trm, sto, crd, out, m),
                                        trimmed to 90 days by MINID on every add, and
                                        expiring 90 days after the last one

Read in the same round trip as the terminal's key (pipelined, not atomic: different slots):
the terminal lookup (issuers/terminals/store.py) and the code records (codes/store.py).
The script also reads keys other stores own, named by those stores: the program record,
``cardref`` and member records, all in the issuer's slot.
"""

from __future__ import annotations

from typing import cast

import msgspec
from redis.asyncio import Redis

from issuers.members.store import MemberStore
from issuers.programs.store import ProgramStore
from issuers.terminals.models import TerminalRecord
from issuers.terminals.store import TerminalStore
from kernel.direct_redis import DirectRedis, DirectScript
from kernel.keys import KeySpace
from wallet_api.cards.store import CardStore
from wallet_api.codes.models import CodeRefRecord, OneTimeRecord
from wallet_api.codes.store import CodeStore, decode_ref, decode_token
from wallet_api.pos.models import Attempt, Settled, SettledOutcome
from wallet_api.pos.verify_lua import render
from wallet_api.settings import Lockout

LOG_KEEP_MS = 90 * 24 * 3600 * 1000

_decode_terminal = msgspec.msgpack.Decoder(TerminalRecord).decode


def _limits(lockout: Lockout) -> tuple[int, int, int]:
    return lockout.failures, lockout.window_s * 1000, lockout.lock_s * 1000


class Lookup(msgspec.Struct, frozen=True):
    terminal: TerminalRecord | None
    ref: CodeRefRecord | None
    token: OneTimeRecord | None


class PosStore:
    def __init__(
        self,
        redis: Redis,
        direct: DirectRedis,
        keys: KeySpace,
        *,
        terminals: TerminalStore,
        codes: CodeStore,
        programs: ProgramStore,
        cards: CardStore,
        members: MemberStore,
        terminal_lockout: Lockout,
        card_lockout: Lockout,
    ) -> None:
        self._redis = redis
        self._k = keys
        self._terminals = terminals
        self._codes = codes
        self._programs = programs
        self._cards = cards
        self._members = members
        self._direct = direct
        self._verify = DirectScript(
            self._direct,
            render(_limits(terminal_lockout), _limits(card_lockout), LOG_KEEP_MS),
        )

    def _fails(self, issuer_id: str, subject: str) -> str:
        return self._k.key("posfail", issuer_id, subject)

    def _lock(self, issuer_id: str, subject: str) -> str:
        return self._k.key("poslock", issuer_id, subject)

    def _step(self, issuer_id: str, ref: str) -> str:
        return self._k.key("codestep", issuer_id, ref)

    def _consumed(self, issuer_id: str, token_index: str) -> str:
        return self._k.key("otcused", issuer_id, token_index)

    def _log(self, issuer_id: str) -> str:
        return self._k.key("verifications", issuer_id)

    async def lookup(self, token_digest: str, ref: str | None, token_indexes: list[str]) -> Lookup:
        """Round trip 1: the terminal's key and the code records the payload may name."""
        reads = [("GET", self._terminals.lookup_key(token_digest))]
        if ref is not None:
            reads.append(("GET", self._codes.ref_key(ref)))
        reads += [("GET", self._codes.token_key(index)) for index in token_indexes]
        raws = cast(list[bytes | None], await self._direct.execute(reads))
        terminal = None if raws[0] is None else _decode_terminal(raws[0])
        found_ref = None
        if ref is not None and raws[1] is not None:
            found_ref = decode_ref(raws[1])
        tokens = raws[2:] if ref is not None else raws[1:]
        token = next((decode_token(raw) for raw in tokens if raw is not None), None)
        return Lookup(terminal=terminal, ref=found_ref, token=token)

    async def settle(self, attempt: Attempt, now: float) -> Settled:
        """Round trip 2: the whole check-and-consume, counting and logging, atomically."""
        iss = attempt.issuer_id
        subject = attempt.card_subject or "-"
        state = attempt.state or "-"
        state_key = (
            self._step(iss, state) if attempt.method == "totp" else self._consumed(iss, state)
        )
        keys = [
            self._programs.issuer_key(iss),
            self._cards.refs_key(iss),
            self._fails(iss, "t:" + attempt.terminal_id),
            self._lock(iss, "t:" + attempt.terminal_id),
            self._fails(iss, "c:" + subject),
            self._lock(iss, "c:" + subject),
            state_key,
            self._log(iss),
            *(self._members.member_key(iss, index) for index in attempt.member_indexes),
        ]
        now_ms = round(now * 1000)
        args: list[str | int] = [
            now_ms,
            attempt.verdict or "",
            attempt.method or "",
            attempt.kind,
            attempt.holder,
            attempt.period_s,
            attempt.digits,
            attempt.step_ms,
            max(1, attempt.state_ttl_ms),
            attempt.verification_id,
            attempt.terminal_id,
            attempt.store_id or "",
            attempt.card_id or "",
            "1" if attempt.card_subject else "0",
            *attempt.number_indexes,
        ]
        reply = cast(list[bytes | int | None], await self._verify(keys, args))
        outcome, retry_ms, member, holder, matched = reply
        return Settled(
            outcome=cast(SettledOutcome, cast(bytes, outcome).decode()),
            retry_after_ms=cast(int, retry_ms),
            member_raw=cast(bytes | None, member),
            holder=cast(bytes, holder).decode(),
            matched=cast(int, matched),
        )

    async def log_page(
        self, issuer_id: str, before: str | None, since_ms: int, limit: int
    ) -> list[tuple[str, dict[bytes, bytes]]]:
        """Log entries newest first, strictly before the entry id ``before``."""
        newest = "+" if before is None else f"({before}"
        rows = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            await self._redis.xrevrange(
                self._log(issuer_id), max=newest, min=str(since_ms), count=limit
            ),
        )
        return [(entry_id.decode(), fields) for entry_id, fields in rows]
