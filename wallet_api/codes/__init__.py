"""Dynamic codes of wallet cards: per-card TOTP secrets and server-issued one-time tokens."""
