from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from issuers.stores.models import CreateStore, ImportResult, Store, StoreFields
from kernel.structs import Page
from wallet_api.dependencies import PARTNER, AnyRequest, PrincipalDep, ServicesDep, requires
from wallet_api.openapi_docs import AUTHED, problems

IMPORT_MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass
class ImportOperation(Operation):
    """Documents the import body, which the handler reads raw (rows are decoded one by one)."""

    def __post_init__(self) -> None:
        row = Reference(ref="#/components/schemas/CreateStore")
        self.request_body = RequestBody(
            required=True,
            description="A JSON array of stores, or NDJSON (one store per line). Rows need "
            "`external_id`.",
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.ARRAY, items=row)
                ),
                "application/x-ndjson": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
            },
        )


class PartnerStoresController(Controller):
    path = "/v1/partner/stores"
    tags = ["partner: stores"]
    dependencies = PARTNER
    before_request = requires("partner")
    security = [{"BearerAuth": []}]

    @post(
        "/",
        operation_id="createStore",
        summary="Add a store",
        status_code=HTTP_201_CREATED,
        opt={"idempotent": True},
        responses=problems(*AUTHED, 409, 413),
    )
    async def create_store(
        self, services: ServicesDep, partner: PrincipalDep, data: JSONBody[CreateStore]
    ) -> Store:
        """A store needs a name, an IANA timezone and one fence: radius_m or a polygon."""
        return await services.stores.create(partner.subject_id, data)

    @get(
        "/",
        operation_id="listStores",
        summary="The program's stores",
        responses=problems(*AUTHED),
    )
    async def list_stores(
        self,
        services: ServicesDep,
        partner: PrincipalDep,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Page[Store]:
        """Stores in creation order; pass next_cursor back for the next page."""
        return await services.stores.list_stores(partner.subject_id, limit, cursor)

    @post(
        "/import",
        operation_id="importStores",
        summary="Create or update up to 100,000 stores by external_id",
        status_code=HTTP_200_OK,
        request_max_body_size=IMPORT_MAX_BODY_BYTES,
        operation_class=ImportOperation,
        responses=problems(*AUTHED, 413),
    )
    async def import_stores(
        self, request: AnyRequest, services: ServicesDep, partner: PrincipalDep
    ) -> ImportResult:
        """Each row is written whole or reported in errors (line, code); bad rows block none."""
        body = await request.body()
        content_type = request.headers.get("content-type")
        return await services.stores.import_stores(partner.subject_id, body, content_type)

    @get(
        "/{store_id:str}",
        operation_id="getStore",
        summary="One store",
        responses=problems(*AUTHED, 404),
    )
    async def get_store(
        self, services: ServicesDep, partner: PrincipalDep, store_id: FromPath[str]
    ) -> Store:
        """The store with its fence, hours and beacons."""
        return await services.stores.get(partner.subject_id, store_id)

    @patch(
        "/{store_id:str}",
        operation_id="updateStore",
        summary="Change a store",
        responses=problems(*AUTHED, 404, 409),
    )
    async def update_store(
        self,
        services: ServicesDep,
        partner: PrincipalDep,
        store_id: FromPath[str],
        data: JSONBody[StoreFields],
    ) -> Store:
        """Fields left out stay; setting radius_m replaces a polygon and vice versa."""
        return await services.stores.update(partner.subject_id, store_id, data)

    @delete(
        "/{store_id:str}",
        operation_id="deleteStore",
        summary="Remove a store",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(*AUTHED, 404, 409),
    )
    async def delete_store(
        self, services: ServicesDep, partner: PrincipalDep, store_id: FromPath[str]
    ) -> None:
        """The store, its geo index entry and its beacon claims go in one write."""
        await services.stores.delete(partner.subject_id, store_id)
