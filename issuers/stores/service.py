"""Stores of a program: CRUD, bulk import, and the read side the presence engine follows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import msgspec

from issuers.stores.errors import ConcurrentUpdate, ExternalIdTaken, StoreNotFound
from issuers.stores.importing import StoreImport, beacon_error, split_rows
from issuers.stores.models import (
    CreateStore,
    ImportResult,
    Store,
    StoreChange,
    StoreFields,
    StoreRecord,
)
from issuers.stores.store import (
    Loaded,
    StoreStore,
    WriteOutcome,
    listing_position,
    position_after,
)
from issuers.stores.validation import FenceChecker, apply_fields, new_record
from kernel.clock import Clock
from kernel.ids import looks_like_id, new_id
from kernel.pagination import decode_cursor, encode_cursor
from kernel.structs import Page

WRITE_ATTEMPTS: Final = 3


def to_store(record: StoreRecord) -> Store:
    fields = msgspec.structs.asdict(record)
    del fields["store_id"]
    fields["created_at"] = datetime.fromtimestamp(record.created_at, UTC)
    fields["updated_at"] = datetime.fromtimestamp(record.updated_at, UTC)
    return Store(id=record.store_id, **fields)


def _raise_for(outcome: WriteOutcome, record: StoreRecord, issuer_id: str) -> None:
    if outcome.status == "beacon_taken":
        raise beacon_error(record, issuer_id, outcome)
    if outcome.status == "external_id_taken":
        raise ExternalIdTaken(
            f"another store of this program has external_id {record.external_id!r}",
            field="external_id",
        )


class StoreService:
    def __init__(self, store: StoreStore, clock: Clock, fences: FenceChecker) -> None:
        self._store = store
        self._clock = clock
        self._fences = fences

    # --- one store ------------------------------------------------------------------------

    async def create(self, issuer_id: str, data: CreateStore) -> Store:
        record = new_record(data, issuer_id, new_id("sto"), self._clock.now(), self._fences)
        outcome = (await self._store.write(issuer_id, [(record, None)]))[0]
        _raise_for(outcome, record, issuer_id)
        if outcome.status == "stale":  # a fresh random id cannot exist: only a bug gets here
            raise ConcurrentUpdate("the store could not be created; retry")
        return to_store(record)

    async def _loaded(self, issuer_id: str, store_id: str) -> Loaded:
        found = await self._store.load([store_id]) if looks_like_id(store_id, "sto") else {}
        current = found.get(store_id)
        # Another program's store answers exactly like a missing one.
        if current is None or current.record.issuer_id != issuer_id:
            raise StoreNotFound(f"no store {store_id!r} in this program", field="store_id")
        return current

    async def get(self, issuer_id: str, store_id: str) -> Store:
        return to_store((await self._loaded(issuer_id, store_id)).record)

    async def list_stores(self, issuer_id: str, limit: int, cursor: str | None) -> Page[Store]:
        after = listing_position(decode_cursor(cursor))
        rows = await self._store.page(issuer_id, after, limit)
        records = await self._store.get_many([store_id for store_id, _ in rows])
        next_cursor = None
        if len(rows) == limit:
            next_cursor = encode_cursor(position_after(rows[-1][1], rows[-1][0]))
        return Page(items=[to_store(r) for r in records], next_cursor=next_cursor)

    async def update(self, issuer_id: str, store_id: str, data: StoreFields) -> Store:
        for _ in range(WRITE_ATTEMPTS):
            current = await self._loaded(issuer_id, store_id)
            record = apply_fields(current.record, data, self._fences)
            record = msgspec.structs.replace(record, updated_at=self._clock.now())
            outcome = (await self._store.write(issuer_id, [(record, current)]))[0]
            if outcome.status != "stale":
                _raise_for(outcome, record, issuer_id)
                return to_store(record)
        raise ConcurrentUpdate("the store kept changing during this update; retry")

    async def delete(self, issuer_id: str, store_id: str) -> None:
        for _ in range(WRITE_ATTEMPTS):
            if await self._store.delete(await self._loaded(issuer_id, store_id)):
                return
        raise ConcurrentUpdate("the store kept changing during this delete; retry")

    async def owns(self, issuer_id: str, store_id: str) -> bool:
        """Whether ``store_id`` is a store of ``issuer_id`` (terminals attach to one)."""
        if not looks_like_id(store_id, "sto"):
            return False
        record = await self._store.get(store_id)
        return record is not None and record.issuer_id == issuer_id

    # --- bulk import ----------------------------------------------------------------------

    async def import_stores(
        self, issuer_id: str, body: bytes, content_type: str | None
    ) -> ImportResult:
        """Upsert stores by ``external_id``; each row is written whole or reported, alone."""
        rows = split_rows(body, content_type)
        return await StoreImport(self._store, self._fences, issuer_id, self._clock.now()).run(rows)

    # --- for the presence engine ----------------------------------------------------------

    async def get_record(self, store_id: str) -> StoreRecord | None:
        return await self._store.get(store_id) if looks_like_id(store_id, "sto") else None

    async def records(self, store_ids: list[str]) -> dict[str, StoreRecord]:
        return {r.store_id: r for r in await self._store.get_many(store_ids)}

    async def version(self) -> int:
        return await self._store.version()

    async def changes_since(self, change_id: str, count: int) -> list[StoreChange]:
        return await self._store.changes_since(change_id, count)
