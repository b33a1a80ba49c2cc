from __future__ import annotations

from datetime import datetime

import msgspec

from kernel.structs import ApiModel, IanaTimeZone, Locale, Record, RequestModel


class UserRecord(Record):
    user_id: str
    created_at: float
    token_digest: str
    locale: str | None = None
    timezone: str | None = None


class CreateUser(RequestModel):
    locale: Locale | None = None
    timezone: IanaTimeZone | None = None


class UpdateUser(RequestModel):
    """Fields left out stay as they are; ``null`` clears a field."""

    locale: Locale | msgspec.UnsetType | None = msgspec.UNSET
    timezone: IanaTimeZone | msgspec.UnsetType | None = msgspec.UNSET


class User(ApiModel):
    user_id: str
    created_at: datetime
    locale: str | None = None
    timezone: str | None = None


class CreatedUser(ApiModel):
    user_id: str
    token: str
