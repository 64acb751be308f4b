"""The embedded AWS's state across restarts of `make dev`: the items of template.yaml's tables, the
objects of its buckets, and the values of its secrets (a generated key signs cursors and keys request
fingerprints: a new one on every start would make yesterday's cursors and Idempotency-Keys mean nothing).

On stop (Ctrl-C, SIGTERM) the stack scans each table and reads each object through boto3, as any client
would, and writes one JSON file, `<LOCAL_STATE_DIR>/aws-state.json`, to a temporary file first and then
renamed over the old one, so a stop cut short leaves the previous file whole. On start, once the tables and
buckets exist, it writes the items and objects back: indexes are rebuilt from the current template.

A file that cannot be used (not JSON, another format, a table whose key changed or that is gone, an item
DynamoDB refuses) never stops the stack: it starts empty, says why in one line, and keeps the file aside as
`aws-state.json.unusable`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

FORMAT = "payments-local-state/2"  # change it when the layout below changes: older files are then refused
FILE_NAME = "aws-state.json"
UNUSABLE_SUFFIX = ".unusable"
MODES = ("keep", "fresh", "off")  # LOCAL_STATE: restore and save, save only (start empty), neither
# What an object keeps besides its bytes: what a client can read back with GetObject.
_OBJECT_ATTRIBUTES = (
    "ContentType",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "CacheControl",
    "ServerSideEncryption",
    "Metadata",
)
_BATCH_WRITE_LIMIT = 25  # items per BatchWriteItem, DynamoDB's limit


class UnusableState(Exception):
    """The saved state cannot be restored; the message says why in a few words."""


@dataclass
class TableState:
    key: list[list[str]]  # [[attribute, HASH|RANGE, S|N|B], ...]: restored only into a table keyed the same
    items: list[dict[str, Any]] = field(default_factory=list)  # as the DynamoDB API gives them


@dataclass
class StoredObject:
    key: str
    body: bytes
    attributes: dict[str, Any] = field(default_factory=dict)  # _OBJECT_ATTRIBUTES that were set


@dataclass
class State:
    tables: dict[str, TableState] = field(default_factory=dict)  # by physical table name
    buckets: dict[str, list[StoredObject]] = field(default_factory=dict)  # by bucket name
    secrets: dict[str, str] = field(default_factory=dict)  # SecretString by secret name

    @property
    def summary(self) -> str:
        items = sum(len(table.items) for table in self.tables.values())
        objects = sum(len(objects) for objects in self.buckets.values())
        return f"{items} items, {objects} objects, {len(self.secrets)} secrets"


# ---- reading the embedded AWS -------------------------------------------------------------------


def table_key(dynamodb: Any, table: str) -> list[list[str]]:
    described = dynamodb.describe_table(TableName=table)["Table"]
    types = {a["AttributeName"]: a["AttributeType"] for a in described["AttributeDefinitions"]}
    return [[k["AttributeName"], k["KeyType"], types[k["AttributeName"]]] for k in described["KeySchema"]]


def capture(
    dynamodb: Any,
    s3: Any,
    tables: Iterable[str],
    buckets: Iterable[str],
    secretsmanager: Any = None,
    secrets: Iterable[str] = (),
) -> State:
    """Every item of `tables`, every object of `buckets`, and the value of each of `secrets`."""
    state = State()
    for name in secrets:
        state.secrets[name] = secretsmanager.get_secret_value(SecretId=name)["SecretString"]
    for table in tables:
        items = [item for page in dynamodb.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]
        state.tables[table] = TableState(table_key(dynamodb, table), items)
    for bucket in buckets:
        objects = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for listed in page.get("Contents", []):
                answer = s3.get_object(Bucket=bucket, Key=listed["Key"])
                kept = {name: answer[name] for name in _OBJECT_ATTRIBUTES if answer.get(name)}
                objects.append(StoredObject(listed["Key"], answer["Body"].read(), kept))
        state.buckets[bucket] = objects
    return state


# ---- writing it back ----------------------------------------------------------------------------


def restore(state: State, dynamodb: Any, s3: Any, secretsmanager: Any = None) -> None:
    """Put `state` into the (empty) tables and buckets and set its secrets' values; UnusableState leaves the
    tables and buckets empty again (and the secrets as template.yaml made them)."""
    for table, saved in state.tables.items():
        try:
            current = table_key(dynamodb, table)
        except ClientError as exc:
            raise UnusableState(f"table {table} is no longer in template.yaml") from exc
        if current != saved.key:
            raise UnusableState(f"the key of table {table} changed ({_key_text(saved.key)} -> {_key_text(current)})")
    for bucket in state.buckets:
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            raise UnusableState(f"bucket {bucket} is no longer in template.yaml") from exc
    try:
        for table, saved in state.tables.items():
            for batch in _chunks(saved.items, _BATCH_WRITE_LIMIT):
                requests: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in batch]}
                while requests:  # DynamoDB may hand back part of a batch to send again
                    requests = dynamodb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
        for bucket, objects in state.buckets.items():
            for stored in objects:
                s3.put_object(Bucket=bucket, Key=stored.key, Body=stored.body, **stored.attributes)
        if secretsmanager is not None:
            for name, value in state.secrets.items():
                secretsmanager.put_secret_value(SecretId=name, SecretString=value)
    except (ClientError, BotoCoreError) as exc:
        empty(dynamodb, s3, state.tables, state.buckets)
        raise UnusableState(f"the embedded AWS refused part of it ({one_line(exc)})") from exc


def empty(dynamodb: Any, s3: Any, tables: Iterable[str], buckets: Iterable[str]) -> None:
    """Delete every item of `tables` and every object of `buckets`."""
    for table in tables:
        key_names = [name for name, _, _ in table_key(dynamodb, table)]
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                dynamodb.delete_item(TableName=table, Key={name: item[name] for name in key_names})
    for bucket in buckets:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for listed in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=listed["Key"])


def _key_text(key: list[list[str]]) -> str:
    return ", ".join(f"{name} {kind} {type_}" for name, kind, type_ in key)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---- the file -----------------------------------------------------------------------------------


def write(state: State, path: Path) -> int:
    """Write `state` to `path` atomically; returns its size in bytes."""
    document = {
        "format": FORMAT,
        "tables": {
            name: {"key": table.key, "items": [_item_to_json(item) for item in table.items]}
            for name, table in state.tables.items()
        },
        "buckets": {
            name: [{"key": o.key, "body": _b64(o.body), "attributes": o.attributes} for o in objects]
            for name, objects in state.buckets.items()
        },
        "secrets": state.secrets,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(document, file, separators=(",", ":"))
            file.flush()
            os.fsync(file.fileno())  # the rename must not reach the disk before the bytes do
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path.stat().st_size


def read(path: Path) -> State:
    """The state saved in `path`; UnusableState if it is not a file this version wrote."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UnusableState(f"not readable as JSON ({one_line(exc, 80)})") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise UnusableState(f"format {found!r}, this version reads {FORMAT!r}")
    try:
        return State(
            tables={
                str(name): TableState(
                    key=[[str(part) for part in element] for element in table["key"]],
                    items=[_item_from_json(item) for item in table["items"]],
                )
                for name, table in document["tables"].items()
            },
            buckets={
                str(name): [
                    StoredObject(
                        str(stored["key"]), base64.b64decode(stored["body"], validate=True), dict(stored["attributes"])
                    )
                    for stored in objects
                ]
                for name, objects in document["buckets"].items()
            },
            secrets={str(name): str(value) for name, value in document["secrets"].items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnusableState(f"malformed ({type(exc).__name__}: {one_line(exc, 80)})") from exc


def one_line(error: BaseException, limit: int = 200) -> str:
    """An error's message on one line (botocore's span several), cut at `limit` characters."""
    return " ".join(str(error).split())[:limit]


def set_aside(path: Path) -> Path:
    """Move an unusable file out of the way, kept for a look; returns where it went."""
    aside = path.with_name(path.name + UNUSABLE_SUFFIX)
    os.replace(path, aside)
    return aside


# DynamoDB's JSON is JSON but for binary values (B, BS), which the API gives as bytes: stored as base64.


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _value_to_json(value: Mapping[str, Any]) -> dict[str, Any]:
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {"B": _b64(inner)}
    if kind == "BS":
        return {"BS": [_b64(b) for b in inner]}
    if kind == "M":
        return {"M": _item_to_json(inner)}
    if kind == "L":
        return {"L": [_value_to_json(v) for v in inner]}
    return {kind: inner}


def _value_from_json(value: Mapping[str, Any]) -> dict[str, Any]:
    (kind, inner), *rest = value.items()
    if rest:
        raise ValueError(f"an attribute value has one type, not {len(rest) + 1}")
    if kind == "B":
        return {"B": base64.b64decode(inner, validate=True)}
    if kind == "BS":
        return {"BS": [base64.b64decode(b, validate=True) for b in inner]}
    if kind == "M":
        return {"M": _item_from_json(inner)}
    if kind == "L":
        return {"L": [_value_from_json(v) for v in inner]}
    return {kind: inner}


def _item_to_json(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _value_to_json(value) for name, value in item.items()}


def _item_from_json(item: Mapping[str, Any]) -> dict[str, Any]:
    return {str(name): _value_from_json(value) for name, value in item.items()}
