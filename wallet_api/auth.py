"""Bearer authentication: four kinds of principal, each confined to its own routes.

The token's prefix (``wut_``, ``wpk_``, ``wtk_``, ``wadm_``) names the package that owns the
credential; that package resolves the token's SHA-256 digest with one Redis GET.  The admin
token lives only in settings (as a digest) and is compared in constant time.  A missing or
unknown token is 401; a valid token of the wrong kind is 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec

from kernel import tokens
from kernel.errors import Forbidden, Unauthenticated
from kernel.lru import LRU

PrincipalKind = Literal["admin", "partner", "user", "terminal"]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    kind: PrincipalKind
    subject_id: str
    issuer_id: str | None = None
    store_id: str | None = None


Resolver = Callable[[str], Awaitable[Principal | None]]

# User tokens this process has resolved, for routes whose own first Redis call re-checks the
# credential (``known_user``); a bound on memory, not on trust.
KNOWN_USERS = 50_000


class WrongPrincipal(Forbidden):
    code = "wrong_principal"


class InvalidToken(Unauthenticated):
    code = "invalid_token"


class Authenticator:
    """Maps a bearer token to a ``Principal`` through the resolver of its prefix."""

    def __init__(self, admin_token: str) -> None:
        self._admin_digest = tokens.digest(admin_token)
        self._resolvers: dict[str, Resolver] = {}
        self._known_users: LRU[str, str] = LRU(KNOWN_USERS)

    def register(self, prefix: str, resolver: Resolver) -> None:
        self._resolvers[prefix] = resolver

    @staticmethod
    def bearer_digest(authorization: str | None) -> tuple[str, str]:
        """``(prefix, digest)`` of a well-formed bearer header, without touching Redis."""
        if not authorization:
            raise Unauthenticated("send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise InvalidToken("the Authorization header must be 'Bearer <token>'")
        return token.partition("_")[0], tokens.digest(token)

    def is_admin(self, token_digest: str) -> bool:
        return tokens.same_digest(token_digest, self._admin_digest)

    async def authenticate(self, authorization: str | None) -> Principal:
        prefix, token_digest = self.bearer_digest(authorization)
        # The admin token may be any operator-chosen string, so it is checked before prefixes.
        if self.is_admin(token_digest):
            return Principal(kind="admin", subject_id="admin")
        resolver = self._resolvers.get(prefix)
        principal = await resolver(token_digest) if resolver else None
        if principal is None:
            raise InvalidToken("the token is not valid")
        if principal.kind == "user":
            self._known_users.put(token_digest, principal.subject_id)
        return principal

    def known_user(self, authorization: str | None) -> tuple[Principal, str] | None:
        """``(principal, token digest)`` of a user token this process resolved before, without
        Redis.  Only for a caller whose first Redis call checks the credential itself (the
        presence scripts do, given ``UserService.credential_check``); None: authenticate."""
        prefix, token_digest = self.bearer_digest(authorization)
        user_id = self._known_users.get(token_digest) if prefix == tokens.USER_PREFIX else None
        if user_id is None:
            return None
        return Principal(kind="user", subject_id=user_id), token_digest

    def forget_user(self, token_digest: str) -> None:
        """The credential check failed: the token must be looked up again (and fail)."""
        self._known_users.drop(token_digest)

    async def require(self, authorization: str | None, kind: PrincipalKind) -> Principal:
        principal = await self.authenticate(authorization)
        if principal.kind != kind:
            raise WrongPrincipal(f"this route is for {kind} credentials, not {principal.kind}")
        return principal
