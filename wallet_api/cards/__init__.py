"""Cards in a user's wallet: custom, self-added (recognised) and enrolled (partner-verified)."""
