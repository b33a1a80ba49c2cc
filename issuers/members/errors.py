from __future__ import annotations

from kernel.errors import InvalidInput, NotFound


class MemberNotFound(NotFound):
    code = "member_not_found"


class InvalidMemberNumber(InvalidInput):
    code = "invalid_member_number"


class EnrollmentCodeInvalid(NotFound):
    """Unknown, expired and already used codes look the same: nothing to attach."""

    code = "enrollment_code_invalid"


class MemberNumberUnencodable(InvalidInput):
    code = "barcode_unencodable"
