from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from issuers.programs.code_policy import policy_problem
from issuers.programs.errors import (
    ApiKeyNotFound,
    IssuerNotFound,
    LastApiKey,
    PolicyIncompatibleWithFormat,
)
from issuers.programs.models import (
    ApiKey,
    ApiKeyRecord,
    CatalogueEntry,
    CreateApiKey,
    CreatedIssuer,
    CreateIssuer,
    Issuer,
    IssuerRecord,
    Match,
    NewApiKey,
    ProgramFields,
    Recognition,
)
from issuers.programs.recognition import best_score, check_pattern, normalize_number
from issuers.programs.store import ProgramStore
from kernel import tokens
from kernel.clock import Clock
from kernel.ids import looks_like_id, new_id
from kernel.pagination import InvalidCursor, decode_cursor, encode_cursor
from kernel.structs import Page


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def to_issuer(record: IssuerRecord) -> Issuer:
    return Issuer(
        issuer_id=record.issuer_id,
        name=record.name,
        branding=record.branding,
        barcode_format=record.barcode_format,
        number_patterns=record.number_patterns,
        code_policy=record.code_policy,
        created_at=_at(record.created_at),
        updated_at=_at(record.updated_at),
    )


def to_entry(record: IssuerRecord) -> CatalogueEntry:
    return CatalogueEntry(
        issuer_id=record.issuer_id,
        name=record.name,
        branding=record.branding,
        barcode_format=record.barcode_format,
    )


def _score_cursor(position: str | None) -> float:
    try:
        return float(position or "-inf")
    except ValueError:
        raise InvalidCursor("cursor is not one this API returned", field="cursor") from None


def _changes(fields: ProgramFields) -> dict[str, object]:
    changes = {
        name: value
        for name in fields.__struct_fields__
        if (value := getattr(fields, name)) is not msgspec.UNSET
    }
    for i, pattern in enumerate(fields.number_patterns or []):
        check_pattern(pattern, f"number_patterns[{i}].regex")
    return changes


def _check_policy(record: IssuerRecord) -> None:
    """Format and policy are judged together: a PATCH of either may break the pair."""
    problem = policy_problem(record.barcode_format, record.code_policy)
    if problem is not None:
        raise PolicyIncompatibleWithFormat(problem, field="code_policy.mode")


class ProgramService:
    def __init__(self, store: ProgramStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def create(self, data: CreateIssuer) -> CreatedIssuer:
        changes = _changes(data)
        now = self._clock.now()
        record = IssuerRecord(
            issuer_id=new_id("iss"), name=data.name, created_at=now, updated_at=now
        )
        record = msgspec.structs.replace(record, **changes)
        _check_policy(record)
        key, token = self._new_key(record.issuer_id, "initial")
        await self._store.create(record, key)
        return CreatedIssuer(issuer=to_issuer(record), api_key=token)

    async def record(self, issuer_id: str) -> IssuerRecord:
        record = await self._store.get(issuer_id) if looks_like_id(issuer_id, "iss") else None
        if record is None:
            raise IssuerNotFound(f"no program {issuer_id!r}", field="issuer_id")
        return record

    async def records(self, issuer_ids: list[str]) -> dict[str, IssuerRecord]:
        return {r.issuer_id: r for r in await self._store.get_many(issuer_ids)}

    async def get(self, issuer_id: str) -> Issuer:
        return to_issuer(await self.record(issuer_id))

    async def update(self, issuer_id: str, data: ProgramFields) -> Issuer:
        changes = _changes(data)
        current = await self.record(issuer_id)
        record = msgspec.structs.replace(current, **changes, updated_at=self._clock.now())
        _check_policy(record)
        await self._store.put(record, current.name)
        return to_issuer(record)

    def _new_key(self, issuer_id: str, label: str | None) -> tuple[ApiKeyRecord, str]:
        token, digest = tokens.mint(tokens.PARTNER_PREFIX)
        record = ApiKeyRecord(
            key_id=new_id("key"),
            issuer_id=issuer_id,
            digest=digest,
            created_at=self._clock.now(),
            label=label,
        )
        return record, token

    async def create_key(self, issuer_id: str, data: CreateApiKey) -> NewApiKey:
        record, token = self._new_key(issuer_id, data.label)
        await self._store.add_key(record)
        return NewApiKey(
            id=record.key_id, key=token, created_at=_at(record.created_at), label=data.label
        )

    async def list_keys(self, issuer_id: str) -> list[ApiKey]:
        return [
            ApiKey(id=k.key_id, created_at=_at(k.created_at), label=k.label)
            for k in await self._store.list_keys(issuer_id)
        ]

    async def revoke_key(self, issuer_id: str, key_id: str) -> None:
        keys = await self._store.list_keys(issuer_id)
        match = next((k for k in keys if k.key_id == key_id), None)
        if match is None:
            raise ApiKeyNotFound(f"no API key {key_id!r} in this program", field="id")
        if len(keys) == 1:
            raise LastApiKey("create a new key before revoking the last one", field="id")
        await self._store.remove_key(match)

    async def issuer_for_key(self, token_digest: str) -> ApiKeyRecord | None:
        return await self._store.key_for_digest(token_digest)

    async def catalogue(
        self, q: str | None, limit: int, cursor: str | None
    ) -> Page[CatalogueEntry]:
        if q and q.strip():
            words = sorted(q.casefold().split(), key=len, reverse=True)
            ids = await self._store.search(words[0], limit=200)
            records = await self._store.get_many(ids)
            wanted = [r for r in records if all(w in r.name.casefold() for w in words)]
            return Page(items=[to_entry(r) for r in wanted[:limit]])
        after = _score_cursor(decode_cursor(cursor))
        rows = await self._store.page(after, limit)
        records = await self._store.get_many([issuer_id for issuer_id, _ in rows])
        next_cursor = encode_cursor(repr(rows[-1][1])) if len(rows) == limit else None
        return Page(items=[to_entry(r) for r in records], next_cursor=next_cursor)

    async def recognize(self, number: str) -> Recognition:
        normalized = normalize_number(number)
        scored = []
        for issuer_id, patterns in (await self._store.all_rules()).items():
            best = best_score(normalized, patterns)
            if best is not None:
                scored.append((best[0], best[1], issuer_id))
        scored.sort(key=lambda s: (-s[0], s[2]))
        records = await self.records([issuer_id for _, _, issuer_id in scored[:10]])
        matches = [
            Match(**msgspec.structs.asdict(to_entry(records[i])), score=s, check_digit_verified=v)
            for s, v, i in scored[:10]
            if i in records
        ]
        return Recognition(matches=matches)
