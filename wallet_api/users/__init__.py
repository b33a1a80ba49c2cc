"""Wallet users: anonymous accounts owned by a consumer app install."""
