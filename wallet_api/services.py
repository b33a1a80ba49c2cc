"""The composition root: builds every service once per process and wires them together.

This is the only place that knows all packages; it passes cross-package needs in as
constructor arguments (see docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from geofence.follower import LiveIndex
from geofence.geometry import Polygon, centre_of
from geofence.service import PresenceService
from geofence.store import PresenceStore
from geofence.sweep import DwellSweeper, VisitRetention
from issuers.members.service import MemberService
from issuers.members.store import MemberStore
from issuers.programs.service import ProgramService
from issuers.programs.store import ProgramStore
from issuers.stores.service import StoreService
from issuers.stores.store import StoreStore
from issuers.terminals.service import TerminalService
from issuers.terminals.store import TerminalStore
from kernel import tokens
from kernel.clock import Clock, SystemClock
from kernel.direct_redis import DirectRedis
from kernel.keyring import Keyring, SealedDataFamily
from kernel.keys import KeySpace
from wallet_api.auth import Authenticator, Principal
from wallet_api.barcodes import check_value
from wallet_api.cards.service import CardService
from wallet_api.cards.store import CardStore
from wallet_api.codes.service import CodeService
from wallet_api.codes.store import CodeStore
from wallet_api.idempotency import IdempotencyStore
from wallet_api.pos.service import PosService
from wallet_api.pos.store import PosStore
from wallet_api.ratelimit import RateLimiter
from wallet_api.settings import Settings
from wallet_api.users.personal_data import PersonalDataRegistry
from wallet_api.users.service import UserService
from wallet_api.users.store import UserStore


@dataclass(frozen=True, kw_only=True)
class Services:
    settings: Settings
    redis: Redis
    direct: DirectRedis  # the hot paths' multiplexed connection (kernel/direct_redis.py)
    keys: KeySpace
    keyring: Keyring
    clock: Clock
    auth: Authenticator
    rate_limiter: RateLimiter
    idempotency: IdempotencyStore
    personal_data: PersonalDataRegistry
    users: UserService
    programs: ProgramService
    members: MemberService
    cards: CardService
    stores: StoreService
    terminals: TerminalService
    codes: CodeService
    pos: PosService
    presence: PresenceService
    fence_index: LiveIndex
    dwell_sweeper: DwellSweeper
    visit_retention: VisitRetention
    sealed_families: list[SealedDataFamily]


class GeometryFences:
    """The stores' ``FenceChecker``: polygon validation and centre from geofence.geometry."""

    def check(self, coordinates: list[list[list[float]]]) -> tuple[float, float]:
        return centre_of(Polygon.from_geojson(coordinates))


def build_services(settings: Settings, redis: Redis, clock: Clock | None = None) -> Services:
    assert settings.admin_token and settings.data_keys and settings.index_key
    keys = KeySpace(settings.key_prefix)
    clock = clock or SystemClock()
    direct = DirectRedis(redis, name=f"{keys.prefix}-direct")
    users = UserService(UserStore(redis, direct, keys), clock)

    auth = Authenticator(settings.admin_token)

    async def resolve_user(token_digest: str) -> Principal | None:
        user_id = await users.user_for_token(token_digest)
        return None if user_id is None else Principal(kind="user", subject_id=user_id)

    auth.register(tokens.USER_PREFIX, resolve_user)

    programs = ProgramService(ProgramStore(redis, keys), clock)

    async def resolve_partner(token_digest: str) -> Principal | None:
        key = await programs.issuer_for_key(token_digest)
        if key is None:
            return None
        return Principal(kind="partner", subject_id=key.issuer_id, issuer_id=key.issuer_id)

    auth.register(tokens.PARTNER_PREFIX, resolve_partner)

    stores = StoreService(StoreStore(redis, keys), clock, GeometryFences())
    terminals = TerminalService(TerminalStore(redis, keys), clock, stores)

    async def resolve_terminal(token_digest: str) -> Principal | None:
        terminal = await terminals.resolve(token_digest)
        if terminal is None:
            return None
        return Principal(
            kind="terminal",
            subject_id=terminal.terminal_id,
            issuer_id=terminal.issuer_id,
            store_id=terminal.store_id,
        )

    auth.register(tokens.TERMINAL_PREFIX, resolve_terminal)

    keyring = Keyring.parse(settings.data_keys, settings.index_key)
    members = MemberService(MemberStore(redis, keys), programs, keyring, clock, check_value)
    cards = CardService(CardStore(redis, keys), programs, members, keyring, clock)
    codes = CodeService(CodeStore(redis, keys), cards, programs, keyring, clock)
    cards.on_removed(codes.card_removed)
    # Verification reads keys other stores own in its round trips (see pos/store.py).
    pos_store = PosStore(
        redis,
        direct,
        keys,
        terminals=TerminalStore(redis, keys),
        codes=CodeStore(redis, keys),
        programs=ProgramStore(redis, keys),
        cards=CardStore(redis, keys),
        members=MemberStore(redis, keys),
        terminal_lockout=settings.pos_terminal_lockout,
        card_lockout=settings.pos_card_lockout,
    )
    pos = PosService(pos_store, keyring, clock, settings)

    personal_data = PersonalDataRegistry()
    personal_data.register(users)
    personal_data.register(cards)
    # Presence reads the stores' change feed straight from their store layer, and asks the
    # wallet's cards which programs a user holds (its MembershipDirectory).
    fence_index = LiveIndex(StoreStore(redis, keys))
    presence_store = PresenceStore(redis, direct, keys)
    presence = PresenceService(presence_store, fence_index, cards, clock)
    personal_data.register(presence)
    return Services(
        settings=settings,
        redis=redis,
        direct=direct,
        keys=keys,
        keyring=keyring,
        clock=clock,
        auth=auth,
        rate_limiter=RateLimiter(redis, keys),
        idempotency=IdempotencyStore(redis, keys, keyring),
        personal_data=personal_data,
        users=users,
        programs=programs,
        members=members,
        cards=cards,
        stores=stores,
        terminals=terminals,
        codes=codes,
        pos=pos,
        presence=presence,
        fence_index=fence_index,
        dwell_sweeper=DwellSweeper(presence_store, clock),
        visit_retention=VisitRetention(presence_store, clock),
        sealed_families=[cards, members, codes],
    )
