"""``StructBody[Model]``: a request body decoded by msgspec straight into its struct.

Litestar's default JSON path decodes a body into dicts and lists, then converts those into
the struct while it validates the handler's signature: two passes and the objects between
them.  A DTO is Litestar's extension point for how a body becomes the ``data`` argument;
this one is a single ``msgspec`` decode (the routes that use it are the ones measured
against the one-round-trip baseline, docs/benchmarks.md).  Nothing else changes: the
OpenAPI schema is the struct's own, conversions are as lax as Litestar's (``strict=False``),
and errors reach the same handlers (``errors.py``) as the same problem+json.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterable
from typing import Any, ClassVar, Generic, TypeVar

import msgspec
from litestar import Request
from litestar._openapi.schema_generation import SchemaCreator
from litestar.dto import AbstractDTO, DTOFieldDefinition
from litestar.dto._backend import DTOBackend
from litestar.exceptions import (
    ClientException,
    InternalServerException,
    SerializationException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.spec import Reference, Schema
from litestar.types import Empty, Receive
from litestar.typing import FieldDefinition

T = TypeVar("T", bound=msgspec.Struct)


class StructBody(AbstractDTO[T], Generic[T]):
    """Use as ``@post(..., dto=StructBody[Model], return_dto=None)`` with ``data: Model``."""

    _decoders: ClassVar[dict[type[Any], msgspec.json.Decoder[Any]]] = {}

    @classmethod
    def create_for_field_definition(
        cls,
        field_definition: FieldDefinition,
        handler_id: str,
        backend_cls: type[DTOBackend] | None = None,
    ) -> None:
        """No transfer model to build: decoding needs the model type alone."""
        if cls.model_type not in cls._decoders:
            cls._decoders[cls.model_type] = msgspec.json.Decoder(cls.model_type, strict=False)

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        annotation = FieldDefinition.from_annotation(
            cls.model_type, kwarg_definition=field_definition.kwarg_definition
        )
        return schema_creator.for_field_definition(annotation)

    @classmethod
    def generate_field_definitions(
        cls, model_type: type[Any]
    ) -> Generator[DTOFieldDefinition, None, None]:
        yield from ()

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:
        return False

    def decode_bytes(self, value: bytes) -> T:
        try:
            decoded: T = self._decoders[self.model_type].decode(value)
        except msgspec.ValidationError as exc:
            # The shape Litestar gives a failed signature field, so errors.py reads it alike.
            raise ValidationException(
                detail="Validation failed", extra=[{"key": "data", "message": str(exc)}]
            ) from exc
        except msgspec.DecodeError as exc:
            raise ClientException("Malformed JSON") from SerializationException(str(exc))
        return decoded

    def decode_builtins(self, value: dict[str, Any]) -> T:
        return msgspec.convert(value, self.model_type, strict=False)


class SmallBodyRequest(Request[Any, Any, Any]):
    """A request whose ``body()`` reads the ASGI messages itself: for the phone's evidence
    routes, whose bodies are small and arrive in one message.

    Litestar's own reads through an async generator and parses every header into a
    multidict to find ``Content-Length``; on the location route that was ~4 % of the
    request's instructions (docs/benchmarks.md).  The rules are the same: a
    ``Content-Length`` or a body over the route's limit is 413, a malformed
    ``Content-Length`` is 400."""

    async def body(self) -> bytes:
        if self._body is not Empty:
            return self._body
        if (cached := self._connection_state.body) is not Empty:
            self._body = cached
            return cached
        limit = self.route_handler.resolve_request_max_body_size() or math.inf
        announced = _content_length(self.scope["headers"])
        if announced is not None and announced > limit:
            raise RequestEntityTooLarge
        body = await read_body(self.receive, limit)
        if body is None:
            raise RequestEntityTooLarge
        self.is_connected = False
        self._body = self._connection_state.body = body
        return body


async def read_body(receive: Receive, limit: float) -> bytes | None:
    """The whole body from the ASGI messages, or None once it grows past ``limit``; a
    client that leaves midway is an error, as in Litestar's own read."""
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InternalServerException("client disconnected prematurely")
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                raise ClientException(
                    f"Invalid content-length: {value.decode('latin-1')!r}"
                ) from None
    return None
