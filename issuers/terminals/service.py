from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from issuers.stores.errors import StoreNotFound
from issuers.stores.store import created_score, listing_position, position_after
from issuers.terminals.errors import TerminalNotFound
from issuers.terminals.models import (
    CreateTerminal,
    NewTerminal,
    Terminal,
    TerminalIdentity,
    TerminalRecord,
)
from issuers.terminals.store import TerminalStore
from kernel import tokens
from kernel.clock import Clock
from kernel.ids import looks_like_id, new_id
from kernel.pagination import decode_cursor, encode_cursor
from kernel.structs import Page


class StoreDirectory(Protocol):
    async def owns(self, issuer_id: str, store_id: str) -> bool:
        """Whether the store exists and belongs to the program."""
        ...


def to_terminal(record: TerminalRecord) -> Terminal:
    return Terminal(
        id=record.terminal_id,
        name=record.name,
        created_at=datetime.fromtimestamp(record.created_at, UTC),
        store_id=record.store_id,
    )


class TerminalService:
    def __init__(self, store: TerminalStore, clock: Clock, stores: StoreDirectory) -> None:
        self._store = store
        self._clock = clock
        self._stores = stores

    async def create(self, issuer_id: str, data: CreateTerminal) -> NewTerminal:
        if data.store_id is not None and not await self._stores.owns(issuer_id, data.store_id):
            raise StoreNotFound(f"no store {data.store_id!r} in this program", field="store_id")
        token, digest = tokens.mint(tokens.TERMINAL_PREFIX)
        record = TerminalRecord(
            terminal_id=new_id("trm"),
            issuer_id=issuer_id,
            name=data.name,
            digest=digest,
            created_at=self._clock.now(),
            store_id=data.store_id,
        )
        await self._store.create(record)
        terminal = to_terminal(record)
        return NewTerminal(
            id=terminal.id,
            name=terminal.name,
            created_at=terminal.created_at,
            store_id=terminal.store_id,
            key=token,
        )

    async def list_terminals(
        self, issuer_id: str, limit: int, cursor: str | None
    ) -> Page[Terminal]:
        after = listing_position(decode_cursor(cursor))
        records = await self._store.page(issuer_id, after, limit)
        next_cursor = None
        if len(records) == limit:
            last = records[-1]
            position = position_after(created_score(last.created_at), last.terminal_id)
            next_cursor = encode_cursor(position)
        return Page(items=[to_terminal(r) for r in records], next_cursor=next_cursor)

    async def _record(self, issuer_id: str, terminal_id: str) -> TerminalRecord:
        found = None
        if looks_like_id(terminal_id, "trm"):
            found = await self._store.get(issuer_id, terminal_id)
        if found is None:
            raise TerminalNotFound(f"no terminal {terminal_id!r} in this program", field="id")
        return found

    async def revoke(self, issuer_id: str, terminal_id: str) -> None:
        """The terminal's key stops resolving with this write."""
        await self._store.remove(await self._record(issuer_id, terminal_id))

    async def resolve(self, token_digest: str) -> TerminalRecord | None:
        return await self._store.for_digest(token_digest)

    async def identity(self, issuer_id: str, terminal_id: str) -> TerminalIdentity:
        record = await self._record(issuer_id, terminal_id)
        return TerminalIdentity(
            terminal_id=record.terminal_id,
            issuer_id=record.issuer_id,
            name=record.name,
            store_id=record.store_id,
        )
