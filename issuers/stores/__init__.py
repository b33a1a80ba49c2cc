"""A partner's stores: location (circle or polygon geofence), hours, in-store BLE beacons."""
