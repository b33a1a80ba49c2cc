from __future__ import annotations

import pytest

from kernel.keyring import Keyring, KeyringError, generate_key_material

INDEX = generate_key_material()


def test_seal_open_round_trip_and_context_binding() -> None:
    ring = Keyring.parse(f"k1:{generate_key_material()}", INDEX)
    sealed = ring.seal(b"4111111111111111", "card:crd_1")
    assert b"4111111111111111" not in sealed
    assert ring.open(sealed, "card:crd_1") == b"4111111111111111"
    with pytest.raises(KeyringError):
        ring.open(sealed, "card:crd_2")  # copied onto another record: refused


def test_rotation_new_key_encrypts_old_key_still_decrypts() -> None:
    old, new = generate_key_material(), generate_key_material()
    before = Keyring.parse(f"k1:{old}", INDEX)
    sealed = before.seal(b"secret", "x")
    after = Keyring.parse(f"k2:{new},k1:{old}", INDEX)
    assert after.open(sealed, "x") == b"secret"
    assert after.needs_rewrap(sealed)
    rewrapped = after.rewrap(sealed, "x")
    assert after.key_id_of(rewrapped) == "k2"
    assert after.open(rewrapped, "x") == b"secret"
    only_new = Keyring.parse(f"k2:{new}", INDEX)
    assert only_new.open(rewrapped, "x") == b"secret"
    with pytest.raises(KeyringError, match="unknown key id"):
        only_new.open(sealed, "x")


def test_blind_index_is_stable_keyed_and_purpose_bound() -> None:
    ring = Keyring.parse(f"k1:{generate_key_material()}", INDEX)
    other = Keyring.parse(f"k1:{generate_key_material()}", generate_key_material())
    a = ring.blind_index("card", "4111111111111111")
    assert a == ring.blind_index("card", "4111111111111111")
    assert a != ring.blind_index("member", "4111111111111111")
    assert a != other.blind_index("card", "4111111111111111")
    assert "4111" not in a


@pytest.mark.parametrize(
    "spec",
    ["", "k1", "k1:short", "bad id!:" + generate_key_material()],
)
def test_bad_key_configuration_is_refused(spec: str) -> None:
    with pytest.raises(KeyringError):
        Keyring.parse(spec, INDEX)
