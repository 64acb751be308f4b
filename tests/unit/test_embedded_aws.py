"""The embedded AWS's TransactWriteItems (local/embedded_aws.py): DynamoDB's all-or-nothing, at the cost of the
transaction alone. Checked through a real boto3 client against the session's moto server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def table(aws: dict[str, str]) -> Iterator[tuple[Any, str]]:
    client = boto3.client("dynamodb", endpoint_url=aws["endpoint"])
    name = f"tx-test-{uuid.uuid4().hex[:10]}"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield client, name
    client.delete_table(TableName=name)


def put(name: str, pk: str, **extra: Any) -> dict[str, Any]:
    return {"Put": {"TableName": name, "Item": {"PK": {"S": pk}, **extra}}}


def items(client: Any, name: str) -> dict[str, dict[str, Any]]:
    return {item["PK"]["S"]: item for item in client.scan(TableName=name)["Items"]}


def test_all_parts_are_written_when_every_condition_holds(table: tuple[Any, str]) -> None:
    client, name = table
    client.put_item(TableName=name, Item={"PK": {"S": "balance"}, "n": {"N": "5"}})
    client.transact_write_items(
        TransactItems=[
            {"Put": {**put(name, "a")["Put"], "ConditionExpression": "attribute_not_exists(PK)"}},
            {
                "Update": {
                    "TableName": name,
                    "Key": {"PK": {"S": "balance"}},
                    "UpdateExpression": "ADD n :x",
                    "ExpressionAttributeValues": {":x": {"N": "7"}},
                }
            },
        ]
    )
    assert items(client, name) == {"a": {"PK": {"S": "a"}}, "balance": {"PK": {"S": "balance"}, "n": {"N": "12"}}}


def test_a_failed_condition_writes_nothing_and_names_the_part(table: tuple[Any, str]) -> None:
    client, name = table
    client.put_item(TableName=name, Item={"PK": {"S": "taken"}, "owner": {"S": "first"}})
    with pytest.raises(ClientError) as refused:
        client.transact_write_items(
            TransactItems=[
                put(name, "new"),  # before the failing part: must not stay written
                {
                    "Put": {
                        **put(name, "taken", owner={"S": "second"})["Put"],
                        "ConditionExpression": "attribute_not_exists(PK)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ]
        )
    answer = refused.value.response
    assert answer["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in answer["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    assert answer["CancellationReasons"][1]["Item"] == {"PK": {"S": "taken"}, "owner": {"S": "first"}}
    assert items(client, name) == {"taken": {"PK": {"S": "taken"}, "owner": {"S": "first"}}}


def test_two_parts_on_one_item_are_refused(table: tuple[Any, str]) -> None:
    client, name = table
    with pytest.raises(ClientError) as refused:
        client.transact_write_items(TransactItems=[put(name, "x"), put(name, "x")])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert items(client, name) == {}


def test_a_part_that_fails_while_applied_puts_back_what_was_written_before_it(table: tuple[Any, str]) -> None:
    client, name = table
    client.put_item(TableName=name, Item={"PK": {"S": "old"}, "v": {"S": "kept"}})
    client.put_item(TableName=name, Item={"PK": {"S": "text"}, "n": {"S": "not a number"}})
    with pytest.raises(ClientError):
        client.transact_write_items(
            TransactItems=[
                put(name, "old", v={"S": "overwritten"}),
                put(name, "brand-new"),
                {
                    "Update": {
                        "TableName": name,
                        "Key": {"PK": {"S": "text"}},
                        "UpdateExpression": "ADD n :x",  # ADD of a number to a string: fails when applied
                        "ExpressionAttributeValues": {":x": {"N": "1"}},
                    }
                },
            ]
        )
    assert items(client, name) == {
        "old": {"PK": {"S": "old"}, "v": {"S": "kept"}},
        "text": {"PK": {"S": "text"}, "n": {"S": "not a number"}},
    }
