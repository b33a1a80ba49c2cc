from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from kernel.structs import ApiModel, Record, RequestModel

Tier = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Points = Annotated[int, msgspec.Meta(ge=0, le=10**12)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
AttributeName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
AttributeText = Annotated[str, msgspec.Meta(max_length=256)]
AttributeValue = AttributeText | int | float | bool
Tags = Annotated[list[Tag], msgspec.Meta(max_length=50)]
Attributes = Annotated[dict[AttributeName, AttributeValue], msgspec.Meta(max_length=50)]
EnrollmentTtl = Annotated[
    int, msgspec.Meta(ge=60, le=7 * 24 * 3600, description="Seconds the code stays valid")
]
MemberNumber = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class MemberFields(RequestModel, kw_only=True):
    """What the CRM knows. Fields left out keep their stored value; ``tier: null`` clears the
    tier; ``tags`` and ``attributes`` are replaced whole when given."""

    tier: Tier | msgspec.UnsetType | None = msgspec.UNSET
    points: Points | msgspec.UnsetType = msgspec.UNSET
    tags: Tags | msgspec.UnsetType = msgspec.UNSET
    attributes: Attributes | msgspec.UnsetType = msgspec.UNSET


class MemberRecord(Record):
    """A member, stored under the blind index of its number; the number itself is sealed."""

    issuer_id: str
    number_index: str
    number_sealed: bytes
    created_at: float
    updated_at: float
    tier: str | None = None
    points: int | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    attributes: dict[str, AttributeValue] = msgspec.field(default_factory=dict)


class MemberData(ApiModel, kw_only=True):
    """The member data a partner shares with the wallet holder of an enrolled card."""

    tier: str | None
    points: int | None
    tags: list[str]
    attributes: dict[str, AttributeValue]


class Member(MemberData, kw_only=True):
    member_number: str
    created_at: datetime
    updated_at: datetime


class UpsertedMember(msgspec.Struct, frozen=True):
    member: Member
    created: bool


class CreateEnrollment(RequestModel, kw_only=True):
    member_number: MemberNumber
    ttl_s: EnrollmentTtl = 24 * 3600


class EnrollmentRecord(Record):
    issuer_id: str
    code_index: str
    number_sealed: bytes
    created_at: float
    expires_at: float


class Enrollment(ApiModel, kw_only=True):
    code: str
    deep_link: str
    expires_at: datetime


class ClaimedEnrollment(msgspec.Struct, frozen=True):
    """A consumed code: whose card it attaches, and until when it would have been valid."""

    issuer_id: str
    member_number: str
    expires_at: float
