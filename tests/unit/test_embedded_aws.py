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


# ---- Query reads just its partition (local/embedded_aws.py `_partition_query`) ---------------------------------


@pytest.fixture
def ranged(aws: dict[str, str]) -> Iterator[tuple[Any, str]]:
    client = boto3.client("dynamodb", endpoint_url=aws["endpoint"])
    name = f"query-test-{uuid.uuid4().hex[:10]}"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield client, name
    client.delete_table(TableName=name)


def _condition(kind: str, low: str, high: str) -> tuple[str, dict[str, str], Any]:
    """A key condition, its values, and which sort keys DynamoDB's rules keep."""
    return {
        "all": ("PK = :p", {}, lambda sk: True),
        "between": ("PK = :p AND SK BETWEEN :a AND :b", {":a": low, ":b": high}, lambda sk: low <= sk <= high),
        "begins": ("PK = :p AND begins_with(SK, :a)", {":a": low[:3]}, lambda sk: sk.startswith(low[:3])),
        "after": ("PK = :p AND SK > :a", {":a": low}, lambda sk: sk > low),
    }[kind]


def test_queries_answer_as_dynamodb_does_over_many_partitions(ranged: tuple[Any, str]) -> None:
    """Random queries (a range condition or none, both directions, limits, paging, a filter) against a table of
    12 partitions: each answers exactly the items DynamoDB's rules select, in its order, page by page."""
    import random

    client, name = ranged
    rng = random.Random(7)
    table: dict[str, list[str]] = {}
    for n in range(300):
        pk, sk = f"P{rng.randrange(12):02d}", f"S{rng.randrange(10_000):05d}-{n}"
        table.setdefault(pk, []).append(sk)
        item = {"PK": {"S": pk}, "SK": {"S": sk}, "n": {"N": str(n % 7)}}
        client.put_item(TableName=name, Item=item)
    for _ in range(60):
        pk = rng.choice(sorted(table))
        low, high = sorted(f"S{rng.randrange(10_000):05d}" for _ in range(2))
        kind = rng.choice(["all", "between", "begins", "after"])
        expression, extra, keeps = _condition(kind, low, high)
        forward, limit, odd_only = rng.random() < 0.5, rng.choice([None, 1, 3, 10]), rng.random() < 0.3
        expected = sorted((sk for sk in table[pk] if keeps(sk)), reverse=not forward)
        request: dict[str, Any] = {
            "TableName": name,
            "KeyConditionExpression": expression,
            "ExpressionAttributeValues": {":p": {"S": pk}, **{k: {"S": v} for k, v in extra.items()}},
            "ScanIndexForward": forward,
        }
        if limit:
            request["Limit"] = limit
        if odd_only:
            request["FilterExpression"] = "n IN (:one, :three, :five)"
            request["ExpressionAttributeValues"] |= {":one": {"N": "1"}, ":three": {"N": "3"}, ":five": {"N": "5"}}
        got: list[str] = []
        while True:
            page = client.query(**request)
            assert not limit or page["ScannedCount"] <= limit
            got += [item["SK"]["S"] for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if odd_only:
            numbers = {f"{sk}": int(sk.rsplit("-", 1)[1]) % 7 for sk in expected}
            expected = [sk for sk in expected if numbers[sk] in (1, 3, 5)]
        assert got == expected, (pk, kind, forward, limit, odd_only)
