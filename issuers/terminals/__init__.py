"""Point-of-sale terminals: a partner's till credentials, optionally bound to one store."""
