"""Receipts against the embedded AWS (docs/receipts.md): GET /payments/{id}/receipt through its handler, and the
receipt e-mail end to end: an event put on the bus as the publisher puts it, the template's rule delivering it to
the notify queue, the message received with boto3 and handed to the notify handler as Lambda's SQS event source
would, SES's raw message read back from the embedded AWS."""

from __future__ import annotations

import base64
import io
import json
import uuid
from typing import Any

import pytest
from pypdf import PdfReader

from local.mailbox import SentEmail, sent_emails
from payments import outbox
from payments.account import AccountSettings, Provider
from payments.events import EventPublisher
from payments.models import PaymentMethod, PaymentStatus
from payments.store import PaymentStore
from tests.conftest import FakeContext, aws_client, claims_for, http_event, load_function
from tests.integration.test_store_contract import payment

PROVIDER = Provider(name="Acme Telecom Ltd", address="1 Main Street\nSpringfield")


@pytest.fixture
def receipts_fn(aws: dict[str, str]) -> Any:
    return load_function("receipts")


@pytest.fixture
def notify_fn(aws: dict[str, str]) -> Any:
    return load_function("notify")


def get_receipt(fn: Any, customer: str | None, payment_id: str, *groups: str) -> dict[str, Any]:
    claims = claims_for(customer, *(groups or ("finance",))) if customer is not None else None
    event = http_event(
        "GET",
        f"/payments/{payment_id}/receipt",
        route="/payments/{id}/receipt",
        claims=claims,
        path_params={"id": payment_id},
    )
    answer: dict[str, Any] = fn.lambda_handler(event, FakeContext())
    return answer


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def save_settings(store: PaymentStore, customer: str, **extra: Any) -> None:
    settings = AccountSettings(account_currency="USD", provider=PROVIDER, **extra)
    store.put_account_settings(customer, settings.to_out().model_dump(mode="json"), "operator:test")


# ---- the route ---------------------------------------------------------------------------------------------------


def test_the_receipt_of_an_own_completed_payment_is_a_pdf(receipts_fn: Any, customer: str) -> None:
    store = PaymentStore()
    save_settings(store, customer)
    paid = payment(customer, PaymentStatus.COMPLETED, amount_minor=1250, surcharge_minor=50, reference="INV-9")
    store.add(paid)

    for group in ("finance", "support", "admin"):
        answer = get_receipt(receipts_fn, customer, paid.id, group)
        assert answer["statusCode"] == 200, (group, answer.get("body"))
        headers = {k.lower(): v for k, v in answer["headers"].items()}
        assert headers["content-type"] == "application/pdf"
        assert headers["content-disposition"] == f'inline; filename="receipt-{paid.id}.pdf"'
        assert headers["cache-control"] == "private, no-store"
        assert answer["isBase64Encoded"] is True
        text = pdf_text(base64.b64decode(answer["body"]))
        assert f"Payment ID {paid.id}" in text
        assert "Amount 12.50 USD" in text and "Surcharge 0.50 USD" in text and "Amount charged 13.00 USD" in text
        assert "Reference INV-9" in text
        assert "Acme Telecom Ltd" in text and "Springfield" in text


def test_anything_but_an_own_completed_payment_is_the_same_404(receipts_fn: Any, customer: str) -> None:
    store = PaymentStore()
    other = f"other-{uuid.uuid4().hex[:8]}"
    theirs = payment(other, PaymentStatus.COMPLETED)
    pending = payment(customer)
    cancelled = payment(customer, PaymentStatus.CANCELLED)
    for made in (theirs, pending, cancelled):
        store.add(made)

    for payment_id in (theirs.id, pending.id, cancelled.id, "pay_01JDQ4W6S8X7C3M2K9V5T0R1ZZ", "nonsense"):
        answer = get_receipt(receipts_fn, customer, payment_id)
        assert answer["statusCode"] == 404, payment_id
        assert json.loads(answer["body"])["message"] == f"payment {payment_id} not found"
        assert other not in answer["body"]


def test_a_receipt_needs_a_customer_token(receipts_fn: Any, customer: str) -> None:
    store = PaymentStore()
    paid = payment(customer, PaymentStatus.COMPLETED)
    store.add(paid)

    assert get_receipt(receipts_fn, None, paid.id)["statusCode"] == 401
    assert get_receipt(receipts_fn, customer, paid.id, "operator")["statusCode"] == 403


# ---- the e-mail, end to end ---------------------------------------------------------------------------------------


