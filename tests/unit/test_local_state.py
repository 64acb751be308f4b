"""The local stack's state across restarts (local/state.py): capture, file, restore, and files it must refuse."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local import state
from local.dev import StartupError, read_state_settings

KEY = [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}]
ITEMS = [
    {"PK": {"S": "CUST#a"}, "SK": {"S": "PAY#1"}, "amount": {"N": "1250"}, "raw": {"B": b"\x00\xff"}},
    {
        "PK": {"S": "CUST#a"},
        "SK": {"S": "BALANCE"},
        "parts": {"BS": [b"\x01", b"\x02"]},
        "nested": {"M": {"list": {"L": [{"B": b"\xfe"}, {"S": "x"}, {"NULL": True}, {"BOOL": False}]}}},
        "tags": {"SS": ["b", "a"]},
    },
]


@pytest.fixture
def clients(aws: dict[str, str]) -> tuple[Any, Any]:
    return boto3.client("dynamodb", endpoint_url=aws["endpoint"]), boto3.client("s3", endpoint_url=aws["endpoint"])


@pytest.fixture
def resources(clients: tuple[Any, Any]) -> Iterator[tuple[str, str]]:
    """A table and a bucket of this test's own in the session's embedded AWS."""
    dynamodb, s3 = clients
    name = f"state-test-{uuid.uuid4().hex[:10]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=KEY,
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    s3.create_bucket(Bucket=name)
    yield name, name
    state.empty(dynamodb, s3, [name], [name])
    dynamodb.delete_table(TableName=name)
    s3.delete_bucket(Bucket=name)


def _fill(clients: tuple[Any, Any], table: str, bucket: str) -> None:
    dynamodb, s3 = clients
    for item in ITEMS:
        dynamodb.put_item(TableName=table, Item=item)
    s3.put_object(Bucket=bucket, Key="exports/a.csv", Body=b"\xef\xbb\xbfid\r\n1\r\n", ContentType="text/csv")
    s3.put_object(Bucket=bucket, Key="b", Body=b"", Metadata={"owner": "a"}, ContentDisposition="attachment")


def _stored(clients: tuple[Any, Any], table: str, bucket: str) -> tuple[list[Any], dict[str, Any]]:
    dynamodb, s3 = clients
    items = sorted(dynamodb.scan(TableName=table)["Items"], key=lambda item: item["SK"]["S"])
    objects = {}
    for listed in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        answer = s3.get_object(Bucket=bucket, Key=listed["Key"])
        objects[listed["Key"]] = (answer["Body"].read(), answer["ContentType"], answer.get("Metadata"))
    return items, objects


def test_items_and_objects_come_back_byte_for_byte_through_the_file(
    clients: tuple[Any, Any], resources: tuple[str, str], tmp_path: Path
) -> None:
    table, bucket = resources
    _fill(clients, table, bucket)
    before = _stored(clients, table, bucket)
    path = tmp_path / state.FILE_NAME
    size = state.write(state.capture(*clients, [table], [bucket]), path)
    assert size == path.stat().st_size

    state.empty(*clients, [table], [bucket])
    assert _stored(clients, table, bucket) == ([], {})
    state.restore(state.read(path), *clients)

    assert _stored(clients, table, bucket) == before
    assert before[1]["exports/a.csv"] == (b"\xef\xbb\xbfid\r\n1\r\n", "text/csv", {})


def test_secret_values_come_back_through_the_file(aws: dict[str, str], tmp_path: Path) -> None:
    """A generated key signs cursors and keys the request fingerprints: after a restart it must be the same one,
    or yesterday's Idempotency-Keys would look like other requests."""
    secrets = boto3.client("secretsmanager", endpoint_url=aws["endpoint"], region_name="us-east-1")
    name = f"state-test-{uuid.uuid4().hex[:10]}"
    secrets.create_secret(Name=name, SecretString="the key of yesterday")
    path = tmp_path / state.FILE_NAME
    state.write(state.capture(None, None, [], [], secrets, [name]), path)
    secrets.put_secret_value(SecretId=name, SecretString="a new random key")  # what a restart creates

    state.restore(state.read(path), None, None, secrets)
    assert secrets.get_secret_value(SecretId=name)["SecretString"] == "the key of yesterday"
    assert state.read(path).summary == "0 items, 0 objects, 1 secrets"


