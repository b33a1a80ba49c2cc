"""The hot paths' Redis connection writes commands itself: the same bytes as hiredis, and a
real Redis reads them back intact, whatever the arguments' types and lengths."""

from __future__ import annotations

import hiredis
import pytest
from redis.asyncio import Redis

from kernel.direct_redis import Command, DirectRedis, DirectScript, pack_into

COMMANDS: list[Command] = [
    ("PING",),
    ("SET", "k", b"\x00\r\n\xff"),
    ("HSET", "h", "caf\u00e9 \u2603", "", "n", 0, "neg", -7, "big", 2**70),
    ("ZADD", "z", 1763900000.123, "m", 0.1, "x", 1e20, "y", 1.5e-7, "w", float("inf"), "v"),
    ("SET", "long", "x" * 511, "longer", b"y" * 512, "longest", "z" * 70_000),
    ("MSET", *[str(n) for n in range(600)]),  # more arguments than the header table holds
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_commands_are_written_byte_for_byte_as_hiredis_writes_them(command: Command) -> None:
    out: list[bytes] = []
    pack_into(out, command)
    assert b"".join(out) == hiredis.pack_command(tuple(command))  # type: ignore[arg-type]


def test_a_bool_is_refused_rather_than_sent_as_a_number() -> None:
    with pytest.raises(TypeError):
        pack_into([], ("SET", "k", True))


ECHO_ARGS = "return ARGV"


async def test_arguments_of_every_type_and_length_reach_redis_intact(
    redis_url: str, key_prefix: str
) -> None:
    client = Redis.from_url(redis_url)
    direct = DirectRedis(client, name="test-direct")
    try:
        args: list[bytes | str | int | float] = [
            b"\x00\r\n\xff", "caf\u00e9", "", -7, 2**70, 0.1, 1.5e-7, "x" * 511, b"y" * 70_000,
        ]  # fmt: skip
        reply = await DirectScript(direct, ECHO_ARGS)([f"{key_prefix}:k"], args)
        assert reply == [
            b"\x00\r\n\xff", "caf\u00e9".encode(), b"", b"-7", str(2**70).encode(), b"0.1",
            b"1.5e-07", b"x" * 511, b"y" * 70_000,
        ]  # fmt: skip
        # Several commands in one write, each answered in order.
        many = [("SET", f"{key_prefix}:n{n}", "v" * n) for n in range(0, 1200, 7)]
        await direct.execute(many)
        got = await direct.execute([("GET", f"{key_prefix}:n{n}") for n in range(0, 1200, 7)])
        assert got == [b"v" * n for n in range(0, 1200, 7)]
    finally:
        await direct.aclose()
        await client.aclose()
