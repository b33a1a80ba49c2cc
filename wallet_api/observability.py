"""Request ids, access logs and Prometheus metrics for every request, matched or not.

It wraps the whole Litestar handler (outside routing), so unknown routes and framework
errors are counted and logged too.  Labels and log fields use the route *template*
(``/v1/partner/members/{member_number}``), never the raw path.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Histogram

log = logging.getLogger("wallet.access")

REQUESTS = Counter(
    "wallet_http_requests_total", "HTTP requests by route template", ["method", "route", "status"]
)
LATENCY = Histogram(
    "wallet_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

_SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")
_TYPED_PARAM = re.compile(r"\{(\w+):\w+\}")


def route_template(scope: Scope) -> str:
    template = scope.get("path_template")
    if not isinstance(template, str) or not template:
        return "<unmatched>"
    return _TYPED_PARAM.sub(r"{\1}", template)


def _incoming_request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _SAFE_REQUEST_ID.match(value):
            return value.decode()
    return uuid.uuid4().hex


class Observability:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            self._record(scope, request_id, status, time.perf_counter() - started)

    @staticmethod
    def _record(scope: Scope, request_id: str, status: int, elapsed: float) -> None:
        route = route_template(scope)
        method = str(scope.get("method", ""))
        REQUESTS.labels(method, route, str(status)).inc()
        LATENCY.labels(method, route).observe(elapsed)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
