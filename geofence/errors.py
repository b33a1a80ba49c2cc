"""Errors of the presence engine (no HTTP here: wallet_api maps the base classes)."""

from __future__ import annotations

from kernel.errors import Conflict, Forbidden, InvalidInput, Unauthenticated, Unavailable


class ConsentRequired(Forbidden):
    """The user has not granted location consent: nothing is evaluated or stored."""

    code = "consent_required"
    title = "Location consent required"


class InvalidLocationReport(InvalidInput):
    """Neither exactly one fix nor a ``fixes`` batch."""

    code = "invalid_location_report"


class PresenceBusy(Conflict):
    """Too many concurrent updates for one user; the client may retry."""

    code = "presence_busy"


class PresenceIndexLoading(Unavailable):
    """This worker has not loaded the stores yet (Redis unreachable at start); retry."""

    code = "presence_index_loading"


class CredentialRevoked(Unauthenticated):
    """The credential the caller vouched for no longer holds (checked with the write)."""

    code = "invalid_token"
