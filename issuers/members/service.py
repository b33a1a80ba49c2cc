"""Members a partner shares, and one-time enrollment codes that attach a member's card.

A member number is as good as the plastic card, so it is never stored or logged in clear:
records are keyed by a blind index scoped to the issuer (partner B's index of the same
number is another key) and hold the number sealed.  Enrollment codes are 80 random bits
(16 Crockford base32 characters in groups of four), kept only as a keyed hash, and taken
with GETDEL so a code attaches at most one card.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from issuers.members.errors import (
    EnrollmentCodeInvalid,
    InvalidMemberNumber,
    MemberNotFound,
    MemberNumberUnencodable,
)
from issuers.members.models import (
    ClaimedEnrollment,
    CreateEnrollment,
    Enrollment,
    EnrollmentRecord,
    Member,
    MemberData,
    MemberFields,
    MemberRecord,
    UpsertedMember,
)
from issuers.members.store import MemberStore
from issuers.programs.models import BarcodeFormat
from issuers.programs.recognition import normalize_number
from issuers.programs.service import ProgramService
from kernel.clock import Clock
from kernel.keyring import Keyring

# Why a value cannot be drawn as a barcode format, or None (wallet_api/barcodes.check_value).
BarcodeCheck = Callable[[str, BarcodeFormat], str | None]

_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
_CODE_CHARS = 16  # 80 bits
_CODE_SHAPE = re.compile(f"^[{_CODE_ALPHABET}]{{{_CODE_CHARS}}}$")
# What people mistype for a Crockford digit, and the separators they add.
_CODE_TYPOS = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})
_MEMBER_NUMBER = re.compile(r"^[!-~]{1,64}$")  # printable ASCII without spaces
DEEP_LINK = "wallet://enroll?code="


def normalize_member_number(number: str, field: str = "member_number") -> str:
    normalized = normalize_number(number)
    if not _MEMBER_NUMBER.fullmatch(normalized):
        raise InvalidMemberNumber(
            "a member number is 1-64 printable ASCII characters (spaces and dashes dropped)",
            field=field,
        )
    return normalized


def normalize_code(code: str) -> str | None:
    """The canonical code, or None when it cannot be one we issued."""
    canonical = code.upper().translate(_CODE_TYPOS)
    return canonical if _CODE_SHAPE.fullmatch(canonical) else None


def _new_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_CHARS))
    return "-".join(raw[i : i + 4] for i in range(0, _CODE_CHARS, 4))


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _member_ad(issuer_id: str, number_index: str) -> str:
    return f"member:{issuer_id}:{number_index}"


def _enrollment_ad(code_index: str) -> str:
    return f"enroll:{code_index}"


def to_member_data(record: MemberRecord) -> MemberData:
    return MemberData(
        tier=record.tier, points=record.points, tags=record.tags, attributes=record.attributes
    )


class MemberService:
    """Also the ``members`` SealedDataFamily: ``wallet rotate-keys`` re-seals its numbers."""

    name = "members"

    def __init__(
        self,
        store: MemberStore,
        programs: ProgramService,
        keyring: Keyring,
        clock: Clock,
        barcode_problem: BarcodeCheck,
    ) -> None:
        self._store = store
        self._programs = programs
        self._keyring = keyring
        self._clock = clock
        self._barcode_problem = barcode_problem

    def _index(self, issuer_id: str, number: str) -> str:
        return self._keyring.blind_index("member:" + issuer_id, number)

    async def upsert(
        self, issuer_id: str, member_number: str, data: MemberFields
    ) -> UpsertedMember:
        number = normalize_member_number(member_number)
        index = self._index(issuer_id, number)
        now = self._clock.now()
        changes = {
            name: value
            for name in data.__struct_fields__
            if (value := getattr(data, name)) is not msgspec.UNSET
        }
        if "tags" in changes:
            changes["tags"] = list(dict.fromkeys(data.tags or []))  # drop repeats, keep order

        def change(current: MemberRecord | None) -> MemberRecord:
            if current is None:
                sealed = self._keyring.seal(number.encode(), _member_ad(issuer_id, index))
                current = MemberRecord(
                    issuer_id=issuer_id,
                    number_index=index,
                    number_sealed=sealed,
                    created_at=now,
                    updated_at=now,
                )
            return msgspec.structs.replace(current, **changes, updated_at=now)

        record, created = await self._store.upsert(issuer_id, index, change)
        return UpsertedMember(member=self._to_member(record, number), created=created)

    async def get(self, issuer_id: str, member_number: str) -> Member:
        number = normalize_member_number(member_number)
        record = await self._store.get(issuer_id, self._index(issuer_id, number))
        if record is None:
            raise MemberNotFound("no member with this number in your program")
        return self._to_member(record, number)

    @staticmethod
    def _to_member(record: MemberRecord, number: str) -> Member:
        return Member(
            member_number=number,
            tier=record.tier,
            points=record.points,
            tags=record.tags,
            attributes=record.attributes,
            created_at=_at(record.created_at),
            updated_at=_at(record.updated_at),
        )

    async def member_for_card(self, issuer_id: str, member_number: str) -> MemberData | None:
        """What the partner shares about this member, for the holder of an enrolled card."""
        return (await self.members_for_cards([(issuer_id, member_number)]))[0]

    async def members_for_cards(self, cards: list[tuple[str, str]]) -> list[MemberData | None]:
        """``member_for_card`` for many ``(issuer id, member number)`` pairs in one round trip."""
        refs = [(issuer_id, self._index(issuer_id, number)) for issuer_id, number in cards]
        records = await self._store.get_many(refs)
        return [None if record is None else to_member_data(record) for record in records]

    async def create_enrollment(self, issuer_id: str, data: CreateEnrollment) -> Enrollment:
        number = normalize_member_number(data.member_number)
        issuer = await self._programs.record(issuer_id)
        problem = self._barcode_problem(number, issuer.barcode_format)
        if problem is not None:
            raise MemberNumberUnencodable(problem, field="member_number")
        now = self._clock.now()
        while True:
            code = _new_code()
            index = self._keyring.blind_index("enrollment-code", code.replace("-", ""))
            record = EnrollmentRecord(
                issuer_id=issuer_id,
                code_index=index,
                number_sealed=self._keyring.seal(number.encode(), _enrollment_ad(index)),
                created_at=now,
                expires_at=now + data.ttl_s,
            )
            if await self._store.add_enrollment(index, record, data.ttl_s * 1000):
                break
        return Enrollment(code=code, deep_link=DEEP_LINK + code, expires_at=_at(record.expires_at))

    async def consume_enrollment(self, code: str) -> ClaimedEnrollment:
        """Take the code (it can never be used again) and say whose card it attaches."""
        canonical = normalize_code(code)
        if canonical is None:
            raise EnrollmentCodeInvalid(
                "this enrollment code is unknown, expired or already used",
                field="enrollment_code",
            )
        record = await self._store.take_enrollment(
            self._keyring.blind_index("enrollment-code", canonical)
        )
        if record is None or record.expires_at <= self._clock.now():
            raise EnrollmentCodeInvalid(
                "this enrollment code is unknown, expired or already used",
                field="enrollment_code",
            )
        number = self._keyring.open(record.number_sealed, _enrollment_ad(record.code_index))
        return ClaimedEnrollment(
            issuer_id=record.issuer_id, member_number=number.decode(), expires_at=record.expires_at
        )

    async def restore_enrollment(self, code: str, claim: ClaimedEnrollment) -> None:
        """Put back a code whose card could not be attached (limit reached, already held)."""
        canonical = normalize_code(code)
        ttl_ms = int((claim.expires_at - self._clock.now()) * 1000)
        if canonical is None or ttl_ms <= 0:
            return
        index = self._keyring.blind_index("enrollment-code", canonical)
        record = EnrollmentRecord(
            issuer_id=claim.issuer_id,
            code_index=index,
            number_sealed=self._keyring.seal(claim.member_number.encode(), _enrollment_ad(index)),
            created_at=self._clock.now(),
            expires_at=claim.expires_at,
        )
        await self._store.add_enrollment(index, record, ttl_ms)

    async def rewrap(self, keyring: Keyring) -> int:
        def reseal(record: MemberRecord | EnrollmentRecord) -> bytes | None:
            if not keyring.needs_rewrap(record.number_sealed):
                return None
            if isinstance(record, MemberRecord):
                associated = _member_ad(record.issuer_id, record.number_index)
            else:
                associated = _enrollment_ad(record.code_index)
            return keyring.rewrap(record.number_sealed, associated)

        changed = 0
        async for item in self._store.scan_sealed():
            changed += await self._store.rewrap(item, reseal)
        return changed
