from __future__ import annotations

import pytest

from kernel.ids import looks_like_id, new_id
from kernel.keys import KeySpace


def test_keys_carry_the_owner_as_cluster_hash_tag() -> None:
    keys = KeySpace("w")
    assert keys.key("user", "usr_1") == "w:user:{usr_1}"
    assert keys.key("card", "usr_1", "crd_2") == "w:card:{usr_1}:crd_2"


@pytest.mark.parametrize("prefix", ["", "a:b", "{x}", "a b"])
def test_prefix_cannot_break_the_tag(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        KeySpace(prefix)


def test_ids_are_prefixed_unique_and_checkable() -> None:
    ids = {new_id("usr") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(looks_like_id(i, "usr") for i in ids)
    assert not looks_like_id("usr_../../etc", "usr")
    assert not looks_like_id(next(iter(ids)), "iss")
