"""``StructBody[Model]``: a request body decoded by msgspec straight into its struct.

Litestar's default JSON path decodes a body into dicts and lists, then converts those into
the struct while it validates the handler's signature: two passes and the objects between
them.  A DTO is Litestar's extension point for how a body becomes the ``data`` argument;
this one is a single ``msgspec`` decode (the routes that use it are the ones measured
against the one-round-trip baseline, docs/benchmarks.md).  Nothing else changes: the
OpenAPI schema is the struct's own, conversions are as lax as Litestar's (``strict=False``),
and errors reach the same handlers (``errors.py``) as the same problem+json.

``read_body``: a whole small body straight from the ASGI messages, for the layers that read
one before Litestar does (idempotency, the location fast path).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Generic, TypeVar

import msgspec
from litestar._openapi.schema_generation import SchemaCreator
from litestar.dto import AbstractDTO, DTOFieldDefinition
from litestar.dto._backend import DTOBackend
from litestar.exceptions import (
    ClientException,
    InternalServerException,
    SerializationException,
    ValidationException,
)
from litestar.openapi.spec import Reference, Schema
from litestar.types import Receive
from litestar.typing import FieldDefinition

T = TypeVar("T", bound=msgspec.Struct)

_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def struct_decoder(model: type[T]) -> msgspec.json.Decoder[T]:
    """The one JSON decoder of ``model`` bodies, built once: as lax as Litestar's own
    conversions (``strict=False``)."""
    decoder = _DECODERS.get(model)
    if decoder is None:
        decoder = _DECODERS[model] = msgspec.json.Decoder(model, strict=False)
    return decoder


class StructBody(AbstractDTO[T], Generic[T]):
    """Use as ``@post(..., dto=StructBody[Model], return_dto=None)`` with ``data: Model``."""

    @classmethod
    def create_for_field_definition(
        cls,
        field_definition: FieldDefinition,
        handler_id: str,
        backend_cls: type[DTOBackend] | None = None,
    ) -> None:
        """No transfer model to build: decoding needs the model type alone."""
        struct_decoder(cls.model_type)

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
            decoded: T = struct_decoder(self.model_type).decode(value)
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
