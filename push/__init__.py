"""Push delivery (roadmap, step 2): devices, in-app inbox, durable outbox, worker, and the
APNs / FCM senders. Empty for now; it depends only on ``kernel``, and ``geofence`` and
``wallet_api`` may depend on it (see docs/architecture.md)."""
