"""Creates template.yaml's tables, buckets, secrets, event buses, queues, KMS keys and EventBridge rules in the
embedded AWS (or any endpoint boto3 is pointed at), and verifies the SES identity of the `EmailFrom` parameter's
domain.

Only what the handlers can observe is created: key schemas, indexes, TTL and streams for tables; buckets; secret
values; buses by name; queues with their visibility timeout and redrive policy; KMS keys (a fresh one each
start: docs/webhooks-outbound.md#locally); rules with their pattern and targets (the bus delivers to a rule's
queue as in AWS). IAM, queue policies, encryption, alarms and lifecycle settings have no local meaning.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from local.defaults import LOCAL_GATEWAY_ENV, gateway_credential
from local.template import STACK_NAME, Resolver, resources_of_type

TABLE = "AWS::DynamoDB::Table"
BUCKET = "AWS::S3::Bucket"
SECRET = "AWS::SecretsManager::Secret"  # noqa: S105 - a resource type, not a password
EVENT_BUS = "AWS::Events::EventBus"
QUEUE = "AWS::SQS::Queue"
KMS_KEY = "AWS::KMS::Key"
RULE = "AWS::Events::Rule"


def physical_name(logical_id: str, resource_type: str) -> str:
    """`payments-local-PaymentsTable`; bucket names must be lower case."""
    name = f"{STACK_NAME}-{logical_id}"
    return name.lower() if resource_type == BUCKET else name


@dataclass
class CreatedResources:
    """What `!Ref` and `!GetAtt` give for each created resource."""

    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)


def create_resources(template: Mapping[str, Any], region: str) -> CreatedResources:
    created = CreatedResources()
    resolver = Resolver(template, region=region)
    dynamodb = boto3.client("dynamodb", region_name=region)
    for logical_id, resource in resources_of_type(template, TABLE).items():
        name = physical_name(logical_id, TABLE)
        arn = _create_table(dynamodb, name, resolver.resolve(resource.get("Properties", {})))
        created.refs[logical_id] = name
        created.attributes[(logical_id, "Arn")] = arn
        stream = dynamodb.describe_table(TableName=name)["Table"].get("LatestStreamArn")
        if stream:
            created.attributes[(logical_id, "StreamArn")] = stream
    s3 = boto3.client("s3", region_name=region)
    for logical_id in resources_of_type(template, BUCKET):
        name = physical_name(logical_id, BUCKET)
        s3.create_bucket(Bucket=name)  # us-east-1 takes no LocationConstraint
        created.refs[logical_id] = name
        created.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
    secretsmanager = boto3.client("secretsmanager", region_name=region)
    for logical_id, resource in resources_of_type(template, SECRET).items():
        value = local_secret_value(resource.get("Properties", {}))
        answer = secretsmanager.create_secret(Name=physical_name(logical_id, SECRET), SecretString=value)
        created.refs[logical_id] = answer["ARN"]
    events = boto3.client("events", region_name=region)
    for logical_id in resources_of_type(template, EVENT_BUS):
        name = physical_name(logical_id, EVENT_BUS)
        created.refs[logical_id] = name
        created.attributes[(logical_id, "Arn")] = events.create_event_bus(Name=name)["EventBusArn"]
    sqs = boto3.client("sqs", region_name=region)
    for logical_id in resources_of_type(template, QUEUE):
        url = sqs.create_queue(QueueName=physical_name(logical_id, QUEUE))["QueueUrl"]
        created.refs[logical_id] = url
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        created.attributes[(logical_id, "Arn")] = arn
        created.attributes[(logical_id, "QueueName")] = physical_name(logical_id, QUEUE)
    resolved = Resolver(template, created.refs, created.attributes, region=region)
    for logical_id, resource in resources_of_type(template, QUEUE).items():
        attributes = _queue_attributes(resolved.resolve(resource.get("Properties", {})))
        if attributes:
            sqs.set_queue_attributes(QueueUrl=created.refs[logical_id], Attributes=attributes)
    kms = boto3.client("kms", region_name=region)
    for logical_id, resource in resources_of_type(template, KMS_KEY).items():
        key = kms.create_key(Description=str(resource.get("Properties", {}).get("Description", logical_id)))
        created.refs[logical_id] = key["KeyMetadata"]["KeyId"]
        created.attributes[(logical_id, "Arn")] = key["KeyMetadata"]["Arn"]
    for logical_id, resource in resources_of_type(template, RULE).items():
        name = physical_name(logical_id, RULE)
        created.refs[logical_id] = name
        created.attributes[(logical_id, "Arn")] = _create_rule(
            events, name, resolved.resolve(resource.get("Properties", {}))
        )
    sender = resolver.resolve({"Ref": "EmailFrom"}) if "EmailFrom" in template.get("Parameters", {}) else None
    if isinstance(sender, str) and "@" in sender:  # SES sends only from a verified identity: its domain here
        sesv2 = boto3.client("sesv2", region_name=region)
        with contextlib.suppress(sesv2.exceptions.AlreadyExistsException):
            sesv2.create_email_identity(EmailIdentity=sender.rpartition("@")[2])
    return created


def _queue_attributes(props: Mapping[str, Any]) -> dict[str, str]:
    """The attributes the handlers and the local queue poller observe: visibility timeout, redrive policy."""
    attributes = {}
    if "VisibilityTimeout" in props:
        attributes["VisibilityTimeout"] = str(props["VisibilityTimeout"])
    if isinstance(props.get("RedrivePolicy"), Mapping):
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    return attributes


def _create_rule(events: Any, name: str, props: Mapping[str, Any]) -> str:
    """A rule on its bus with its event pattern and its targets (their ARNs resolved to local resources); its ARN."""
    bus = str(props.get("EventBusName") or "default")
    pattern = json.dumps(props["EventPattern"])
    arn = str(events.put_rule(Name=name, EventBusName=bus, EventPattern=pattern, State="ENABLED")["RuleArn"])
    targets = [{"Id": str(target["Id"]), "Arn": str(target["Arn"])} for target in props.get("Targets", [])]
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
    return arn


def _create_table(client: Any, name: str, props: Mapping[str, Any]) -> str:
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(key):
            # Provisioned throughput has no meaning on demand (and locally).
            request[key] = [{k: v for k, v in index.items() if k != "ProvisionedThroughput"} for index in props[key]]
    if props.get("StreamSpecification"):
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    arn = client.create_table(**request)["TableDescription"]["TableArn"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )
    return str(arn)


def local_secret_value(props: Mapping[str, Any]) -> str:
    """The value a secret gets locally.

    A JSON secret whose keys name gateway credentials (`stripe_secret_key`, ...) gets the local credentials,
    so the handlers and the gateway simulator agree; a generated secret gets fresh random text.
    """
    template_value = props.get("SecretString")
    if isinstance(template_value, str):
        try:
            document = json.loads(template_value)
        except ValueError:
            return template_value
        if isinstance(document, dict):
            credentials = {name.lower(): gateway_credential(name) for name in LOCAL_GATEWAY_ENV}
            return json.dumps({key: credentials.get(key, value) for key, value in document.items()})
        return template_value
    return secrets.token_urlsafe(48)
