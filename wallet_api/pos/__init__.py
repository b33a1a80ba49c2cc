"""Checkout verification: a till's terminal proves which member is standing there."""
