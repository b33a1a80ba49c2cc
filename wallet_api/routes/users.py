from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from wallet_api.dependencies import (
    SERVICES,
    USER,
    PrincipalDep,
    ServicesDep,
    rate_limited,
    requires,
)
from wallet_api.openapi_docs import AUTHED, problems
from wallet_api.users.models import CreatedUser, CreateUser, UpdateUser, User

_create_limit = rate_limited("users_create", lambda s: s.settings.users_create_per_minute)


class SignupController(Controller):
    path = "/v1/users"
    tags = ["users"]
    dependencies = SERVICES

    @post(
        "/",
        operation_id="createUser",
        summary="Create an anonymous wallet user",
        status_code=HTTP_201_CREATED,
        guards=[_create_limit],
        opt={"idempotent": True},
        responses=problems(400, 409, 413, 422, 429, 503),
    )
    async def create_user(
        self, services: ServicesDep, data: JSONBody[CreateUser | None] = None
    ) -> CreatedUser:
        """Returns the user id and a bearer token, shown only in this response."""
        return await services.users.create(data or CreateUser())


class MeController(Controller):
    path = "/v1/me"
    tags = ["users"]
    dependencies = USER
    before_request = requires("user")
    security = [{"BearerAuth": []}]

    @get("/", operation_id="getMe", summary="The calling user", responses=problems(*AUTHED, 404))
    async def get_me(self, services: ServicesDep, user: PrincipalDep) -> User:
        """The user's profile: id, creation time, locale and time zone."""
        return await services.users.get(user.subject_id)

    @patch(
        "/",
        operation_id="updateMe",
        summary="Change locale or time zone",
        responses=problems(*AUTHED, 404),
    )
    async def update_me(
        self, services: ServicesDep, user: PrincipalDep, data: JSONBody[UpdateUser]
    ) -> User:
        """Fields left out stay; the time zone must be an IANA name (used for quiet hours)."""
        return await services.users.update(user.subject_id, data)

    @delete(
        "/",
        operation_id="deleteMe",
        summary="Erase the user and everything of theirs",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(*AUTHED),
    )
    async def delete_me(self, services: ServicesDep, user: PrincipalDep) -> None:
        """Every registered personal-data part is erased; the token stops working at once."""
        await services.personal_data.erase(user.subject_id)

    @get(
        "/export",
        operation_id="exportMe",
        summary="Everything stored about the user",
        responses=problems(*AUTHED),
    )
    async def export_me(self, services: ServicesDep, user: PrincipalDep) -> dict[str, object]:
        """A JSON object with one member per registered personal-data part."""
        return await services.personal_data.export(user.subject_id)
