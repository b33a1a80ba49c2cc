from __future__ import annotations

from collections import Counter

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


def test_id_characters_are_uniform_over_the_alphabet() -> None:
    """Each of the 36 characters as likely as any other in every position: a byte mapped
    modulo 36 without dropping the biased ones would make 0-3 one eighth more frequent."""
    ids = [new_id("vis")[4:] for _ in range(8000)]
    assert {len(i) for i in ids} == {25}
    counts = Counter("".join(ids))
    assert set(counts) == set("0123456789abcdefghijklmnopqrstuvwxyz")
    expected = 8000 * 25 / 36
    chi_square = sum((n - expected) ** 2 / expected for n in counts.values())
    # 35 degrees of freedom: above 80 happens by chance about once in 20,000 runs; the
    # modulo bias above scores ~300.
    assert chi_square < 80
