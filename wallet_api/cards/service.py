"""The user's cards: add (typed, scanned or enrolled), list, change, delete, draw.

A card number is as good as the plastic card: it is sealed at rest (associated data
``card:<card id>``), found only through keyed blind indexes, and shown only to its owner.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

import msgspec

from issuers.members.models import ClaimedEnrollment, MemberData
from issuers.members.service import MemberService
from issuers.programs.models import BarcodeFormat, IssuerRecord, NumberPattern
from issuers.programs.recognition import best_score, normalize_number, score
from issuers.programs.service import ProgramService, to_entry
from kernel.clock import Clock
from kernel.ids import looks_like_id, new_id
from kernel.keyring import Keyring
from kernel.pagination import InvalidCursor, decode_cursor, encode_cursor
from kernel.structs import Page
from wallet_api.barcodes import check_value, render_png, render_svg
from wallet_api.cards.errors import (
    BarcodeUnencodable,
    CardExists,
    CardLimitReached,
    CardNotFound,
    CardSourceRequired,
    InvalidCardNumber,
    InvalidCheckDigit,
)
from wallet_api.cards.models import (
    AddCard,
    Card,
    CardHolder,
    CardKind,
    CardRecord,
    UpdateCard,
)
from wallet_api.cards.store import CardStore
from wallet_api.codes.errors import DynamicCodesRequired
from wallet_api.codes.policy import dynamic_mode

# Told (user id, card id) after a card is removed, so data kept beside it goes too.
CardRemoved = Callable[[str, str], Awaitable[None]]

MAX_CARDS_PER_USER = 200
DEFAULT_BARCODE_FORMAT: BarcodeFormat = "code128"
_CARD_NUMBER = re.compile(r"^[!-~]{1,128}$")  # printable ASCII, no spaces (normalized away)


def check_digit_problem(number: str, patterns: list[NumberPattern]) -> str | None:
    """Why ``number`` fails the program's check digit, or None.  A number that fits a rule's
    shape (length, prefix, regex) must pass that rule's check digit unless another rule
    matches it fully; numbers outside every rule's shape are the program's to judge."""
    if best_score(number, patterns) is not None:
        return None
    for pattern in patterns:
        shape_only = msgspec.structs.replace(pattern, check_digit="none")
        if pattern.check_digit != "none" and score(number, shape_only) is not None:
            return f"the number's last digit is not its {pattern.check_digit} check digit"
    return None


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _card_ad(card_id: str) -> str:
    return f"card:{card_id}"


class CardService:
    """Also the ``cards`` personal-data part and the ``cards`` SealedDataFamily."""

    name = "cards"

    def __init__(
        self,
        store: CardStore,
        programs: ProgramService,
        members: MemberService,
        keyring: Keyring,
        clock: Clock,
        max_cards: int = MAX_CARDS_PER_USER,
    ) -> None:
        self._store = store
        self._programs = programs
        self._members = members
        self._keyring = keyring
        self._clock = clock
        self._max_cards = max_cards
        self._removal_listeners: list[CardRemoved] = []

    def on_removed(self, listener: CardRemoved) -> None:
        self._removal_listeners.append(listener)

    # --- adding -------------------------------------------------------------------------

    async def add(self, user_id: str, data: AddCard) -> Card:
        if data.enrollment_code is not None:
            if data.number is not None or data.issuer_id is not None:
                raise CardSourceRequired(
                    "an enrolled card takes its number and program from the code: send "
                    "either enrollment_code or number",
                    field="enrollment_code",
                )
            if data.barcode_format is not None:
                raise CardSourceRequired(
                    "an enrolled card uses its program's barcode format", field="barcode_format"
                )
            return await self._enroll(user_id, data.enrollment_code, data.label)
        if data.number is None:
            raise CardSourceRequired("send a card number or an enrollment code", field="number")
        record = await self._self_added(user_id, data, data.number)
        return (await self._to_cards([await self._save(record)]))[0]

    async def _self_added(self, user_id: str, data: AddCard, raw_number: str) -> CardRecord:
        number = normalize_number(raw_number)
        if not _CARD_NUMBER.fullmatch(number):
            raise InvalidCardNumber(
                "a card number is 1-128 printable ASCII characters (spaces and dashes dropped)",
                field="number",
            )
        issuer = await self._issuer_for(number, data.issuer_id)
        fmt = data.barcode_format or (issuer.barcode_format if issuer else DEFAULT_BARCODE_FORMAT)
        problem = check_value(number, fmt)
        if problem is not None:
            raise BarcodeUnencodable(problem, field="number")
        kind: CardKind = "self_added" if issuer else "custom"
        # Custom cards keep their format; issuer cards follow the program unless overridden.
        stored_fmt = fmt if issuer is None else data.barcode_format
        return await self._new_record(user_id, kind, issuer, number, stored_fmt, data.label)

    async def _issuer_for(self, number: str, issuer_id: str | None) -> IssuerRecord | None:
        if issuer_id is None:
            matches = (await self._programs.recognize(number)).matches
            return await self._programs.record(matches[0].issuer_id) if matches else None
        issuer = await self._programs.record(issuer_id)
        problem = check_digit_problem(number, issuer.number_patterns)
        if problem is not None:
            raise InvalidCheckDigit(problem, field="number")
        return issuer

    async def _enroll(self, user_id: str, code: str, label: str | None) -> Card:
        claim = await self._members.consume_enrollment(code)
        try:
            issuer = await self._programs.record(claim.issuer_id)
            record = await self._new_record(
                user_id, "enrolled", issuer, claim.member_number, None, label
            )
            saved = await self._save(record)
        except (CardExists, CardLimitReached):
            await self._restore(code, claim)
            raise
        return (await self._to_cards([saved]))[0]

    async def _restore(self, code: str, claim: ClaimedEnrollment) -> None:
        """Nothing was attached, so the code must keep working for its remaining life."""
        await self._members.restore_enrollment(code, claim)

    async def _new_record(
        self,
        user_id: str,
        kind: CardKind,
        issuer: IssuerRecord | None,
        number: str,
        barcode_format: BarcodeFormat | None,
        label: str | None,
    ) -> CardRecord:
        card_id = new_id("crd")
        issuer_id = issuer.issuer_id if issuer else None
        last = await self._store.last_position(user_id)
        now = self._clock.now()
        return CardRecord(
            card_id=card_id,
            user_id=user_id,
            kind=kind,
            issuer_id=issuer_id,
            number_sealed=self._keyring.seal(number.encode(), _card_ad(card_id)),
            dedupe_index=self._keyring.blind_index(
                "card:" + user_id, f"{issuer_id or 'custom'}\0{number}"
            ),
            ref_index=None if issuer_id is None else self._ref_index(issuer_id, number),
            position=0 if last is None else last + 1,
            created_at=now,
            updated_at=now,
            barcode_format=barcode_format,
            label=label,
        )

    def _ref_index(self, issuer_id: str, number: str) -> str:
        return self._keyring.blind_index("card-number:" + issuer_id, number)

    async def _save(self, record: CardRecord) -> CardRecord:
        status, held = await self._store.add(record, self._max_cards)
        if status == "exists":
            raise CardExists(f"this card is already in the wallet as {held}", field="number")
        if status == "limit":
            raise CardLimitReached(
                f"a wallet holds at most {self._max_cards} cards; delete one first"
            )
        if record.issuer_id is not None and record.ref_index is not None:
            holder = CardHolder(user_id=record.user_id, card_id=record.card_id)
            await self._store.add_ref(record.issuer_id, record.ref_index, holder)
        return record

    # --- reading ------------------------------------------------------------------------

    async def list_cards(self, user_id: str, limit: int, cursor: str | None) -> Page[Card]:
        offset = self._offset(decode_cursor(cursor))
        records = await self._store.page(user_id, offset, limit)
        more = offset + limit < await self._store.count(user_id)
        next_cursor = encode_cursor(str(offset + limit)) if more else None
        return Page(items=await self._to_cards(records), next_cursor=next_cursor)

    @staticmethod
    def _offset(position: str | None) -> int:
        if position is None:
            return 0
        if not position.isdigit():
            raise InvalidCursor("cursor is not one this API returned", field="cursor")
        return int(position)

    async def get(self, user_id: str, card_id: str) -> Card:
        return (await self._to_cards([await self._record(user_id, card_id)]))[0]

    async def _record(self, user_id: str, card_id: str) -> CardRecord:
        record = await self._store.get(user_id, card_id) if looks_like_id(card_id, "crd") else None
        if record is None:
            raise CardNotFound(f"no card {card_id!r} in this wallet", field="card_id")
        return record

    def _number(self, record: CardRecord) -> str:
        return self._keyring.open(record.number_sealed, _card_ad(record.card_id)).decode()

    async def _to_cards(self, records: list[CardRecord]) -> list[Card]:
        issuers = await self._programs.records(
            list(dict.fromkeys(r.issuer_id for r in records if r.issuer_id))
        )
        numbers = {r.card_id: self._number(r) for r in records}
        enrolled = [r for r in records if r.kind == "enrolled" and r.issuer_id]
        shared = await self._members.members_for_cards(
            [(r.issuer_id or "", numbers[r.card_id]) for r in enrolled]
        )
        members: dict[str, MemberData | None] = {
            r.card_id: data for r, data in zip(enrolled, shared, strict=True)
        }
        return [
            self._to_card(r, numbers[r.card_id], issuers.get(r.issuer_id or ""), members)
            for r in records
        ]

    @staticmethod
    def _to_card(
        record: CardRecord,
        number: str,
        issuer: IssuerRecord | None,
        members: dict[str, MemberData | None],
    ) -> Card:
        return Card(
            id=record.card_id,
            kind=record.kind,
            issuer=to_entry(issuer) if issuer else None,
            number=number,
            barcode_format=_format_of(record, issuer),
            label=record.label,
            position=record.position,
            favorite=record.favorite,
            member=members.get(record.card_id),
            created_at=_at(record.created_at),
        )

    async def barcode(self, user_id: str, card_id: str, image: Literal["svg", "png"]) -> bytes:
        """The card's static barcode: its number drawn in its format.  Refused where the
        program demands dynamic codes: a static fallback would defeat them."""
        record = await self._record(user_id, card_id)
        issuer = (await self._programs.records([record.issuer_id]) if record.issuer_id else {}).get(
            record.issuer_id or ""
        )
        if dynamic_mode(record.kind, issuer) is not None:
            raise DynamicCodesRequired(
                "this card's program accepts only dynamic codes at the till: show code.svg "
                "or code.png",
                field="card_id",
            )
        render = render_svg if image == "svg" else render_png
        return render(self._number(record), _format_of(record, issuer))

    async def card_and_number(self, user_id: str, card_id: str) -> tuple[CardRecord, str]:
        """The stored card and its number in clear (for its owner's dynamic codes)."""
        record = await self._record(user_id, card_id)
        return record, self._number(record)

    async def holders_of(self, issuer_id: str, number: str) -> list[CardHolder]:
        """Wallet cards (self-added or enrolled) carrying ``number`` of this program; entries
        are hints (see store.py): confirm the card record before trusting one."""
        return await self._store.holders(issuer_id, self._ref_index(issuer_id, number))

    # --- changing -----------------------------------------------------------------------

    async def update(self, user_id: str, card_id: str, data: UpdateCard) -> Card:
        record = await self._record(user_id, card_id)
        changes = {
            name: value
            for name in data.__struct_fields__
            if (value := getattr(data, name)) is not msgspec.UNSET
        }
        record = msgspec.structs.replace(record, **changes, updated_at=self._clock.now())
        if not await self._store.update(record):
            raise CardNotFound(f"no card {card_id!r} in this wallet", field="card_id")
        return (await self._to_cards([record]))[0]

    async def delete(self, user_id: str, card_id: str) -> None:
        record = await self._record(user_id, card_id)
        await self._remove(record)

    async def _remove(self, record: CardRecord) -> None:
        await self._store.delete(record)
        if record.issuer_id is not None and record.ref_index is not None:
            holder = CardHolder(user_id=record.user_id, card_id=record.card_id)
            await self._store.remove_ref(record.issuer_id, record.ref_index, holder)
        for listener in self._removal_listeners:
            await listener(record.user_id, record.card_id)

    # --- personal data and key rotation -------------------------------------------------

    async def export(self, user_id: str) -> object:
        return await self._to_cards(await self._store.all_cards(user_id))

    async def issuer_ids_of(self, user_id: str) -> set[str]:
        """The programs the user holds a card of (presence's ``MembershipDirectory``)."""
        return await self._store.issuer_ids(user_id)

    async def erase(self, user_id: str) -> None:
        for record in await self._store.all_cards(user_id):
            await self._remove(record)
        await self._store.forget_user(user_id)

    async def rewrap(self, keyring: Keyring) -> int:
        def reseal(record: CardRecord) -> bytes | None:
            if not keyring.needs_rewrap(record.number_sealed):
                return None
            return keyring.rewrap(record.number_sealed, _card_ad(record.card_id))

        changed = 0
        async for key in self._store.scan_cards():
            changed += await self._store.reseal(key, reseal)
        return changed


def _format_of(record: CardRecord, issuer: IssuerRecord | None) -> BarcodeFormat:
    if record.barcode_format is not None:
        return record.barcode_format
    return issuer.barcode_format if issuer else DEFAULT_BARCODE_FORMAT
