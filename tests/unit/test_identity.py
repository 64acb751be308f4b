import pytest

from payments.errors import Forbidden, Unauthenticated
from payments.identity import OPERATORS, PAYERS, READERS, caller_from_event, parse_groups


@pytest.mark.parametrize(
    ("raw", "groups"),
    [
        (["admin", "finance"], {"admin", "finance"}),
        ("[admin finance]", {"admin", "finance"}),
        ('["support"]', {"support"}),
        ("finance", {"finance"}),
        ("admin,finance", {"admin", "finance"}),
        ("[]", set()),
        (None, set()),
    ],
)
def test_groups_in_every_form_api_gateway_sends(raw: object, groups: set[str]) -> None:
    assert parse_groups(raw) == groups


def event(claims: dict | None) -> dict:
    return {"requestContext": {"authorizer": {"jwt": {"claims": claims}}}} if claims is not None else {}


def test_caller_and_group_rules() -> None:
    support = caller_from_event(event({"sub": "u1", "custom:customer_id": "acme", "cognito:groups": "[support]"}))
    assert support.customer_for(READERS) == "acme"
    with pytest.raises(Forbidden, match="admin, finance"):
        support.customer_for(PAYERS)
    operator = caller_from_event(event({"sub": "op", "cognito:groups": "[operator]"}))
    operator.require(OPERATORS)
    assert operator.actor == "operator:op"
    with pytest.raises(Forbidden):
        operator.customer_for(READERS)


def test_missing_claims() -> None:
    with pytest.raises(Unauthenticated):
        caller_from_event(event(None))
    with pytest.raises(Unauthenticated):
        caller_from_event(event({"email": "x@y.z"}))
    no_tenant = caller_from_event(event({"sub": "u", "cognito:groups": "[finance]"}))
    with pytest.raises(Forbidden, match="custom:customer_id"):
        no_tenant.customer_for(READERS)
