"""The card-wallet service: HTTP app, settings, auth, and the wallet itself."""