def test_an_interrupted_write_leaves_the_previous_file_whole_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / state.FILE_NAME
    state.write(state.State(), path)
    previous = path.read_bytes()
    unserialisable = state.State(tables={"t": state.TableState([["PK", "HASH", "S"]], [{"PK": {"S": {1, 2}}}])})
    with pytest.raises(TypeError):
        state.write(unserialisable, path)
    assert path.read_bytes() == previous
    assert [p.name for p in tmp_path.iterdir()] == [state.FILE_NAME]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x00\xff{", "not readable as JSON"),
        (b"[]", "format None"),
        (json.dumps({"format": "payments-local-state/0", "tables": {}, "buckets": {}}).encode(), "format 'payments"),
        (json.dumps({"format": state.FORMAT, "tables": {"t": {"items": []}}, "buckets": {}}).encode(), "malformed"),
        (json.dumps({"format": state.FORMAT, "tables": {}, "buckets": {"b": [{"key": "k", "body": "!"}]}}).encode(),
         "malformed"),
        (json.dumps({"format": state.FORMAT, "tables": {"t": {"key": [], "items": [{"a": {"B": "%%"}}]}},
                     "buckets": {}}).encode(), "malformed"),
    ],
    ids=["not JSON", "not an object", "older format", "no key", "no attributes", "bad base64"],
)  # fmt: skip
def test_a_file_this_version_did_not_write_is_refused_with_the_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / state.FILE_NAME
    path.write_bytes(content)
    with pytest.raises(state.UnusableState, match=reason):
        state.read(path)


def test_a_table_whose_key_changed_is_refused_before_anything_is_written(
    clients: tuple[Any, Any], resources: tuple[str, str]
) -> None:
    table, bucket = resources
    saved = state.State(
        tables={table: state.TableState([["PK", "HASH", "S"]], ITEMS)},
        buckets={bucket: [state.StoredObject("k", b"v")]},
    )
    with pytest.raises(state.UnusableState, match=rf"the key of table {table} changed \(PK HASH S -> PK HASH S, SK"):
        state.restore(saved, *clients)
    assert _stored(clients, table, bucket) == ([], {})

    gone = state.State(tables={f"{table}-gone": state.TableState([["PK", "HASH", "S"]])})
    with pytest.raises(state.UnusableState, match=r"is no longer in template\.yaml"):
        state.restore(gone, *clients)


@pytest.mark.parametrize(
    ("refused_item", "refused_object"),
    [
        ({"PK": {"S": "CUST#a"}}, state.StoredObject("k", b"v")),  # no sort key
        (None, state.StoredObject("k", b"v", {"NoSuchArgument": "x"})),  # botocore's message spans lines
    ],
    ids=["item without its sort key", "object with an unknown attribute"],
)
def test_what_the_embedded_aws_refuses_leaves_everything_empty_and_is_said_in_one_line(
    clients: tuple[Any, Any], resources: tuple[str, str], refused_item: Any, refused_object: state.StoredObject
) -> None:
    table, bucket = resources
    accepted = [{"PK": {"S": "CUST#a"}, "SK": {"S": f"PAY#{n:03}"}} for n in range(60)]  # two batches go in
    items = [*accepted, refused_item] if refused_item else accepted
    saved = state.State(
        tables={table: state.TableState([["PK", "HASH", "S"], ["SK", "RANGE", "S"]], items)},
        buckets={bucket: [state.StoredObject("first", b"in"), refused_object]},
    )
    with pytest.raises(state.UnusableState, match="refused part of it") as refused:
        state.restore(saved, *clients)
    assert "\n" not in str(refused.value)
    assert _stored(clients, table, bucket) == ([], {})


def test_state_settings_come_from_local_state_dir_and_local_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LOCAL_STATE", raising=False)
    monkeypatch.delenv("LOCAL_STATE_DIR", raising=False)
    assert read_state_settings() == (None, "keep")  # no folder: nothing kept (make dev sets one)
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    assert read_state_settings() == (tmp_path / state.FILE_NAME, "keep")
    monkeypatch.setenv("LOCAL_STATE", "Fresh")
    assert read_state_settings() == (tmp_path / state.FILE_NAME, "fresh")
    monkeypatch.setenv("LOCAL_STATE", "off")
    assert read_state_settings() == (None, "off")
    monkeypatch.setenv("LOCAL_STATE", "reset")
    with pytest.raises(StartupError, match=r"LOCAL_STATE='reset' is not one of keep, fresh, off"):
        read_state_settings()
