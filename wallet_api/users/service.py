from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from geofence.models import CredentialCheck
from kernel import tokens
from kernel.clock import Clock
from kernel.ids import new_id
from wallet_api.users.errors import UnknownTimeZone, UserNotFound
from wallet_api.users.models import CreatedUser, CreateUser, UpdateUser, User, UserRecord
from wallet_api.users.store import UserStore


def check_timezone(name: str | None) -> None:
    if name is None:
        return
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimeZone(f"{name!r} is not an IANA time zone", field="timezone") from None


def to_user(record: UserRecord) -> User:
    return User(
        user_id=record.user_id,
        created_at=datetime.fromtimestamp(record.created_at, UTC),
        locale=record.locale,
        timezone=record.timezone,
    )


class UserService:
    """The account itself; also the first registered personal-data part."""

    name = "account"

    def __init__(self, store: UserStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def create(self, data: CreateUser) -> CreatedUser:
        check_timezone(data.timezone)
        token, token_digest = tokens.mint(tokens.USER_PREFIX)
        record = UserRecord(
            user_id=new_id("usr"),
            created_at=self._clock.now(),
            token_digest=token_digest,
            locale=data.locale,
            timezone=data.timezone,
        )
        await self._store.create(record)
        return CreatedUser(user_id=record.user_id, token=token)

    async def user_for_token(self, token_digest: str) -> str | None:
        return await self._store.user_id_for_token(token_digest)

    def credential_check(self, user_id: str, token_digest: str) -> CredentialCheck:
        """What a script in the user's slot checks to know this token is still the user's
        (erasing the account deletes the record)."""
        return CredentialCheck(
            key=self._store.record_key(user_id), field="token_digest", value=token_digest
        )

    async def get(self, user_id: str) -> User:
        return to_user(await self._record(user_id))

    async def update(self, user_id: str, data: UpdateUser) -> User:
        if isinstance(data.timezone, str):
            check_timezone(data.timezone)
        record = await self._record(user_id)
        changes = {
            name: value
            for name in data.__struct_fields__
            if (value := getattr(data, name)) is not msgspec.UNSET
        }
        record = msgspec.structs.replace(record, **changes)
        await self._store.put(record)
        return to_user(record)

    async def export(self, user_id: str) -> object:
        return await self.get(user_id)

    async def erase(self, user_id: str) -> None:
        record = await self._store.get(user_id)
        if record is not None:
            await self._store.delete(record)

    async def _record(self, user_id: str) -> UserRecord:
        record = await self._store.get(user_id)
        if record is None:
            raise UserNotFound("this user no longer exists")
        return record
