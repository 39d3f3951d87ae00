"""Public ids of rows numbered across organisations: a permutation per organisation's key."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from outbound.domain.public_ids import IdKind, decode_public_id, encode_public_id, new_id_key

KEY = new_id_key()
OTHER = new_id_key()
numbers = st.integers(min_value=0, max_value=(1 << 64) - 1)


@given(numbers, st.sampled_from(list(IdKind)))
def test_every_id_decodes_to_its_number(number: int, kind: IdKind) -> None:
    public = encode_public_id(KEY, kind, number)
    assert public.startswith(f"{kind.value}_") and len(public) == len(kind.value) + 27
    assert decode_public_id(KEY, kind, public) == number


@given(numbers)
def test_another_key_or_kind_does_not_decode_it(number: int) -> None:
    public = encode_public_id(KEY, IdKind.EVENT, number)
    assert decode_public_id(OTHER, IdKind.EVENT, public) is None
    assert decode_public_id(KEY, IdKind.AUDIT, "aud_" + public[4:]) is None


def test_consecutive_numbers_look_unrelated() -> None:
    ids = [encode_public_id(KEY, IdKind.EVENT, n)[4:] for n in range(1000, 1010)]
    assert len(set(ids)) == 10
    # No shared prefix gives the order away.
    assert len({i[:4] for i in ids}) == 10


@given(st.text(max_size=40))
def test_made_up_ids_decode_to_nothing(text: str) -> None:
    assert decode_public_id(KEY, IdKind.EVENT, text) is None
    assert decode_public_id(KEY, IdKind.EVENT, "evt_" + text) is None
