"""Bulk import: split the body into rows, check each row alone, upsert in atomic batches.

The body is a JSON array (row ``line`` = 1-based array index) or NDJSON (``line`` = the line
number in the body).  The array is split with ``msgspec.Raw`` and each element decoded
separately, so one bad row becomes one row error instead of failing the request.

Rows that pass are written ``IMPORT_BATCH`` at a time, each batch one Lua call
(``StoreStore.write``): a row is written whole or reported, never half-written.  While Redis
runs one batch, a worker thread validates the next, so Python and Redis work side by side.
"""

from __future__ import annotations

import asyncio
from typing import Final

import msgspec

from issuers.stores.errors import (
    BeaconTaken,
    ConcurrentUpdate,
    DuplicateExternalId,
    ExternalIdRequired,
    MalformedImport,
    MalformedRow,
    TooManyStores,
)
from issuers.stores.models import CreateStore, ImportResult, ImportRowError, StoreRecord
from issuers.stores.store import Loaded, StoreStore, WriteOutcome, created_score
from issuers.stores.validation import FenceChecker, new_record
from kernel.errors import DomainError, InvalidInput
from kernel.ids import new_id

MAX_IMPORT_ROWS: Final = 100_000
IMPORT_BATCH: Final = 1000
"""Stores per atomic write: large enough to amortise round trips, small enough that one script
stays in the low milliseconds (Redis serves nothing else while it runs)."""
WRITE_ATTEMPTS: Final = 3

Row = tuple[int, bytes | msgspec.Raw]
Draft = tuple[int, StoreRecord]
"""A row that passed validation: (line, record without its final id)."""

_split_array = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_row = msgspec.json.Decoder(CreateStore).decode
_NDJSON_TYPES: Final = ("application/x-ndjson", "application/ndjson", "application/jsonl")


def _is_ndjson(body: bytes, content_type: str | None) -> bool:
    if content_type and content_type.split(";")[0].strip().lower() in _NDJSON_TYPES:
        return True
    return not body.lstrip().startswith(b"[")


def split_rows(body: bytes, content_type: str | None) -> list[Row]:
    """(line, raw row) pairs; blank NDJSON lines are skipped but still counted."""
    if _is_ndjson(body, content_type):
        rows: list[Row] = [
            (n, line) for n, line in enumerate(body.split(b"\n"), start=1) if line.strip()
        ]
    else:
        try:
            elements = _split_array(body)
        except msgspec.DecodeError as exc:
            raise MalformedImport(
                f"the body is not a JSON array of stores ({exc}); send a JSON array, or NDJSON "
                "with Content-Type application/x-ndjson",
                field="body",
            ) from None
        rows = list(enumerate(elements, start=1))
    if len(rows) > MAX_IMPORT_ROWS:
        raise TooManyStores(
            f"{len(rows)} stores in one import; at most {MAX_IMPORT_ROWS}", field="body"
        )
    return rows


def decode_row(raw: bytes | msgspec.Raw) -> CreateStore:
    try:
        return _decode_row(raw)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise MalformedRow(f"the row is not valid JSON: {exc}") from None


def row_error(line: int, exc: DomainError) -> ImportRowError:
    message = f"{exc.field}: {exc.detail}" if exc.field else exc.detail
    return ImportRowError(line=line, code=exc.code, message=message)


def beacon_error(record: StoreRecord, issuer_id: str, outcome: WriteOutcome) -> BeaconTaken:
    same_program = outcome.holder_issuer_id == issuer_id
    return BeaconTaken.held_by(
        record.beacons[outcome.beacon_index],
        outcome.beacon_index,
        outcome.holder_store_id if same_program else None,
    )


class StoreImport:
    """One import request: its rows, the external ids seen so far, counts and row errors."""

    def __init__(self, store: StoreStore, fences: FenceChecker, issuer_id: str, now: float) -> None:
        self._store = store
        self._fences = fences
        self._issuer_id = issuer_id
        self._now = now
        self._first_us = created_score(now)
        self._line_of: dict[str, int] = {}
        self.errors: list[ImportRowError] = []
        self.created = 0
        self.updated = 0

    async def run(self, rows: list[Row]) -> ImportResult:
        batches = [rows[i : i + IMPORT_BATCH] for i in range(0, len(rows), IMPORT_BATCH)]
        drafts = self._drafts(batches[0], 0) if batches else []
        for number in range(len(batches)):
            following = batches[number + 1] if number + 1 < len(batches) else []
            offset = (number + 1) * IMPORT_BATCH
            _, drafts = await asyncio.gather(
                self._write(drafts), asyncio.to_thread(self._drafts, following, offset)
            )
        self.errors.sort(key=lambda e: e.line)
        return ImportResult(created=self.created, updated=self.updated, errors=self.errors)

    def _drafts(self, rows: list[Row], offset: int) -> list[Draft]:
        drafts: list[Draft] = []
        for index, (line, raw) in enumerate(rows, start=offset):
            try:
                fields = decode_row(raw)
                external_id = fields.external_id
                if not isinstance(external_id, str):
                    raise ExternalIdRequired(
                        "import rows need the partner's external_id", field="external_id"
                    )
                if external_id in self._line_of:
                    raise DuplicateExternalId(
                        f"{external_id!r} is already on line {self._line_of[external_id]}",
                        field="external_id",
                    )
                # Rows are spaced 1 us apart so the listing keeps the file's order.
                created_at = (self._first_us + index) / 1_000_000
                record = new_record(fields, self._issuer_id, "", created_at, self._fences)
            except DomainError as exc:
                self.errors.append(row_error(line, exc))
                continue
            self._line_of[external_id] = line
            drafts.append((line, record))
        return drafts

    async def _write(self, drafts: list[Draft]) -> None:
        pending = drafts
        for _ in range(WRITE_ATTEMPTS):
            if not pending:
                return
            writes = await self._resolve(pending)
            outcomes = await self._store.write(self._issuer_id, writes)
            retry: list[Draft] = []
            for draft, (record, _), outcome in zip(pending, writes, outcomes, strict=True):
                if outcome.status == "created":
                    self.created += 1
                elif outcome.status == "updated":
                    self.updated += 1
                elif outcome.status == "beacon_taken":
                    error = beacon_error(record, self._issuer_id, outcome)
                    self.errors.append(row_error(draft[0], error))
                else:  # stale, or the external_id was just taken: re-read and try again
                    retry.append(draft)
            pending = retry
        self.errors.extend(
            row_error(line, ConcurrentUpdate("the store kept changing during the import"))
            for line, _ in pending
        )

    async def _resolve(self, drafts: list[Draft]) -> list[tuple[StoreRecord, Loaded | None]]:
        """Each draft as a new store, or as the update of the store its external_id names."""
        external_ids = [record.external_id or "" for _, record in drafts]
        ids = await self._store.ids_for_external(self._issuer_id, external_ids)
        current = await self._store.load([i for i in ids if i is not None])
        writes: list[tuple[StoreRecord, Loaded | None]] = []
        for (_, draft), store_id in zip(drafts, ids, strict=True):
            previous = current.get(store_id) if store_id is not None else None
            if previous is None:
                record = msgspec.structs.replace(draft, store_id=new_id("sto"))
            else:
                record = msgspec.structs.replace(
                    draft,
                    store_id=previous.record.store_id,
                    created_at=previous.record.created_at,
                    updated_at=self._now,
                )
            writes.append((record, previous))
        return writes
