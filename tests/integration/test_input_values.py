"""Values read from client text, through the real handlers (docs/errors.md): digits are ASCII, times have
4-digit years and are read back, cursors are 400, every ISO 4217 code is known, every problem is listed.

Request building and state checks are shared with test_input_rules.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from payments.config import settings
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus
from payments.store import PaymentStore
from tests.conftest import aws_client
from tests.integration.helpers import stored_payments
from tests.integration.test_input_rules import Call, assert_error, refused, send, valid_call

pytestmark = pytest.mark.usefixtures("aws")

# Digits of other scripts that str.isdigit(), int() and Decimal() accept, and "digits" int() refuses though
# isdigit() is True. Every script's digits are covered by tests/unit/test_money.py and test_cards.py.
NON_ASCII_DIGITS = [
    "١٢",  # Arabic-Indic
    "１２",  # full-width
    "۱۲",  # Extended Arabic-Indic (Persian)
    "१२",  # Devanagari
    "1２",  # mixed
    "²",  # superscript: isdigit() but not int()
    "1①",
]


# ---- 4. amounts: ASCII digits only, on every route that takes one --------------------------------

AMOUNT_ROUTES = ["POST /payments", "POST /admin/customers/{customer_id}/charges", "POST /admin/vouchers"]


@pytest.mark.parametrize("route_key", AMOUNT_ROUTES)
@pytest.mark.parametrize("amount", [*NON_ASCII_DIGITS, "1.٥٠", "١٢.50"])
def test_amounts_in_non_ascii_digits_are_422_naming_amount(customer: str, route_key: str, amount: str) -> None:
    call = valid_call(route_key, customer)
    call.body["amount"] = amount
    status, body = refused(call, customer)
    assert status == 422, body
    assert_error(body, field="amount", fields=["amount"])


@pytest.mark.parametrize("route_key", AMOUNT_ROUTES)
@pytest.mark.parametrize(
    ("amount", "fragment"),
    [
        (" 12.50 ", None),  # ASCII blanks around the number are fine
        ("\u300012.50", "not a decimal number"),  # an ideographic space is not
        ("12.50\n", None),
        ("1e400000000", "not a decimal number"),
    ],
)
def test_amount_text_edges(customer: str, route_key: str, amount: str, fragment: str | None) -> None:
    call = valid_call(route_key, customer)
    call.body["amount"] = amount
    if fragment is None:
        status, body = send(call)
        assert status == call.ok, body
        return
    status, body = refused(call, customer)
    assert status == 422, body
    assert_error(body, field="amount")
    assert fragment in body["message"]


@pytest.mark.parametrize("route_key", AMOUNT_ROUTES)
@pytest.mark.parametrize(
    ("number", "fragment"),
    [("1e400000000", "must not exceed"), ("1e-400000000", "decimal places"), ("0e-400000000", "decimal places")],
)
def test_json_numbers_with_huge_exponents_are_refused_at_once(
    customer: str, route_key: str, number: str, fragment: str
) -> None:
    call = valid_call(route_key, customer)
    raw = json.dumps({**call.body, "amount": "AMOUNT"}).replace('"AMOUNT"', number)
    status, body = refused(call, customer, raw=raw)
    assert status == 422, body
    assert_error(body, field="amount")
    assert fragment in body["message"]


# ---- 4. card fields ---------------------------------------------------------------------------------

CARD = {"number": "4242424242424242", "exp_month": "12", "exp_year": "2030", "cvc": "123"}


@pytest.mark.parametrize("part", ["number", "exp_month", "exp_year", "cvc"])
@pytest.mark.parametrize("digits", ["١٢", "１２", "²", "١"])
def test_card_fields_in_non_ascii_digits_are_422_naming_the_field(customer: str, part: str, digits: str) -> None:
    card = dict(CARD)
    if part == "number":
        card["number"] = "424242424242424" + digits[0]
    elif part == "cvc":
        card["cvc"] = "12" + digits[0]
    else:
        card[part] = digits
    call = valid_call("POST /payments", customer)
    call.body = {"method": "credit_card", "amount": "10.00", "currency": "USD", "card": card}
    status, body = refused(call, customer)
    assert status == 422, body
    assert_error(body, field=f"card.{part}")
    assert card["number"] not in json.dumps(body, ensure_ascii=False)  # card data is never echoed


# ---- 4. query and other numbers ----------------------------------------------------------------------


@pytest.mark.parametrize("limit", [*NON_ASCII_DIGITS, "٥٠"])
def test_limit_in_non_ascii_digits_is_422_naming_limit(customer: str, limit: str) -> None:
    status, body = send(valid_call("GET /payments", customer), query={"limit": limit})
    assert status == 422, body
    assert_error(body, field="limit", fields=["limit"])


@pytest.mark.parametrize("count", [*NON_ASCII_DIGITS, "٣"])
def test_voucher_count_in_non_ascii_digits_is_422_naming_count(customer: str, count: str) -> None:
    call = valid_call("POST /admin/vouchers", customer)
    call.body["count"] = count
    status, body = refused(call, customer)
    assert status == 422, body
    assert_error(body, field="count", fields=["count"])


@pytest.mark.parametrize("text", ["٢٠٢٧-01-01T00:00:00Z", "２０２７-01-01T00:00:00Z", "2027-01-01T00:00:00+٠٥:00"])
def test_times_in_non_ascii_digits_are_422_naming_the_field(customer: str, text: str) -> None:
    status, body = send(valid_call("GET /payments", customer), query={"from": text})
    assert status == 422, body
    assert_error(body, field="from")
    call = valid_call("POST /payments/exports", customer)
    call.body = {"to": text}
    status, body = refused(call, customer)
    assert status == 422, body
    assert_error(body, field="to")
    call = valid_call("POST /admin/vouchers", customer)
    call.body["expires_at"] = text
    status, body = refused(call, customer)
    assert status == 422, body
    assert_error(body, field="expires_at")


# ---- 2. times: 4-digit years, written and read back; out-of-range instants are 422 ------------------


@pytest.mark.parametrize("year", ["0001", "0099", "0999"])
def test_early_years_filter_and_are_stored_with_four_digits(customer: str, year: str) -> None:
    call = valid_call("GET /payments", customer)
    start = f"{year}-01-01T00:00:00Z"
    PaymentStore().add(
        Payment(
            id=new_payment_id(datetime(2026, 3, 1, tzinfo=UTC)),
            customer_id=customer,
            created_at=datetime(2026, 3, 1, tzinfo=UTC),
            amount_minor=100,
            currency="USD",
            status=PaymentStatus.PENDING,
            method=PaymentMethod.BANK_TRANSFER,
            history=(HistoryEntry(at=datetime(2026, 3, 1, tzinfo=UTC), status=PaymentStatus.PENDING, by="seed"),),
        )
    )
    status, page = send(call, query={"from": start, "limit": "1"})
    assert status == 200 and len(page["items"]) == 1, page

    export = valid_call("POST /payments/exports", customer)
    export.body = {"from": start, "to": "2999-12-31T23:59:59Z"}
    status, made = send(export)
    assert status == 201 and made["row_count"] == 1, made
    [record] = [i for i in _export_items(customer) if i["export_id"]["S"] == made["export_id"]]
    assert record["filter_from"]["S"] == f"{year}-01-01T00:00:00.000Z"
    assert record["filter_to"]["S"] == "2999-12-31T23:59:59.000Z"
    status, again = send(_get_export(customer, made["export_id"]))
    assert status == 200 and again["status"] == "done" and again["row_count"] == 1, again


OUT_OF_RANGE = [
    "10000-01-01T00:00:00Z",
    "9999-12-31T23:00:00-05:00",  # 10000-01-01 in UTC
    "0001-01-01T00:00:00+05:00",  # year 0 in UTC
    "0000-01-01T00:00:00Z",
]


@pytest.mark.parametrize("text", OUT_OF_RANGE)
@pytest.mark.parametrize("name", ["from", "to"])
def test_instants_outside_years_1_to_9999_are_422_naming_the_field(customer: str, text: str, name: str) -> None:
    status, body = send(valid_call("GET /payments", customer), query={name: text})
    assert status == 422, body
    assert_error(body, field=name, fields=[name])
    call = valid_call("POST /payments/exports", customer)
    call.body = {name: text}
    status, body = refused(call, customer)
    assert status == 422, body
    assert_error(body, field=name, fields=[name])


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_voucher_expiry_outside_years_1_to_9999_is_422(customer: str, text: str) -> None:
    call = valid_call("POST /admin/vouchers", customer)
    call.body["expires_at"] = text
    status, body = refused(call, customer)
    assert status == 422, body
    assert_error(body, field="expires_at")


def _export_items(customer: str) -> list[dict[str, Any]]:
    return aws_client("dynamodb").query(
        TableName=settings().payments_table,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :export)",
        ExpressionAttributeValues={":pk": {"S": f"CUST#{customer}"}, ":export": {"S": "EXPORT#"}},
        ConsistentRead=True,
    )["Items"]


def _get_export(customer: str, export_id: str) -> Call:
    call = valid_call("GET /payments", customer)  # the payer's claims
    return Call("GET /payments/exports/{export_id}", f"/payments/exports/{export_id}",
                path_params={"export_id": export_id}, claims=call.claims)  # fmt: skip


@pytest.mark.parametrize(
    "damage",
    [
        {"filter_from": {"S": "999-01-01T00:00:00.000Z"}},  # what the old iso_z wrote
        {"created_at": {"S": "yesterday"}},
        {"status": {"S": "exploded"}},
        {"expires_at": {"S": "soon"}},
        {"row_count": {"N": "1.5"}},
    ],
)
def test_an_export_record_that_cannot_be_read_is_answered_as_failed(customer: str, damage: dict[str, Any]) -> None:
    export = valid_call("POST /payments/exports", customer)
    status, made = send(export)
    assert status == 201, made
    [item] = _export_items(customer)
    aws_client("dynamodb").put_item(TableName=settings().payments_table, Item={**item, **damage})
    status, body = send(_get_export(customer, made["export_id"]))
    assert status == 200, body
    assert body == {
        "export_id": made["export_id"],
        "status": "failed",
        "message": "this export's record could not be read; start a new export",
    }
    from tests.conftest import FakeContext, load_function  # the background half reads the record too

    job = {"export_job": {"customer_id": customer, "export_id": made["export_id"]}}
    assert load_function("export_csv").lambda_handler(job, FakeContext())["status"] == "failed"


def test_an_export_record_missing_its_keys_is_answered_as_failed(customer: str) -> None:
    export_id = "broken-record"
    aws_client("dynamodb").put_item(
        TableName=settings().payments_table,
        Item={"PK": {"S": f"CUST#{customer}"}, "SK": {"S": f"EXPORT#{export_id}"}, "type": {"S": "export"}},
    )
    status, body = send(_get_export(customer, export_id))
    assert status == 200, body
    assert body["status"] == "failed" and body["message"]


# ---- 6. cursors: every bad one is 400 -------------------------------------------------------------------


def _first_page_cursor(customer: str) -> str:
    for _ in range(2):
        status, _answer = send(valid_call("POST /payments", customer))
        assert status == 201
    status, page = send(valid_call("GET /payments", customer), query={"limit": "1"})
    assert status == 200 and page["next_cursor"], page
    return str(page["next_cursor"])


@pytest.mark.parametrize(
    "make",
    [
        lambda good: "a" * 513,  # over the length limit
        lambda good: good + "A" * 600,
        lambda good: "x" * 100_000,
        lambda good: "garbage",
        lambda good: "",  # empty is no cursor: the first page
        lambda good: "é.é",  # non-ASCII
        lambda good: good.replace(".", "．"),
        lambda good: good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # forged signature
        lambda good: good.split(".")[0][:-1] + "." + good.split(".")[1],  # edited payload
        lambda good: ".",
        lambda good: "\x00.\x00",
    ],
)
def test_a_bad_cursor_is_400_naming_cursor(customer: str, make: Any) -> None:
    good = _first_page_cursor(customer)
    cursor = make(good)
    status, body = send(valid_call("GET /payments", customer), query={"limit": "1", "cursor": cursor})
    if cursor == "":
        assert status == 200, body
        return
    assert status == 400, body
    assert_error(body, field="cursor", fields=["cursor"])


def test_another_customers_cursor_is_400_naming_cursor(customer: str) -> None:
    good = _first_page_cursor(customer)
    status, body = send(valid_call("GET /payments", customer + "-b"), query={"limit": "1", "cursor": good})
    assert status == 400, body
    assert_error(body, field="cursor")
    assert "not valid for this account" in body["message"]


# ---- 7. ISO 4217 codes without minor units ----------------------------------------------------------

NO_MINOR_UNITS = {
    "XAU": "gold",
    "XAG": "silver",
    "XPT": "platinum",
    "XPD": "palladium",
    "XDR": "SDR (Special Drawing Right)",
    "XTS": "Codes specifically reserved for testing purposes",
    "XXX": "The codes assigned for transactions where no currency is involved",
    "XBA": "Bond Markets Unit European Composite Unit (EURCO)",
    "XUA": "ADB Unit of Account",
    "XSU": "sucre",
}


@pytest.mark.parametrize("route_key", AMOUNT_ROUTES)
@pytest.mark.parametrize("code", sorted(NO_MINOR_UNITS))
def test_codes_without_minor_units_are_named_as_iso_codes(customer: str, route_key: str, code: str) -> None:
    call = valid_call(route_key, customer)
    call.body["currency"] = code
    status, body = refused(call, customer)
    assert status == 422, body
    expected = (
        f"currency {code} is an ISO 4217 code without minor units ({NO_MINOR_UNITS[code]}); "
        "payments cannot be made in it"
    )
    assert_error(body, expected, field="currency", fields=["currency"])


def test_a_voucher_payment_in_gold_is_refused_the_same_way(customer: str) -> None:
    call = valid_call("POST /payments", customer)
    call.body = {"method": "voucher", "voucher_code": "ABCD-EFGH", "currency": "XAU"}
    status, body = refused(call, customer)
    assert status == 422, body
    assert_error(body, field="currency")
    assert "without minor units (gold)" in body["message"]


@pytest.mark.parametrize("code", ["BOV", "CHE", "CLF", "USN", "UYW"])
def test_funds_codes_with_minor_units_stay_payable(customer: str, code: str) -> None:
    call = valid_call("POST /admin/vouchers", customer)
    call.body["currency"] = code
    status, body = send(call)
    assert status == 201, body


# ---- 8. every problem listed ----------------------------------------------------------------------------


@pytest.mark.parametrize("route_key", AMOUNT_ROUTES)
def test_a_bad_amount_and_a_bad_currency_are_both_reported(customer: str, route_key: str) -> None:
    call = valid_call(route_key, customer)
    call.body.update(amount="abc", currency="XYZ")
    if route_key == "POST /payments":
        call.body["method"] = "paypal"
    status, body = refused(call, customer)
    assert status == 422, body
    assert_error(body, field="amount", fields=["amount", "currency"])
    assert body["errors"] == [
        {"field": "amount", "message": "amount 'abc' is not a decimal number"},
        {"field": "currency", "message": "currency 'XYZ' is not an ISO 4217 currency code"},
    ]
    assert body["message"] == "amount 'abc' is not a decimal number; currency 'XYZ' is not an ISO 4217 currency code"


def test_a_missing_amount_and_currency_are_both_reported(customer: str) -> None:
    call = valid_call("POST /payments", customer)
    call.body = {"method": "bank_transfer"}
    status, body = refused(call, customer)
    assert status == 422, body
    assert_error(body, fields=["amount", "currency"])


def test_every_schema_problem_is_listed_not_just_three(customer: str) -> None:
    call = valid_call("POST /payments/exports", customer)
    call.body = {"status": "paid", "from": "yesterday", "to": [], "a": 1, "b": 2, "c": 3}
    status, body = refused(call, customer)
    assert status == 422, body
    assert_error(body)
    assert sorted(e["field"] for e in body["errors"]) == ["a", "b", "c", "from", "status", "to"]


def test_a_union_field_is_one_problem_with_a_readable_message(customer: str) -> None:
    call = valid_call("POST /payments", customer)
    call.body = {"method": "credit_card", "amount": [], "currency": "USD", "card": {**CARD, "number": []}}
    status, body = refused(call, customer)
    assert status == 422, body
    assert body["errors"] == [
        {"field": "amount", "message": "amount must be a string or a number"},
        {"field": "card.number", "message": "card.number must be a string or a whole number"},
    ]


@pytest.mark.parametrize(
    ("query", "fields"),
    [({"limit": "0", "status": "x"}, ["limit", "status"]), ({"limit": "abc", "from": "x", "to": "y"}, None)],
)
def test_every_query_problem_is_listed(customer: str, query: dict[str, str], fields: list[str] | None) -> None:
    status, body = send(valid_call("GET /payments", customer), query=query)
    assert status == 422, body
    assert_error(body)
    assert sorted(e["field"] for e in body["errors"]) == sorted(fields or query)


def test_an_unknown_route_has_the_error_shape(customer: str) -> None:
    call = valid_call("GET /payments", customer)
    call.path = "/nowhere"
    status, body = send(call)
    assert status == 404, body
    assert_error(body, "route not found", fields=[])


@pytest.mark.parametrize("route_key", ["GET /payments", "POST /payments", "POST /admin/vouchers"])
def test_refusals_of_the_caller_have_the_error_shape(customer: str, route_key: str) -> None:
    call = valid_call(route_key, customer)
    call.claims = None
    status, body = refused(call, customer)
    assert status == 401, body
    assert_error(body, "a valid bearer token is required", fields=[])


def test_a_decline_has_the_error_shape(customer: str, gateway_sim: Any) -> None:
    call = valid_call("POST /payments", customer)
    card = {"number": "4000000000000002", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    call.body = {"method": "credit_card", "amount": "10.00", "currency": "USD", "card": card}
    status, body = send(call)
    assert status == 402, body
    assert_error(body, fields=[])
    assert body["payment"]["status"] == "cancelled" and "next_action" in body
    [item] = stored_payments(customer)
    assert item["status"]["S"] == "cancelled"


def test_the_openapi_document_describes_the_error_shape() -> None:
    from payments.listing import OPENAPI_FILE

    document = json.loads(OPENAPI_FILE.read_text())
    error = document["components"]["schemas"]["ErrorOut"]
    assert set(error["required"]) == {"message", "errors"}
    item = document["components"]["schemas"][error["properties"]["errors"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(item["properties"]) == {"field", "message"}
    ours = {"$ref": "#/components/schemas/ErrorOut"}
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if "requestBody" in operation:
                assert {"400", "415", "422"} <= set(operation["responses"]), path
            for code, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if code >= "400" and code != "402" and schema is not None:
                    # API Gateway's own answers (401 authorizer, 404 no route, 429/503 throttled) have its shape
                    gateway = {"anyOf": [ours, {"$ref": "#/components/schemas/ApiGatewayError"}]}
                    assert schema == (gateway if code in ("401", "404", "429", "503") else ours), (path, code)
