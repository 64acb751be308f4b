"""Our ULID codec (payments.ids) against the maintained python-ulid package."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ulid import ULID

from payments import ids


@given(st.integers(0, ids.MAX_MILLIS), st.integers(0, 2**80 - 1))
def test_encoding_matches_python_ulid(millis: int, randomness: int) -> None:
    value = millis << 80 | randomness
    ours = ids._encode(value)
    assert ours == str(ULID.from_int(value))
    assert ids._decode(ours) == value


def test_new_ids_sort_by_time_and_carry_it() -> None:
    start = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    made = [ids.new_payment_id(start + timedelta(milliseconds=i)) for i in range(0, 2000, 7)]
    assert made == sorted(made)
    assert ids.created_at_of(made[3]) == start + timedelta(milliseconds=21)
    assert ULID.from_str(made[3].removeprefix("pay_")).datetime == start + timedelta(milliseconds=21)
    assert len({ids.new_payment_id(start) for _ in range(1000)}) == 1000  # 80 random bits


def test_bounds_enclose_every_id_of_their_millisecond() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    inside = [ids.new_payment_id(moment) for _ in range(50)]
    assert all(ids.id_bound(moment, upper=False) <= i <= ids.id_bound(moment, upper=True) for i in inside)
    assert ids.id_bound(moment - timedelta(milliseconds=1), upper=True) < min(inside)
    assert ids.id_bound(datetime(1900, 1, 1, tzinfo=UTC), upper=False) == "pay_" + "0" * 26  # clamped


@pytest.mark.parametrize(
    "text",
    [
        "",
        "pay_",
        "pay_01ARZ3NDEKTSV4RRFFQ69G5FA",
        "pay_81ARZ3NDEKTSV4RRFFQ69G5FAV",
        "pay_01ARZ3NDEKTSV4RRFFQ69G5FAU",
        "pay_01arz3ndektsv4rrffq69g5fav",
        "PAY_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    ],
)
def test_what_is_not_a_payment_id(text: str) -> None:
    assert not ids.is_payment_id(text)


def test_a_payment_id() -> None:
    assert ids.is_payment_id("pay_01ARZ3NDEKTSV4RRFFQ69G5FAV")
