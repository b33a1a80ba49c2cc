"""Presence: the user's location consent, the phone's evidence, region sync and visits.

Without location consent every route here but the consent itself answers 403
``consent_required`` and stores nothing.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post, put
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from geofence.models import (
    BeaconReport,
    Consent,
    ConsentUpdate,
    LocationReport,
    Platform,
    PresenceResult,
    RegionEvent,
    RegionSet,
    Visit,
)
from kernel.structs import Page
from wallet_api.body import StructBody
from wallet_api.dependencies import USER, PrincipalDep, ServicesDep, requires
from wallet_api.openapi_docs import AUTHED, problems

# 100 fixes or sightings are about 15 KB; a bigger body is not a phone's.
EVIDENCE_MAX_BODY_BYTES = 64 * 1024
LOCATION_PATH = "/v1/me/location"


class ConsentController(Controller):
    path = "/v1/me/consent"
    tags = ["presence"]
    dependencies = USER
    before_request = requires("user")
    security = [{"BearerAuth": []}]

    @get(
        "/",
        operation_id="getConsent",
        summary="The user's presence consent",
        responses=problems(*AUTHED),
    )
    async def get_consent(self, services: ServicesDep, user: PrincipalDep) -> Consent:
        """Both flags are false until the user grants them."""
        return await services.presence.consent(user.subject_id)

    @put(
        "/",
        operation_id="updateConsent",
        summary="Grant or withdraw presence consent",
        responses=problems(*AUTHED),
    )
    async def update_consent(
        self, services: ServicesDep, user: PrincipalDep, data: JSONBody[ConsentUpdate]
    ) -> Consent:
        """location: evaluate presence at all; discovery: also for programs without a card.
        Withdrawing location erases the last fix and the visits."""
        return await services.presence.update_consent(user.subject_id, data)


class PresenceController(Controller):
    path = "/v1/me"
    tags = ["presence"]
    dependencies = USER
    before_request = requires("user")
    security = [{"BearerAuth": []}]

    @post(
        LOCATION_PATH.removeprefix("/v1/me"),
        operation_id="reportLocation",
        summary="Report one location fix or a batch",
        status_code=HTTP_200_OK,
        request_max_body_size=EVIDENCE_MAX_BODY_BYTES,
        dto=StructBody[LocationReport],
        return_dto=None,
        responses=problems(*AUTHED, 409, 413),
    )
    async def report_location(
        self, services: ServicesDep, user: PrincipalDep, data: JSONBody[LocationReport]
    ) -> PresenceResult:
        """The enter/exit/dwell transitions the fixes caused; stale, too old, future and
        implausibly fast fixes are counted in `ignored`. Sending a fix twice is harmless."""
        # Most reports never reach this handler: ``wallet_api/location_fast_path.py``
        # answers those of tokens this worker knows, and passes the rest here.
        return await services.presence.report_location(user.subject_id, data)

    @post(
        "/beacons",
        operation_id="reportBeacons",
        summary="Report beacon sightings",
        status_code=HTTP_200_OK,
        request_max_body_size=EVIDENCE_MAX_BODY_BYTES,
        responses=problems(*AUTHED, 409, 413),
    )
    async def report_beacons(
        self, services: ServicesDep, user: PrincipalDep, data: JSONBody[BeaconReport]
    ) -> PresenceResult:
        """Immediate or near sightings enter the store and its zone; far ones leave the zone."""
        return await services.presence.report_beacons(user.subject_id, data)

    @post(
        "/regions/events",
        operation_id="reportRegionEvent",
        summary="Report an OS region enter or exit",
        status_code=HTTP_200_OK,
        responses=problems(*AUTHED, 409),
    )
    async def report_region_event(
        self, services: ServicesDep, user: PrincipalDep, data: JSONBody[RegionEvent]
    ) -> PresenceResult:
        """Trusted as evidence for store regions, and de-duplicated; beacon regions change
        nothing (range the beacons and post sightings)."""
        return await services.presence.report_region_event(user.subject_id, data)

    @get(
        "/regions",
        operation_id="syncRegions",
        summary="The regions the phone should monitor",
        responses=problems(*AUTHED),
    )
    async def sync_regions(
        self,
        services: ServicesDep,
        user: PrincipalDep,
        lat: Annotated[float, QueryParameter(ge=-90, le=90)],
        lon: Annotated[float, QueryParameter(ge=-180, le=180)],
        platform: Annotated[Platform, QueryParameter(description="ios: 19 regions, android: 99")],
    ) -> RegionSet:
        """Nearest first, plus the refresh bubble: call again when the phone leaves it."""
        return await services.presence.regions(user.subject_id, lat, lon, platform)

    @get(
        "/visits",
        operation_id="listVisits",
        summary="The user's store visits (kept 90 days)",
        responses=problems(*AUTHED),
    )
    async def list_visits(
        self,
        services: ServicesDep,
        user: PrincipalDep,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> Page[Visit]:
        """Open visits first, then ended ones, newest first."""
        return await services.presence.visits(user.subject_id, limit, cursor)
