"""POS verification: which member stands at the till, proven by a code accepted once.

One Redis round trip for a one-time code or a card number: one atomic script in the
issuer's slot checks the terminal, the lockouts, the code, consumes it, counts failures and
writes the partner's log.  A terminal key this process has not seen yet, and a rotating
(TOTP) code, whose value Python checks with the card's seed, add one pipelined read before
it.  The payload is read three ways: ``<ref><totp>`` (rotating codes), a one-time token, or a
static card number (the script tries the token first).
"""

from __future__ import annotations

import hmac
import math
from datetime import UTC, datetime
from typing import cast

import msgspec

from issuers.members.models import MemberRecord
from issuers.programs.code_policy import REF_DIGITS
from issuers.programs.recognition import normalize_number
from issuers.terminals.models import TerminalRecord
from kernel.clock import Clock
from kernel.ids import new_id
from kernel.keyring import Keyring
from kernel.pagination import InvalidCursor, decode_cursor, encode_cursor
from kernel.structs import Page
from wallet_api.auth import InvalidToken
from wallet_api.codes.models import CardIdentity, CodeRefRecord
from wallet_api.codes.service import ref_ad, token_ad, token_index
from wallet_api.codes.totp import hotp
from wallet_api.pos.errors import REJECTIONS, TooManyAttempts
from wallet_api.pos.models import (
    Attempt,
    Method,
    Outcome,
    Settled,
    Verification,
    VerificationEntry,
)
from wallet_api.pos.store import LOG_KEEP_MS, PosStore
from wallet_api.settings import Settings

_decode_member = msgspec.msgpack.Decoder(MemberRecord).decode
# How far back a presented TOTP value is recognised as "expired" rather than "unknown".
_EXPIRED_LOOKBACK_STEPS = 20
_TOKEN_LENGTHS = frozenset({12, 13})  # one-time tokens: 12 digits, EAN-13 or UPC-A


def _upca_variants(payload: str) -> list[str]:
    """Scanners report UPC-A as EAN-13 with a leading 0: both spellings name one value."""
    if len(payload) == 13 and payload.startswith("0"):
        return [payload, payload[1:]]
    return [payload]


