"""Dynamic codes for the wallet holder: TOTP provisioning, one-time tokens, code images.

A card's TOTP secret is made once, on the first provisioning call, and kept for the card's
life (two concurrent first calls get the same secret: the first reference attached wins).
Secrets and card numbers are sealed; the barcode payload is the card's public reference
followed by the code, so the till finds the card with one read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import msgspec

from issuers.programs.models import BarcodeFormat, IssuerRecord
from issuers.programs.service import ProgramService
from kernel.clock import Clock
from kernel.keyring import Keyring
from wallet_api.barcodes import render_png, render_svg
from wallet_api.cards.models import CardRecord
from wallet_api.cards.service import CardService
from wallet_api.codes.errors import DynamicCodesNotEnabled
from wallet_api.codes.models import (
    CardIdentity,
    CodeRefRecord,
    GoogleBarcodeType,
    OneTimeCode,
    OneTimeRecord,
    RotatingBarcode,
    TotpDetails,
    TotpParameter,
    TotpProvisioning,
)
from wallet_api.codes.policy import DynamicMode, dynamic_mode
from wallet_api.codes.store import CodeStore
from wallet_api.codes.totp import base32, gtin_token, hotp, new_ref, new_seed, random_digits

# Google rotates only these four symbologies.  Linear formats it cannot rotate (code39,
# itf) map to Code 128, the linear symbology virtually every till scanner reads by default.
_GOOGLE_TYPES: dict[BarcodeFormat, GoogleBarcodeType] = {
    "qr": "QR_CODE",
    "pdf417": "PDF_417",
    "aztec": "AZTEC",
    "code128": "CODE_128",
    "code39": "CODE_128",
    "itf": "CODE_128",
}
_GTIN_TOKEN_LENGTHS: dict[BarcodeFormat, int] = {"ean13": 13, "upca": 12}
TOKEN_DIGITS = 12  # one-time tokens in formats without a fixed length


def ref_ad(ref: str) -> str:
    return f"coderef:{ref}"


def token_ad(token_index: str) -> str:
    return f"otc:{token_index}"


def token_index(keyring: Keyring, token: str) -> str:
    return keyring.blind_index("one-time-code", token)


def new_token(fmt: BarcodeFormat) -> str:
    """A random numeric token drawable in ``fmt`` (GTIN formats get their check digit)."""
    length = _GTIN_TOKEN_LENGTHS.get(fmt)
    return gtin_token(length) if length else random_digits(TOKEN_DIGITS)


class CodeService:
    """Also the ``codes`` SealedDataFamily, and told by the cards when one is removed."""

    name = "codes"

    def __init__(
        self,
        store: CodeStore,
        cards: CardService,
        programs: ProgramService,
        keyring: Keyring,
        clock: Clock,
    ) -> None:
        self._store = store
        self._cards = cards
        self._programs = programs
        self._keyring = keyring
        self._clock = clock

    async def _eligible(
        self, user_id: str, card_id: str, wanted: DynamicMode | None
    ) -> tuple[CardRecord, str, IssuerRecord, DynamicMode]:
        record, number = await self._cards.card_and_number(user_id, card_id)
        issuer = None
        if record.issuer_id is not None:
            issuer = (await self._programs.records([record.issuer_id])).get(record.issuer_id)
        mode = dynamic_mode(record.kind, issuer)
        if issuer is None or mode is None or (wanted is not None and mode != wanted):
            what = {"totp": "rotating (TOTP)", "one_time": "one-time", None: "dynamic"}[wanted]
            raise DynamicCodesNotEnabled(
                f"this card's program does not use {what} codes for it; show its barcode",
                field="card_id",
            )
        return record, number, issuer, mode

    def _identity(self, record: CardRecord, number: str, associated: str) -> CardIdentity:
        issuer_id = record.issuer_id or ""
        return CardIdentity(
            issuer_id=issuer_id,
            user_id=record.user_id,
            card_id=record.card_id,
            kind=record.kind,
            number_sealed=self._keyring.seal(number.encode(), associated),
            number_index=record.ref_index or "",
            member_index=self._keyring.blind_index("member:" + issuer_id, number),
        )

    # --- TOTP ----------------------------------------------------------------------------

    async def totp(self, user_id: str, card_id: str) -> TotpProvisioning:
        record, number, issuer, _ = await self._eligible(user_id, card_id, "totp")
        ref = await self._provision(record, number, issuer)
        seed = self._keyring.open(ref.seed_sealed, ref_ad(ref.ref))
        pattern = ref.ref + "{totp_value_0}"
        return TotpProvisioning(
            secret=base32(seed),
            secret_hex=seed.hex(),
            period_s=ref.period_s,
            digits=ref.digits,
            algorithm="SHA1",
            value_pattern=pattern,
            google_wallet_rotating_barcode=RotatingBarcode(
                type=_GOOGLE_TYPES.get(issuer.barcode_format, "QR_CODE"),
                render_encoding="UTF_8",
                value_pattern=pattern,
                alternate_text=ref.ref,
                totp_details=TotpDetails(
                    algorithm="TOTP_SHA1",
                    period_millis=str(ref.period_s * 1000),
                    parameters=[TotpParameter(key=seed.hex(), value_length=ref.digits)],
                ),
            ),
        )

    async def _provision(
        self, card: CardRecord, number: str, issuer: IssuerRecord
    ) -> CodeRefRecord:
        """The card's reference record, made on first use; follows the program's period and
        digits (the secret never changes)."""
        policy = issuer.code_policy
        ref_id = await self._store.ref_of(card.user_id, card.card_id)
        found = None if ref_id is None else await self._store.get_ref(ref_id)
        if found is None:
            if ref_id is not None:  # a half-removed card: start again
                await self._store.detach(card.user_id, card.card_id)
            found = await self._new_ref(card, number, issuer)
        if (found.period_s, found.digits) != (policy.period_s, policy.digits):
            found = msgspec.structs.replace(found, period_s=policy.period_s, digits=policy.digits)
            await self._store.replace_ref(found)
        return found

    async def _new_ref(self, card: CardRecord, number: str, issuer: IssuerRecord) -> CodeRefRecord:
        seed = new_seed()
        while True:
            ref = new_ref()
            record = CodeRefRecord(
                ref=ref,
                card=self._identity(card, number, ref_ad(ref)),
                seed_sealed=self._keyring.seal(seed, ref_ad(ref)),
                period_s=issuer.code_policy.period_s,
                digits=issuer.code_policy.digits,
                created_at=self._clock.now(),
            )
            if await self._store.claim_ref(record):
                break
        winner = await self._store.attach(card.user_id, card.card_id, ref)
        if winner == ref:
            return record
        # A concurrent first call attached its reference first: use that one, drop ours.
        await self._store.release_ref(ref)
        existing = await self._store.get_ref(winner)
        if existing is None:
            raise RuntimeError("a card's attached code reference has no record")
        return existing

    # --- one-time tokens -----------------------------------------------------------------

    async def mint(self, user_id: str, card_id: str) -> OneTimeCode:
        record, number, issuer, _ = await self._eligible(user_id, card_id, "one_time")
        return await self._mint(record, number, issuer)

    async def _mint(self, card: CardRecord, number: str, issuer: IssuerRecord) -> OneTimeCode:
        fmt = issuer.barcode_format
        now = self._clock.now()
        while True:
            token = new_token(fmt)
            index = token_index(self._keyring, token)
            record = OneTimeRecord(
                token_index=index,
                card=self._identity(card, number, token_ad(index)),
                expires_at=now + issuer.code_policy.ttl_s,
            )
            if await self._store.add_token(record, now):
                break
        expires_at = datetime.fromtimestamp(record.expires_at, UTC)
        return OneTimeCode(payload=token, barcode_format=fmt, expires_at=expires_at)

    # --- the image the phone shows -------------------------------------------------------

    async def image(self, user_id: str, card_id: str, image: Literal["svg", "png"]) -> bytes:
        """The card's current dynamic code drawn in its program's format."""
        record, number, issuer, mode = await self._eligible(user_id, card_id, None)
        if mode == "totp":
            ref = await self._provision(record, number, issuer)
            seed = self._keyring.open(ref.seed_sealed, ref_ad(ref.ref))
            step = int(self._clock.now() // ref.period_s)
            payload = ref.ref + hotp(seed, step, ref.digits)
        else:
            payload = (await self._mint(record, number, issuer)).payload
        render = render_svg if image == "svg" else render_png
        return render(payload, issuer.barcode_format)

    # --- lifecycle -----------------------------------------------------------------------

    async def card_removed(self, user_id: str, card_id: str) -> None:
        """Forget the card's secret and live tokens: its codes must die with it."""
        await self._store.detach(user_id, card_id)
        await self._store.drop_tokens(user_id, card_id)

    async def rewrap(self, keyring: Keyring) -> int:
        def reseal(record: CodeRefRecord | OneTimeRecord) -> CodeRefRecord | OneTimeRecord | None:
            ad = (
                ref_ad(record.ref)
                if isinstance(record, CodeRefRecord)
                else token_ad(record.token_index)
            )
            card = record.card
            seed_stale = isinstance(record, CodeRefRecord) and keyring.needs_rewrap(
                record.seed_sealed
            )
            if not (seed_stale or keyring.needs_rewrap(card.number_sealed)):
                return None
            number = keyring.rewrap(card.number_sealed, ad)
            record = msgspec.structs.replace(
                record, card=msgspec.structs.replace(card, number_sealed=number)
            )
            if isinstance(record, CodeRefRecord):
                seed = keyring.rewrap(record.seed_sealed, ad)
                return msgspec.structs.replace(record, seed_sealed=seed)
            return record

        changed = 0
        async for item in self._store.scan_sealed():
            changed += await self._store.rewrap(item, reseal)
        return changed
