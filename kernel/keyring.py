"""Encryption at rest: an AES-256-GCM keyring with key ids, plus keyed blind indexes.

The newest key (the first one configured) encrypts; every configured key decrypts, so keys
rotate without downtime: add a key in front, run ``wallet rotate-keys``, then drop the old
one.  A sealed value is ``b"k1" | len(kid) | kid | nonce(12) | ciphertext+tag``.  Callers pass
associated data naming what the value belongs to (``card:crd_..``), so a ciphertext copied
onto another record fails to open instead of silently lying.

Blind indexes (HMAC-SHA256 under a separate index key) let a store find a record by a secret
value (a card number) without keeping that value in clear anywhere.
"""

from __future__ import annotations

import base64
import hmac
import os
import re
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_MAGIC = b"k1"
_KID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class KeyringError(ValueError):
    """The keyring is misconfigured or a sealed value cannot be opened."""


def _decode_key(material: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(material + "=" * (-len(material) % 4))
    except ValueError as exc:
        raise KeyringError("a data key is not valid base64") from exc
    if len(raw) != 32:
        raise KeyringError("a data key must be 32 bytes (AES-256), base64-encoded")
    return raw


def generate_key_material() -> str:
    """A fresh 256-bit key, url-safe base64 without padding."""
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()


class Keyring:
    def __init__(self, keys: list[tuple[str, bytes]], index_key: bytes) -> None:
        if not keys:
            raise KeyringError("at least one data key is required")
        for kid, key in keys:
            if not _KID_RE.match(kid):
                raise KeyringError(f"key id {kid!r} must be 1-32 of A-Z a-z 0-9 _ . -")
            if len(key) != 32:
                raise KeyringError("data keys must be 32 bytes")
        if len(index_key) < 32:
            raise KeyringError("the blind-index key must be at least 32 bytes")
        self._active_kid = keys[0][0]
        self._aeads = {kid: AESGCM(key) for kid, key in keys}
        self._index_key = index_key

    @classmethod
    def parse(cls, data_keys: str, index_key: str) -> Keyring:
        """Parse ``WALLET_DATA_KEYS`` (``kid:base64,kid:base64``, newest first)."""
        keys: list[tuple[str, bytes]] = []
        for item in data_keys.split(","):
            kid, sep, material = item.strip().partition(":")
            if not sep:
                raise KeyringError("WALLET_DATA_KEYS entries look like 'kid:base64key'")
            keys.append((kid, _decode_key(material)))
        return cls(keys, _decode_key(index_key))

    @property
    def active_kid(self) -> str:
        return self._active_kid

    def seal(self, plaintext: bytes, associated: str) -> bytes:
        kid = self._active_kid.encode()
        nonce = os.urandom(12)
        ct = self._aeads[self._active_kid].encrypt(nonce, plaintext, associated.encode())
        return _MAGIC + bytes([len(kid)]) + kid + nonce + ct

    def open(self, sealed: bytes, associated: str) -> bytes:
        kid, nonce, ct = self._split(sealed)
        aead = self._aeads.get(kid)
        if aead is None:
            raise KeyringError(f"value sealed with unknown key id {kid!r}")
        try:
            return aead.decrypt(nonce, ct, associated.encode())
        except InvalidTag as exc:
            raise KeyringError("sealed value failed authentication") from exc

    def key_id_of(self, sealed: bytes) -> str:
        return self._split(sealed)[0]

    def needs_rewrap(self, sealed: bytes) -> bool:
        return self.key_id_of(sealed) != self._active_kid

    def rewrap(self, sealed: bytes, associated: str) -> bytes:
        """Re-encrypt under the active key (no-op copy when it already is)."""
        if not self.needs_rewrap(sealed):
            return sealed
        return self.seal(self.open(sealed, associated), associated)

    def blind_index(self, purpose: str, value: str | bytes) -> str:
        """Deterministic keyed hash of ``value`` for equality lookups (hex, 32 chars)."""
        data = value.encode() if isinstance(value, str) else value
        return hmac.digest(self._index_key, purpose.encode() + b"\x00" + data, "sha256").hex()[:32]

    @staticmethod
    def _split(sealed: bytes) -> tuple[str, bytes, bytes]:
        if len(sealed) < 4 or not sealed.startswith(_MAGIC):
            raise KeyringError("not a sealed value")
        n = sealed[2]
        kid = sealed[3 : 3 + n].decode(errors="replace")
        nonce = sealed[3 + n : 15 + n]
        return kid, nonce, sealed[15 + n :]


class SealedDataFamily(Protocol):
    """A kind of stored record holding sealed values; ``wallet rotate-keys`` walks them."""

    name: str

    async def rewrap(self, keyring: Keyring) -> int:
        """Re-seal values not under the active key; return how many changed."""
        ...