class PosService:
    def __init__(self, store: PosStore, keyring: Keyring, clock: Clock, settings: Settings) -> None:
        self._store = store
        self._keyring = keyring
        self._clock = clock
        self._settings = settings

    async def verify(self, token_digest: str, payload: str) -> Verification:
        payload = payload.strip()
        numeric = payload.isascii() and payload.isdigit()
        ref = None
        if numeric and REF_DIGITS + 6 <= len(payload) <= REF_DIGITS + 10 and payload[0] != "0":
            ref = payload[:REF_DIGITS]
        tokens = []
        if numeric and len(payload) in _TOKEN_LENGTHS:
            tokens = [token_index(self._keyring, v) for v in _upca_variants(payload)]
        # A known terminal the script finds revoked is read again, once.
        for _ in range(2):
            terminal = self._store.known_terminal(token_digest)
            found_ref = None
            if terminal is None or ref is not None:
                found = await self._store.lookup(None if terminal else token_digest, ref)
                terminal, found_ref = terminal or found.terminal, found.ref
            if terminal is None:
                break
            now = self._clock.now()
            attempt = self._attempt(terminal.record, found_ref, payload, now)
            candidates = tokens if attempt.method is None else []
            settled = await self._store.settle(attempt, terminal, candidates, now)
            if settled.outcome == "miss":
                attempt = await self._missed(attempt, tokens)
                settled = await self._store.settle(attempt, terminal, [], now)
            if settled.outcome != "terminal_gone":
                return self._result(attempt, settled, found_ref, payload)
            self._store.forget_terminal(token_digest)
        raise InvalidToken("the token is not valid")

    def _attempt(
        self, terminal: TerminalRecord, ref: CodeRefRecord | None, payload: str, now: float
    ) -> Attempt:
        attempt = Attempt(
            issuer_id=terminal.issuer_id,
            terminal_id=terminal.terminal_id,
            store_id=terminal.store_id,
            verification_id=new_id("ver"),
            method=None,
        )
        if ref is not None:
            return self._totp(attempt, ref, payload, now)
        return self._numbers(attempt, payload)

    async def _missed(self, attempt: Attempt, tokens: list[str]) -> Attempt:
        """No token of this program and no card number: another program's token, or noise."""
        owners = await self._store.token_owners(tokens)
        if any(owner != attempt.issuer_id for owner in owners):
            return msgspec.structs.replace(attempt, method="one_time", verdict="code_wrong_issuer")
        return msgspec.structs.replace(attempt, verdict="code_unknown")

    def _with_card(self, attempt: Attempt, card: CardIdentity, method: Method) -> Attempt:
        if card.issuer_id != attempt.issuer_id:
            # Counted against the terminal only: the card's state lives in another program.
            return msgspec.structs.replace(attempt, method=method, verdict="code_wrong_issuer")
        return msgspec.structs.replace(
            attempt,
            method=method,
            card_id=card.card_id,
            kind=card.kind,
            holder=f"{card.user_id}/{card.card_id}",
            number_indexes=[card.number_index],
            member_indexes=[card.member_index],
        )

    def _totp(self, attempt: Attempt, ref: CodeRefRecord, payload: str, now: float) -> Attempt:
        attempt = self._with_card(attempt, ref.card, "totp")
        if attempt.verdict is not None:
            return attempt
        attempt = msgspec.structs.replace(
            attempt,
            card_subject="r" + ref.ref,
            state=ref.ref,
            period_s=ref.period_s,
            digits=ref.digits,
        )
        presented = payload[REF_DIGITS:]
        if len(presented) != ref.digits:
            return msgspec.structs.replace(attempt, verdict="code_unknown")
        seed = self._keyring.open(ref.seed_sealed, ref_ad(ref.ref))
        current = int(now // ref.period_s)
        skew = self._settings.totp_skew_steps
        for step in range(current, current - skew - 1, -1):
            if hmac.compare_digest(hotp(seed, step, ref.digits), presented):
                # The state must outlive the step's acceptance window, no longer.
                until = (step + skew + 1) * ref.period_s
                return msgspec.structs.replace(
                    attempt,
                    step_ms=step * ref.period_s * 1000,
                    state_ttl_ms=math.ceil((until - now) * 1000) + 1000,
                )
        older = range(current - skew - 1, current - skew - 1 - _EXPIRED_LOOKBACK_STEPS, -1)
        stale = any(hmac.compare_digest(hotp(seed, s, ref.digits), presented) for s in older)
        return msgspec.structs.replace(attempt, verdict="code_expired" if stale else "code_unknown")

    def _numbers(self, attempt: Attempt, payload: str) -> Attempt:
        """Not a rotating code: the script tries a one-time token, then these card numbers."""
        iss = attempt.issuer_id
        numbers = _upca_variants(normalize_number(payload))
        return msgspec.structs.replace(
            attempt,
            number_indexes=[self._keyring.blind_index("card-number:" + iss, n) for n in numbers],
            member_indexes=[self._keyring.blind_index("member:" + iss, n) for n in numbers],
        )

    def _result(
        self, attempt: Attempt, settled: Settled, ref: CodeRefRecord | None, payload: str
    ) -> Verification:
        if settled.outcome == "too_many_attempts":
            retry_s = math.ceil(settled.retry_after_ms / 1000)
            raise TooManyAttempts(
                f"too many failed attempts; this terminal or card is locked for {retry_s} s",
                retry_after_s=retry_s,
            )
        if settled.outcome != "accepted":
            error, detail = REJECTIONS[settled.outcome]
            raise error(detail, field="payload")
        token = settled.token
        method: Method
        if ref is not None:
            method, card_id = "totp", attempt.card_id
            number = self._keyring.open(ref.card.number_sealed, ref_ad(ref.ref)).decode()
        elif token is not None:
            method, card_id = "one_time", token.card.card_id
            ad = token_ad(token.token_index)
            number = self._keyring.open(token.card.number_sealed, ad).decode()
        else:
            method, card_id = "static", settled.holder.partition("/")[2] or None
            number = _upca_variants(normalize_number(payload))[settled.matched - 1]
        member = None if settled.member_raw is None else _decode_member(settled.member_raw)
        return Verification(
            verification_id=attempt.verification_id,
            card_id=card_id,
            issuer_id=attempt.issuer_id,
            member_number=number,
            tier=None if member is None else member.tier,
            points=None if member is None else member.points,
            method=method,
            coupons=[],
        )

    # --- the partner's log ---------------------------------------------------------------

    async def log(self, issuer_id: str, limit: int, cursor: str | None) -> Page[VerificationEntry]:
        before = decode_cursor(cursor)
        if before is not None and not _is_stream_id(before):
            raise InvalidCursor("cursor is not one this API returned", field="cursor")
        since_ms = round(self._clock.now() * 1000) - LOG_KEEP_MS
        rows = await self._store.log_page(issuer_id, before, since_ms, limit)
        items = [_entry(fields) for _, fields in rows]
        next_cursor = encode_cursor(rows[-1][0]) if len(rows) == limit else None
        return Page(items=items, next_cursor=next_cursor)


def _is_stream_id(value: str) -> bool:
    ms, sep, seq = value.partition("-")
    return bool(sep) and ms.isdigit() and seq.isdigit()


def _entry(fields: dict[bytes, bytes]) -> VerificationEntry:
    text = {k.decode(): v.decode() for k, v in fields.items()}
    return VerificationEntry(
        id=text["v"],
        time=datetime.fromtimestamp(int(text["t"]) / 1000, UTC),
        terminal_id=text["trm"],
        store_id=text["sto"] or None,
        card_id=text["crd"] or None,
        outcome=cast(Outcome, text["out"]),
        method=cast(Method, text["m"]) if text["m"] else None,
    )
