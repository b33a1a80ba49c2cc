from __future__ import annotations

from kernel.errors import NotFound


class TerminalNotFound(NotFound):
    code = "terminal_not_found"