def put_completed(store: PaymentStore, customer: str, **extra: Any) -> tuple[str, str]:
    """A completed top-up stored, and its payment.completed event put on the bus as the publisher puts it."""
    values: dict[str, Any] = {"payer_email": f"{customer}@example.com", "balance_after_minor": 5000, **extra}
    paid = payment(customer, PaymentStatus.COMPLETED, **values)
    store.add(paid)
    event = store.outbox_event(outbox.event_id(paid))
    assert event is not None and event.detail_type == "payment.completed"
    assert EventPublisher(store_bus()).publish([event]) == (1, None)
    return paid.id, event.event_id


def store_bus() -> str:
    import os

    return os.environ["EVENT_BUS_NAME"]


def receive(queue_url: str, event_id: str) -> dict[str, Any]:
    """The queue's message of `event_id` (what other tests put on the bus meanwhile is dropped)."""
    sqs = aws_client("sqs")
    for _ in range(50):
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
        for message in answer.get("Messages", []):
            if json.loads(message["Body"])["detail"].get("event_id") == event_id:
                return dict(message)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError(f"{event_id} never reached the notify queue")


def again(queue_url: str, message: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The same message delivered again (its visibility timeout over)."""
    aws_client("sqs").change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    return receive(queue_url, event_id)


def lambda_event(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """SQS messages as Lambda's event source mapping passes them."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message["Attributes"],
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
        ]
    }


def mails_to(address: str) -> list[SentEmail]:
    return [email for email in sent_emails() if address in email.to]


@pytest.fixture
def notify_queue(aws: dict[str, str]) -> tuple[str, str]:
    url = aws["NotifyQueue"]
    arn = aws_client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def test_a_completed_top_up_is_e_mailed_once_with_its_receipt(
    notify_fn: Any, notify_queue: tuple[str, str], customer: str
) -> None:
    store, (url, arn) = PaymentStore(), notify_queue
    save_settings(store, customer, email_receipts=True, receipt_emails=("books@example.com",))
    payment_id, event_id = put_completed(store, customer, amount_minor=1250)

    message = receive(url, event_id)
    assert notify_fn.lambda_handler(lambda_event(message, arn), FakeContext()) == {"batchItemFailures": []}

    [email] = mails_to(f"{customer}@example.com")
    assert email.to == (f"{customer}@example.com", "books@example.com")
    assert email.subject == "Receipt for your payment of 12.50 USD"
    assert email.source == "receipts@example.com"
    [(filename, content_type, pdf)] = email.attachments
    assert (filename, content_type) == (f"receipt-{payment_id}.pdf", "application/pdf")
    text = pdf_text(pdf)
    assert f"Payment ID {payment_id}" in text and "Balance after 50.00 USD" in text
    marker = store.email_marker(event_id)
    assert marker is not None and marker["state"] == "sent" and marker["customer_id"] == customer

    # SQS (or EventBridge) delivers it again: nothing more is sent.
    assert notify_fn.lambda_handler(lambda_event(again(url, message, event_id), arn), FakeContext()) == {
        "batchItemFailures": []
    }
    assert len(mails_to(f"{customer}@example.com")) == 1


def test_receipts_off_send_nothing(notify_fn: Any, notify_queue: tuple[str, str], customer: str) -> None:
    store, (url, arn) = PaymentStore(), notify_queue
    save_settings(store, customer, email_receipts=False, receipt_emails=("books@example.com",))
    _, event_id = put_completed(store, customer)

    answer = notify_fn.lambda_handler(lambda_event(receive(url, event_id), arn), FakeContext())

    assert answer == {"batchItemFailures": []}
    assert mails_to(f"{customer}@example.com") == []
    assert store.email_marker(event_id) is None


def test_a_receipt_waits_for_its_balance_after_then_goes_without_it(
    notify_fn: Any, notify_queue: tuple[str, str], customer: str
) -> None:
    store, (url, arn) = PaymentStore(), notify_queue
    save_settings(store, customer, email_receipts=True)
    payment_id, event_id = put_completed(store, customer, balance_after_minor=None, method=PaymentMethod.PAYPAL)

    message = receive(url, event_id)
    for receives in (1, 2, 3):
        assert message["Attributes"]["ApproximateReceiveCount"] == str(receives)
        answer = notify_fn.lambda_handler(lambda_event(message, arn), FakeContext())
        assert answer == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
        assert mails_to(f"{customer}@example.com") == []
        message = again(url, message, event_id)

    assert message["Attributes"]["ApproximateReceiveCount"] == "4"
    assert notify_fn.lambda_handler(lambda_event(message, arn), FakeContext()) == {"batchItemFailures": []}
    [email] = mails_to(f"{customer}@example.com")
    text = pdf_text(email.attachments[0][2])
    assert f"Payment ID {payment_id}" in text and "Balance after" not in text
