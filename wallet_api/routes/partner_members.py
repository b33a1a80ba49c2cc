from __future__ import annotations

from litestar import Controller, Response, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from issuers.members.models import CreateEnrollment, Enrollment, Member, MemberFields
from wallet_api.dependencies import PARTNER, PrincipalDep, ServicesDep, requires
from wallet_api.openapi_docs import AUTHED, problems

# The member number travels in the path; logs and metrics name only the route template.


class PartnerMembersController(Controller):
    path = "/v1/partner/members"
    tags = ["partner: members"]
    dependencies = PARTNER
    before_request = requires("partner")
    security = [{"BearerAuth": []}]

    @put(
        "/{member_number:str}",
        operation_id="upsertMember",
        summary="Create or update what the CRM knows about a member",
        status_code=HTTP_200_OK,
        responses={
            HTTP_201_CREATED: ResponseSpec(data_container=Member, description="Member created"),
            **problems(*AUTHED, 413),
        },
    )
    async def upsert_member(
        self,
        services: ServicesDep,
        partner: PrincipalDep,
        member_number: FromPath[str],
        data: JSONBody[MemberFields],
    ) -> Response[Member]:
        """200 with the member, 201 when it is new; fields left out keep their stored value."""
        upserted = await services.members.upsert(partner.subject_id, member_number, data)
        status = HTTP_201_CREATED if upserted.created else HTTP_200_OK
        return Response(upserted.member, status_code=status)

    @get(
        "/{member_number:str}",
        operation_id="getMember",
        summary="What the program shares about a member",
        responses=problems(*AUTHED, 404),
    )
    async def get_member(
        self, services: ServicesDep, partner: PrincipalDep, member_number: FromPath[str]
    ) -> Member:
        """Tier, points, tags and attributes as last upserted; 404 member_not_found otherwise."""
        return await services.members.get(partner.subject_id, member_number)


class PartnerEnrollmentsController(Controller):
    path = "/v1/partner/enrollments"
    tags = ["partner: members"]
    dependencies = PARTNER
    before_request = requires("partner")
    security = [{"BearerAuth": []}]

    @post(
        "/",
        operation_id="createEnrollment",
        summary="A one-time code that attaches a member's card to a wallet",
        status_code=HTTP_201_CREATED,
        opt={"idempotent": True},
        responses=problems(*AUTHED, 413),
    )
    async def create_enrollment(
        self, services: ServicesDep, partner: PrincipalDep, data: JSONBody[CreateEnrollment]
    ) -> Enrollment:
        """The code works once, until expires_at (ttl_s, 24 h by default); share the deep link."""
        return await services.members.create_enrollment(partner.subject_id, data)
