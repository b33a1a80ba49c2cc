"""Redis keys of POS verification (the only code that names them).

Issuer slot (hash tag ``iss_..``), touched only by the one verification script:
- ``posfail:{iss_..}:t:<terminal id>``  counter, TTL = the terminal window (failed attempts)
- ``poslock:{iss_..}:t:<terminal id>``  string, TTL = the terminal lock
- ``posfail:{iss_..}:c:r<ref>`` / ``poslock:{iss_..}:c:r<ref>``  the same per card reference
  (TOTP payloads name one; one-time token guesses name no card)
- ``codestep:{iss_..}:<ref>``           string, start (ms) of the card's last accepted TOTP
                                        step; TTL = until that step leaves the skew window
- ``otcused:{iss_..}:<token index>``    string, a consumed one-time token; TTL = its record's
- ``verifications:{iss_..}``            stream of attempts (v, t, trm, sto, crd, out, m),
                                        trimmed to 90 days by MINID on every add, and
                                        expiring 90 days after the last one

Read before the script only when needed, in one pipelined round trip (different slots: not
atomic, only reads): the terminal's key lookup (issuers/terminals/store.py), when this process
has not seen that key yet, and a TOTP payload's ``coderef`` record (codes/store.py).  Known
terminals are cached per process; the script checks each against the program's
``terminals`` hash, so a revoked key stops working at once.  A one-time code or a card
number therefore costs one round trip: the script.  A 12-13 digit payload matching nothing
in the program costs two more: the ``otclive`` claims (codes/store.py), then the script with
the verdict.
The script also reads keys other stores own, named by those stores: the program record,
``cardref``, ``terminals``, ``members`` and one-time token records, all in the issuer's slot.
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
from kernel.lru import LRU
from wallet_api.cards.store import CardStore
from wallet_api.codes.models import CodeRefRecord
from wallet_api.codes.store import CodeStore, decode_ref, decode_token
from wallet_api.pos.models import Attempt, Settled, SettledOutcome
from wallet_api.pos.verify_lua import render
from wallet_api.settings import Lockout

LOG_KEEP_MS = 90 * 24 * 3600 * 1000

_decode_terminal = msgspec.msgpack.Decoder(TerminalRecord).decode


def _limits(lockout: Lockout) -> tuple[int, int, int]:
    return lockout.failures, lockout.window_s * 1000, lockout.lock_s * 1000


# Terminals this process has seen; each is checked by the script, so size is the only limit.
TERMINAL_CACHE_SIZE = 10_000


class KnownTerminal(msgspec.Struct, frozen=True):
    record: TerminalRecord
    raw: bytes  # as stored in the program's ``terminals`` hash: the script compares it


class Lookup(msgspec.Struct, frozen=True):
    terminal: KnownTerminal | None
    ref: CodeRefRecord | None


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
        self._known: LRU[str, KnownTerminal] = LRU(TERMINAL_CACHE_SIZE)
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

    def known_terminal(self, token_digest: str) -> KnownTerminal | None:
        return self._known.get(token_digest)

    def forget_terminal(self, token_digest: str) -> None:
        self._known.drop(token_digest)

    async def lookup(self, token_digest: str | None, ref: str | None) -> Lookup:
        """The terminal's key (unless known already) and the TOTP record the payload may name."""
        reads = []
        if token_digest is not None:
            reads.append(("GET", self._terminals.lookup_key(token_digest)))
        if ref is not None:
            reads.append(("GET", self._codes.ref_key(ref)))
        raws = cast(list[bytes | None], await self._direct.execute(reads)) if reads else []
        terminal = None
        if token_digest is not None:
            raw = raws.pop(0)
            if raw is not None:
                terminal = KnownTerminal(record=_decode_terminal(raw), raw=raw)
                self._known.put(token_digest, terminal)
        found_ref = None if ref is None or raws[0] is None else decode_ref(raws[0])
        return Lookup(terminal=terminal, ref=found_ref)

    async def token_owners(self, token_indexes: list[str]) -> list[str]:
        """The programs owning these live tokens (for a till of another program)."""
        reads = [("GET", self._codes.live_key(index)) for index in token_indexes]
        raws = cast(list[bytes | None], await self._direct.execute(reads))
        return [raw.decode() for raw in raws if raw is not None]

    async def settle(
        self, attempt: Attempt, terminal: KnownTerminal, token_indexes: list[str], now: float
    ) -> Settled:
        """The whole check-and-consume, counting and logging, atomically (one round trip)."""
        iss = attempt.issuer_id
        subject = attempt.card_subject or "-"
        keys = [
            self._programs.issuer_key(iss),
            self._cards.refs_key(iss),
            self._terminals.hash_key(iss),
            self._members.members_key(iss),
            self._log(iss),
            self._fails(iss, "t:" + attempt.terminal_id),
            self._lock(iss, "t:" + attempt.terminal_id),
            self._fails(iss, "c:" + subject),
            self._lock(iss, "c:" + subject),
            self._step(iss, attempt.state or "-"),
        ]
        for index in token_indexes:
            keys += [self._codes.token_key(iss, index), self._consumed(iss, index)]
        args: list[str | int | bytes] = [
            round(now * 1000),
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
            terminal.raw,
            len(attempt.number_indexes),
            *attempt.number_indexes,
            *attempt.member_indexes,
        ]
        reply = cast(list[bytes | int | None], await self._verify(keys, args))
        outcome, retry_ms, member, holder, matched, token = reply
        return Settled(
            outcome=cast(SettledOutcome, cast(bytes, outcome).decode()),
            retry_after_ms=cast(int, retry_ms),
            member_raw=cast(bytes | None, member),
            holder=cast(bytes, holder).decode(),
            matched=cast(int, matched),
            token=None if token is None else decode_token(cast(bytes, token)),
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
