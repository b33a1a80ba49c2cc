"""HTTP controllers: decode, call one service function, encode."""
