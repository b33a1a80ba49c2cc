from __future__ import annotations

from issuers.stores.models import Beacon
from kernel.errors import Conflict, InvalidInput, NotFound


class StoreNotFound(NotFound):
    code = "store_not_found"


class UnknownTimeZone(InvalidInput):
    code = "unknown_timezone"


class LatitudeOutOfRange(InvalidInput):
    """Beyond +-85.05112878 deg: the geo index (Redis GEO) cannot hold the store."""

    code = "latitude_out_of_range"


class CoordinatesRequired(InvalidInput):
    code = "coordinates_required"


class FieldRequired(InvalidInput):
    code = "field_required"


class FenceRequired(InvalidInput):
    """A store needs exactly one fence: ``radius_m`` (a circle) or ``polygon``."""

    code = "fence_required"


class FenceConflict(InvalidInput):
    code = "fence_conflict"


class InvalidPolygon(InvalidInput):
    code = "invalid_polygon"


class DuplicateBeacon(InvalidInput):
    """The same uuid/major/minor appears twice in one request (or one import row)."""

    code = "duplicate_beacon"


class BeaconTaken(Conflict):
    """The uuid/major/minor already belongs to another store (of any program)."""

    code = "beacon_taken"

    @classmethod
    def held_by(cls, beacon: Beacon, index: int, store_id: str | None) -> BeaconTaken:
        """``store_id`` is None when the holder is another program's: none of our business."""
        owner = "a store of another program" if store_id is None else f"store {store_id}"
        return cls(
            f"beacon {beacon.uuid}/{beacon.major}/{beacon.minor} already belongs to {owner}",
            field=f"beacons[{index}]",
        )


class ExternalIdTaken(Conflict):
    code = "external_id_taken"


class ConcurrentUpdate(Conflict):
    """The store kept changing under this write; retrying the request is safe."""

    code = "concurrent_update"


class ExternalIdRequired(InvalidInput):
    code = "external_id_required"


class DuplicateExternalId(InvalidInput):
    code = "duplicate_external_id"


class TooManyStores(InvalidInput):
    code = "too_many_stores"


class MalformedImport(InvalidInput):
    code = "malformed_import"


class MalformedRow(InvalidInput):
    code = "malformed_json"
