"""Loyalty programs (issuers): branding, barcode format, number rules, code policy, API keys."""
