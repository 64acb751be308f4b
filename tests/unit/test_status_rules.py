import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.models import PaymentStatus as S
from payments.status import Cause, TransitionRefused, counts_in_balance, decide

ALLOWED = {
    (S.PENDING, S.COMPLETED, Cause.GATEWAY_SUCCESS),
    (S.PENDING, S.COMPLETED, Cause.OPERATOR),
    (S.PENDING, S.CANCELLED, Cause.GATEWAY_FAILURE),
    (S.PENDING, S.CANCELLED, Cause.OPERATOR),
    (S.PENDING, S.CANCELLED, Cause.TIMEOUT),
    (S.PENDING, S.CANCELLED, Cause.SUPERSEDED),  # refund entries only: status.apply holds it to them
    (S.CANCELLED, S.COMPLETED, Cause.GATEWAY_SUCCESS),
    (S.COMPLETED, S.CANCELLED, Cause.REFUND_FAILED),  # refund entries only: status.apply holds it to them
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
@pytest.mark.parametrize("cause", list(Cause))
def test_transition_table(current: S, target: S, cause: Cause) -> None:
    if current == target:
        assert decide(current, target, cause).apply is False
    elif (current, target, cause) in ALLOWED:
        assert decide(current, target, cause).apply is True
    else:
        with pytest.raises(TransitionRefused):
            decide(current, target, cause)


def test_completed_is_final_but_for_a_failed_refund_and_only_completed_counts() -> None:
    for target in (S.PENDING, S.CANCELLED):
        for cause in Cause:
            if (target, cause) == (S.CANCELLED, Cause.REFUND_FAILED):
                continue
            with pytest.raises(TransitionRefused):
                decide(S.COMPLETED, target, cause)
    assert [s for s in S if counts_in_balance(s)] == [S.COMPLETED]


@given(st.lists(st.tuples(st.sampled_from(list(S)), st.sampled_from(list(Cause))), max_size=30))
def test_any_event_sequence_respects_the_rules(events: list[tuple[S, Cause]]) -> None:
    """Whatever arrives in whatever order: completed is absorbing but for a failed refund, and cancelled->completed
    needs a gateway."""
    status = S.PENDING
    for target, cause in events:
        before = status
        try:
            if decide(status, target, cause).apply:
                status = target
        except TransitionRefused:
            pass
        if before is S.COMPLETED:
            assert status is S.COMPLETED or cause is Cause.REFUND_FAILED
        if before is S.CANCELLED and status is S.COMPLETED:
            assert cause is Cause.GATEWAY_SUCCESS
        assert status is not S.PENDING or before is S.PENDING
