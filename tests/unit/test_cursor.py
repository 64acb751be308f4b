import pytest

from payments import cursor
from payments.ids import new_payment_id
from payments.models import utcnow

KEY = b"test-key"
LAST = new_payment_id(utcnow())


def test_round_trip() -> None:
    token = cursor.encode("acme", LAST, "completed||", key=KEY)
    assert cursor.decode("acme", token, "completed||", key=KEY) == LAST
    assert "acme" not in token


@pytest.mark.parametrize(
    ("customer", "filters", "mutate", "fragment"),
    [
        ("other", "completed||", lambda t: t, "not valid for this account"),
        ("acme", "completed||", lambda t: "x" + t, "not valid for this account"),
        ("acme", "completed||", lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"), "not valid"),
        ("acme", "completed||", lambda t: t.split(".")[0], "malformed"),
        ("acme", "completed||", lambda t: "", "malformed"),
        ("acme", "completed||", lambda t: "a" * 600 + ".b", "malformed"),
        ("acme", "pending||", lambda t: t, "other filters"),
    ],
)
def test_foreign_forged_or_misused_cursors_are_refused(customer, filters, mutate, fragment) -> None:
    token = mutate(cursor.encode("acme", LAST, "completed||", key=KEY))
    with pytest.raises(cursor.CursorError) as caught:
        cursor.decode(customer, token, filters, key=KEY)
    assert caught.value.http_status == 400
    assert fragment in caught.value.message


def test_another_key_cannot_forge() -> None:
    token = cursor.encode("acme", LAST, "", key=b"attacker")
    with pytest.raises(cursor.CursorError):
        cursor.decode("acme", token, "", key=KEY)
