from __future__ import annotations

from litestar import Controller, Response, get
from litestar.status_codes import HTTP_200_OK
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from redis.exceptions import RedisError

from kernel.errors import Unavailable
from kernel.structs import ApiModel
from wallet_api.dependencies import SERVICES, ServicesDep
from wallet_api.openapi_docs import problems


class Health(ApiModel):
    status: str


class HealthController(Controller):
    tags = ["operations"]
    include_in_schema = True

    @get("/healthz", operation_id="healthz", summary="Process is up", status_code=HTTP_200_OK)
    async def healthz(self) -> Health:
        """Answers as long as the process serves HTTP; touches nothing else."""
        return Health(status="ok")

    @get(
        "/readyz",
        operation_id="readyz",
        summary="Ready to serve (Redis reachable)",
        dependencies=SERVICES,
        responses=problems(503),
    )
    async def readyz(self, services: ServicesDep) -> Health:
        """One PING to Redis; 503 problem+json when it does not answer."""
        try:
            await services.redis.ping()
        except (RedisError, OSError) as exc:
            raise Unavailable("Redis is not reachable", code="redis_unavailable") from exc
        return Health(status="ready")

    @get("/metrics", operation_id="metrics", summary="Prometheus metrics", media_type="text/plain")
    async def metrics(self) -> Response[bytes]:
        """Request counts and latencies by route template, in the Prometheus text format."""
        return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST.split(";")[0])


def _registry() -> CollectorRegistry:
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY
