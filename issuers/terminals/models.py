from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from kernel.structs import ApiModel, Record, RequestModel

TerminalName = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]


class CreateTerminal(RequestModel, kw_only=True):
    name: TerminalName
    store_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class TerminalRecord(Record):
    terminal_id: str
    issuer_id: str
    name: str
    digest: str
    created_at: float
    store_id: str | None = None


class Terminal(ApiModel, kw_only=True):
    id: str
    name: str
    created_at: datetime
    store_id: str | None = None


class NewTerminal(Terminal, kw_only=True):
    """The terminal and its key; the key is shown only in this response."""

    key: str


class TerminalIdentity(ApiModel, kw_only=True):
    """What a terminal's own key says about it."""

    terminal_id: str
    issuer_id: str
    name: str
    store_id: str | None = None
