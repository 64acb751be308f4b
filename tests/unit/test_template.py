"""Infrastructure checks on template.yaml: routes (docs/api.md#routes), auth, least privilege, data protection,
cfn-lint.

cfn-lint validates SAM resources against a schema only: it neither checks the IAM actions inside a function's
`Policies` nor the keys of an HttpApi event, so those are asserted here.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.data import AdditionalSpecs
from cfnlint.helpers import load_resource

from payments.registry import GATEWAYS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"

# docs/api.md#routes, route by route, with the function that must own it.
SPEC_ROUTES = {
    ("GET", "/payments"): "ListPaymentsFunction",
    ("GET", "/payments/{id}"): "ListPaymentsFunction",
    ("GET", "/payments/{id}/receipt"): "ReceiptsFunction",
    ("GET", "/balance"): "ListPaymentsFunction",
    ("GET", "/openapi.json"): "ListPaymentsFunction",
    ("POST", "/payments"): "MakePaymentFunction",
    ("POST", "/payments/exports"): "ExportCsvFunction",
    ("POST", "/webhooks/{provider}"): "WebhooksFunction",
    ("POST", "/admin/customers/{customer_id}/payments/{id}/complete"): "AdminFunction",
    ("POST", "/admin/customers/{customer_id}/payments/{id}/cancel"): "AdminFunction",
    ("POST", "/admin/customers/{customer_id}/charges"): "AdminFunction",
    ("POST", "/admin/vouchers"): "AdminFunction",
    ("GET", "/payment-options"): "MakePaymentFunction",
    ("GET", "/admin/customers/{customer_id}/settings"): "AdminFunction",
    ("PUT", "/admin/customers/{customer_id}/settings"): "AdminFunction",
    ("GET", "/alerts/low-balance"): "AccountFunction",
    ("PUT", "/alerts/low-balance"): "AccountFunction",
    ("POST", "/payment-methods"): "AccountFunction",
    ("GET", "/payment-methods"): "AccountFunction",
    ("DELETE", "/payment-methods/{id}"): "AccountFunction",
    ("POST", "/payment-methods/{id}/default"): "AccountFunction",
    ("GET", "/auto-topup"): "AccountFunction",
    ("PUT", "/auto-topup"): "AccountFunction",
    ("GET", "/admin/customers/{customer_id}/auto-topup"): "AdminFunction",
    ("POST", "/admin/customers/{customer_id}/auto-topup/disable"): "AdminFunction",
    ("POST", "/admin/webhook-endpoints"): "WebhookEndpointsFunction",
    ("GET", "/admin/webhook-endpoints"): "WebhookEndpointsFunction",
    ("DELETE", "/admin/webhook-endpoints/{id}"): "WebhookEndpointsFunction",
    ("GET", "/admin/webhook-endpoints/{id}/deliveries"): "WebhookEndpointsFunction",
}
PUBLIC_ROUTES = {("GET", "/openapi.json"), ("POST", "/webhooks/{provider}")}
FUNCTION_FOLDERS = {
    "ListPaymentsFunction": "list_payments",
    "MakePaymentFunction": "make_payment",
    "ExportCsvFunction": "export_csv",
    "WebhooksFunction": "webhooks",
    "AdminFunction": "admin",
    "ReconcileFunction": "reconcile",
    "PublishEventsFunction": "publish_events",
    "AccountFunction": "account",
    "ReceiptsFunction": "receipts",
    "NotifyFunction": "notify",
    "WebhookEndpointsFunction": "webhook_endpoints",
    "DeliverWebhooksFunction": "deliver_webhooks",
    "AutoTopupFunction": "autotopup",
}
WRITE_ACTION = re.compile(r"^(Put|Update|Delete|TransactWrite|BatchWrite|Create|PartiQL(Insert|Update|Delete)|Restore)")
# docs/api.md#configuration: the gateway credentials that live in the Secrets Manager secret in AWS.
GATEWAY_CREDENTIALS = {entry.secret_key(name) for entry in GATEWAYS for name in entry.credentials}


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short tags (!Ref, !Sub, !GetAtt, ...) as their long form."""


def _construct_intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE_PATH.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def _resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == type_}


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Function properties with Globals.Function applied underneath (as SAM does)."""
    defaults = template["Globals"]["Function"]
    return {
        name: {**defaults, **res["Properties"]}
        for name, res in _resources(template, "AWS::Serverless::Function").items()
    }


def _http_routes(props: dict[str, Any]) -> list[tuple[tuple[str, str], dict[str, Any]]]:
    return [
        ((event["Properties"]["Method"].upper(), event["Properties"]["Path"]), event["Properties"])
        for event in props.get("Events", {}).values()
        if event["Type"] == "HttpApi"
    ]


def _statements(props: dict[str, Any]) -> list[dict[str, Any]]:
    """The function's IAM statements; only inline documents are allowed so every grant is visible here."""
    statements: list[dict[str, Any]] = []
    for policy in props.get("Policies", []):
        assert isinstance(policy, dict), f"not an inline policy document: {policy!r}"
        assert "Statement" in policy, f"not an inline policy document: {policy!r}"
        statements.extend(policy["Statement"])
    return statements


def _statement_actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def _actions(props: dict[str, Any]) -> set[str]:
    return {action for statement in _statements(props) for action in _statement_actions(statement)}


def _resource_refs(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def _log_group(template: dict[str, Any], ref: Any) -> dict[str, Any]:
    assert isinstance(ref, dict), ref
    assert set(ref) == {"Ref"}, ref
    log_group = template["Resources"][ref["Ref"]]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    return log_group


def test_every_function_runs_python_312_or_later_with_the_layer_and_tracing(template: dict[str, Any]) -> None:
    functions = _functions(template)
    layer = template["Resources"]["SharedLayer"]

    assert set(functions) == set(FUNCTION_FOLDERS)
    for name, props in functions.items():
        match = re.fullmatch(r"python3\.(\d+)", props["Runtime"])
        assert match, (name, props["Runtime"])
        assert int(match.group(1)) >= 12, (name, props["Runtime"])
        assert props["Runtime"] in layer["Properties"]["CompatibleRuntimes"]
        assert props["Tracing"] == "Active"
        assert props["Layers"] == [{"Ref": "SharedLayer"}]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "shared/"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert re.search(r"^build-SharedLayer:", (ROOT / "shared" / "Makefile").read_text(), re.MULTILINE)


def test_each_function_is_one_folder_with_an_app_handler(template: dict[str, Any]) -> None:
    for name, props in _functions(template).items():
        folder = FUNCTION_FOLDERS[name]
        assert props["CodeUri"] == f"functions/{folder}/"
        assert props["Handler"] == "app.lambda_handler"
        assert (ROOT / "functions" / folder / "app.py").is_file(), f"sam build needs functions/{folder}/app.py"


def test_environment_names_every_resource_the_handlers_use(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]

    assert variables["PAYMENTS_TABLE_NAME"] == {"Ref": "PaymentsTable"}
    assert variables["IDEMPOTENCY_TABLE_NAME"] == {"Ref": "IdempotencyTable"}
    assert variables["EXPORTS_BUCKET_NAME"] == {"Ref": "ExportsBucket"}
    assert variables["GATEWAY_SECRET_ARN"] == {"Ref": "GatewaySecret"}
    assert variables["CURSOR_SECRET_ARN"] == {"Ref": "CursorKeySecret"}
    assert variables["MAX_PAYMENT_AMOUNT"] == {"Ref": "MaxPaymentAmount"}
    assert variables["EXPORT_URL_EXPIRY_SECONDS"] == {"Ref": "ExportUrlExpirySeconds"}
    assert variables["PUBLIC_BASE_URL"] == {"Ref": "PublicBaseUrl"}
    assert template["Parameters"]["ExportUrlExpirySeconds"]["Default"] == 900  # docs/api.md#csv-exports: 15 minutes


def test_every_spec_route_is_declared_by_exactly_one_function(template: dict[str, Any]) -> None:
    owners: dict[tuple[str, str], list[str]] = {}
    for name, props in _functions(template).items():
        for route, _ in _http_routes(props):
            owners.setdefault(route, []).append(name)

    for route, function in SPEC_ROUTES.items():
        assert owners.get(route) == [function], route
    assert [route for route, names in owners.items() if len(names) > 1] == []


def test_http_events_are_plain_and_attached_to_the_api(template: dict[str, Any]) -> None:
    # The local stack reads these keys; a typo (e.g. `Pathh`) would silently drop a route.
    for props in _functions(template).values():
        for (method, path), properties in _http_routes(props):
            assert set(properties) <= {"ApiId", "Path", "Method", "Auth"}, path
            assert properties["ApiId"] == {"Ref": "HttpApi"}
            assert method in {"GET", "POST", "PUT", "DELETE"}
            assert path.startswith("/")


def test_only_openapi_and_webhooks_skip_the_jwt_authorizer(template: dict[str, Any]) -> None:
    auth = template["Resources"]["HttpApi"]["Properties"]["Auth"]
    jwt = auth["Authorizers"][auth["DefaultAuthorizer"]]
    seen = set()

    assert auth["DefaultAuthorizer"] == "CognitoJwt"
    assert jwt["IdentitySource"] == "$request.header.Authorization"
    assert jwt["JwtConfiguration"] == {"issuer": {"Ref": "CognitoIssuerUrl"}, "audience": {"Ref": "CognitoAudience"}}
    for props in _functions(template).values():
        for route, properties in _http_routes(props):
            authorizer = properties.get("Auth", {}).get("Authorizer", auth["DefaultAuthorizer"])
            assert authorizer == ("NONE" if route in PUBLIC_ROUTES else "CognitoJwt"), route
            seen.add(route)
    assert seen >= PUBLIC_ROUTES


def test_cors_allows_only_the_portal_origin_and_needed_headers(template: dict[str, Any]) -> None:
    cors = template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]

    assert cors["AllowOrigins"] == [{"Ref": "PortalOrigin"}]
    assert set(cors["AllowHeaders"]) == {"Authorization", "Content-Type", "Idempotency-Key"}
    assert set(cors["AllowMethods"]) == {"GET", "POST", "PUT", "DELETE", "OPTIONS"}


def test_routes_are_throttled_and_access_logged(template: dict[str, Any]) -> None:
    api = template["Resources"]["HttpApi"]["Properties"]
    params = template["Parameters"]
    settings = api["DefaultRouteSettings"]

    assert settings["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ThrottlingBurstLimit"}
    assert params["ThrottlingRateLimit"]["Default"] > 0
    assert params["ThrottlingBurstLimit"]["Default"] >= params["ThrottlingRateLimit"]["Default"]
    log_group_name = api["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    log_group = _log_group(template, {"Ref": log_group_name})
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    access_log = json.loads(api["AccessLogSettings"]["Format"])
    assert access_log["requestId"] == "$context.requestId"
    assert access_log["routeKey"] == "$context.routeKey"
    assert access_log["status"] == "$context.status"
    assert access_log["sourceIp"] == "$context.identity.sourceIp"
    assert access_log["sub"] == "$context.authorizer.claims.sub"


def test_every_function_logs_to_a_group_with_retention(template: dict[str, Any]) -> None:
    for name, props in _functions(template).items():
        log_group = _log_group(template, props["LoggingConfig"]["LogGroup"])
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def test_policies_name_real_actions_and_specific_resources(template: dict[str, Any]) -> None:
    known = load_resource(AdditionalSpecs, "Policies.json")
    for name, props in _functions(template).items():
        for statement in _statements(props):
            assert statement["Effect"] == "Allow"
            assert "*" not in _resource_refs(statement), (name, statement)
        for action in _actions(props):
            service, _, verb = action.partition(":")
            assert verb.lower() in known[service]["Actions"], (name, action)


def test_list_function_cannot_write_or_read_gateway_credentials(template: dict[str, Any]) -> None:
    props = _functions(template)["ListPaymentsFunction"]
    actions = _actions(props)

    assert actions == {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "secretsmanager:GetSecretValue"}
    assert [a for a in actions if WRITE_ACTION.match(a.partition(":")[2]) or "*" in a] == []
    secret_refs = [
        ref
        for statement in _statements(props)
        if "secretsmanager:GetSecretValue" in _statement_actions(statement)
        for ref in _resource_refs(statement)
    ]
    assert secret_refs == [{"Ref": "CursorKeySecret"}]


def test_only_the_export_function_touches_s3_and_only_under_exports(template: dict[str, Any]) -> None:
    functions = _functions(template)
    for name, props in functions.items():
        s3_actions = {a for a in _actions(props) if a.lower().startswith("s3:")}
        assert s3_actions == set() or name == "ExportCsvFunction", name
    assert not any(a.lower().startswith("s3:") for a in _actions(functions["WebhooksFunction"]))
    for statement in _statements(functions["ExportCsvFunction"]):
        if any(a.startswith("s3:") for a in _statement_actions(statement)):
            assert _resource_refs(statement) == [{"Fn::Sub": "${ExportsBucket.Arn}/exports/*"}]


def test_export_function_may_invoke_only_itself(template: dict[str, Any]) -> None:
    props = _functions(template)["ExportCsvFunction"]
    invoke = [s for s in _statements(props) if "lambda:InvokeFunction" in _statement_actions(s)]

    assert props["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-export-csv"}
    assert len(invoke) == 1
    assert invoke[0]["Resource"]["Fn::Sub"].endswith(":function:${AWS::StackName}-export-csv")
    assert props["Timeout"] == 900


def test_tables_are_on_demand_recoverable_encrypted_with_ttl(template: dict[str, Any]) -> None:
    tables = _resources(template, "AWS::DynamoDB::Table")
    ttl_attribute = {"PaymentsTable": "expires_at", "IdempotencyTable": "expiration"}

    assert set(tables) == set(ttl_attribute)
    for name, table in tables.items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert props["SSESpecification"]["SSEEnabled"] is True, name
        assert props["TimeToLiveSpecification"] == {"AttributeName": ttl_attribute[name], "Enabled": True}, name
    payments = tables["PaymentsTable"]
    indexes = {gsi["IndexName"]: gsi for gsi in payments["Properties"]["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"GSI1", "GSI2"}
    assert [k["AttributeName"] for k in indexes["GSI2"]["KeySchema"]] == ["GSI2PK", "GSI2SK"]
    assert payments["DeletionPolicy"] == payments["UpdateReplacePolicy"] == "Retain"
    assert tables["IdempotencyTable"]["Properties"]["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]


def test_exports_bucket_is_private_encrypted_and_expires_old_exports(template: dict[str, Any]) -> None:
    (bucket,) = _resources(template, "AWS::S3::Bucket").values()
    props = bucket["Properties"]
    rules = props["LifecycleConfiguration"]["Rules"]
    expiry = [r for r in rules if "ExpirationInDays" in r]

    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert encryption["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert expiry == [
        {
            "Id": "ExpireOldExports",
            "Status": "Enabled",
            "Prefix": "exports/",
            "ExpirationInDays": {"Ref": "ExportRetentionDays"},
        }
    ]
    assert any(r.get("AbortIncompleteMultipartUpload") == {"DaysAfterInitiation": 1} for r in rules)


def test_exports_bucket_refuses_plain_http(template: dict[str, Any]) -> None:
    (policy,) = _resources(template, "AWS::S3::BucketPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]

    assert policy["Properties"]["Bucket"] == {"Ref": "ExportsBucket"}
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_gateway_secret_holds_empty_credential_keys_only(template: dict[str, Any]) -> None:
    secret = template["Resources"]["GatewaySecret"]["Properties"]
    values = json.loads(secret["SecretString"])

    assert set(values) == GATEWAY_CREDENTIALS
    assert set(values.values()) == {""}  # operators fill them after deploy; nothing real in git
    cursor = template["Resources"]["CursorKeySecret"]["Properties"]["GenerateSecretString"]
    assert cursor["PasswordLength"] >= 32


def test_gateway_credentials_reach_only_the_functions_that_talk_to_gateways(template: dict[str, Any]) -> None:
    readers = {
        name
        for name, props in _functions(template).items()
        for statement in _statements(props)
        if {"Ref": "GatewaySecret"} in _resource_refs(statement)
    }

    # AccountFunction: saved cards are Stripe Customers and SetupIntents (docs/saved-cards.md); AutoTopupFunction:
    # the off-session charges (docs/auto-topup.md)
    assert readers == {
        "MakePaymentFunction", "WebhooksFunction", "AdminFunction", "ReconcileFunction", "AccountFunction",
        "AutoTopupFunction",
    }  # fmt: skip


def test_reconciliation_runs_on_a_schedule(template: dict[str, Any]) -> None:
    events = _functions(template)["ReconcileFunction"]["Events"]

    assert [e["Properties"]["Schedule"] for e in events.values() if e["Type"] in {"Schedule", "ScheduleV2"}] == [
        "rate(15 minutes)"
    ]
    assert Counter(e["Type"] for e in events.values())["HttpApi"] == 0


def test_the_outbox_is_published_from_the_tables_stream_in_order_and_never_dropped(template: dict[str, Any]) -> None:
    """docs/events.md: new outbox items only, in stream order, a failed record delivered again (never skipped
    unseen: past the retry window its batch goes to the failure queue), PutEvents on the service's bus alone."""
    table = template["Resources"]["PaymentsTable"]["Properties"]
    props = _functions(template)["PublishEventsFunction"]
    [event] = props["Events"].values()
    source = event["Properties"]

    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert event["Type"] == "DynamoDB" and source["Stream"] == {"Fn::GetAtt": ["PaymentsTable", "StreamArn"]}
    assert source["StartingPosition"] == "TRIM_HORIZON" and source["ParallelizationFactor"] == 1
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["MaximumRetryAttempts"] == -1 and 0 < source["MaximumRecordAgeInSeconds"] < 24 * 3600
    failures = source["DestinationConfig"]["OnFailure"]
    assert failures["Destination"] == {"Fn::GetAtt": ["PublishEventsFailures", "Arn"]}
    outbox_items, balance_items = [json.loads(f["Pattern"]) for f in source["FilterCriteria"]["Filters"]]
    assert outbox_items == {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["outbox-event"]}}}}
    # docs/alerts.md: the balance item's changes, for the low-balance alerts and the payments' balance_after
    assert balance_items == {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"SK": {"S": ["BALANCE"]}}}}
    assert props["Environment"]["Variables"]["EVENT_BUS_NAME"] == {"Ref": "EventBus"}
    assert template["Resources"]["EventBus"]["Type"] == "AWS::Events::EventBus"
    assert {s["Sid"]: (s["Action"], s["Resource"]) for s in _statements(props)} == {
        "PublishEvents": ("events:PutEvents", {"Fn::GetAtt": ["EventBus", "Arn"]}),
        "KeepFailedBatches": ("sqs:SendMessage", {"Fn::GetAtt": ["PublishEventsFailures", "Arn"]}),
        "JudgeBalanceChanges": (
            ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"],
            {"Fn::GetAtt": ["PaymentsTable", "Arn"]},
        ),
    }
    writers = {n for n, p in _functions(template).items() if "events:PutEvents" in _actions(p)}
    assert writers == {"PublishEventsFunction"}


def test_receipts_are_read_only_and_e_mails_are_sent_once_from_the_notify_queue(template: dict[str, Any]) -> None:
    """docs/receipts.md: the receipt route may only read the table; the notify function reads it, claims and marks
    e-mail markers, sends as the EmailFrom identity only, and is fed by the rule on the service's bus through a
    queue only that rule may send to, whose failures go to an alarmed dead-letter queue."""
    functions, resources = _functions(template), template["Resources"]
    table = {"Fn::GetAtt": ["PaymentsTable", "Arn"]}
    receipts = functions["ReceiptsFunction"]
    assert {s["Sid"]: (s["Action"], s["Resource"]) for s in _statements(receipts)} == {
        "ReadPayments": ("dynamodb:GetItem", table)
    }
    assert "Environment" not in receipts or "EMAIL_FROM" not in receipts["Environment"]["Variables"]

    notify = functions["NotifyFunction"]
    statements = {s["Sid"]: s for s in _statements(notify)}
    assert set(statements) == {"ReadNoticeQueue", "ReadPaymentsAndMarkEmails", "SendEmail"}
    reads = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
    assert set(statements["ReadNoticeQueue"]["Action"]) == reads
    assert statements["ReadNoticeQueue"]["Resource"] == {"Fn::GetAtt": ["NotifyQueue", "Arn"]}
    assert set(statements["ReadPaymentsAndMarkEmails"]["Action"]) == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert statements["ReadPaymentsAndMarkEmails"]["Resource"] == table
    assert set(statements["SendEmail"]["Action"]) == {"ses:SendRawEmail", "ses:SendEmail"}
    condition, given, derived = statements["SendEmail"]["Resource"]["Fn::If"]
    assert (condition, given) == ("HasSesIdentityArn", {"Ref": "SesIdentityArn"})
    assert derived["Fn::Sub"][0].endswith(":identity/${Domain}")
    assert derived["Fn::Sub"][1]["Domain"] == {"Fn::Select": [1, {"Fn::Split": ["@", {"Ref": "EmailFrom"}]}]}
    assert notify["Environment"]["Variables"] == {"EMAIL_FROM": {"Ref": "EmailFrom"}}
    senders = {n for n, p in functions.items() if any(a.startswith("ses:") for a in _actions(p))}
    assert senders == {"NotifyFunction"}

    assert "Events" not in notify  # its mapping is its own resource: SAM's SQS event would grant every queue
    mapping = resources["NotifyQueueMapping"]["Properties"]
    assert mapping["FunctionName"] == {"Ref": "NotifyFunction.Alias"}  # its `live` alias (docs/snapstart.md)
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["NotifyQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = resources["NotifyQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * notify["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["NotifyDeadLetters", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] > 4  # a receipt waits for its balance-after until the 4th
    rule = resources["NotifyRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    from payments.notices import NOTICES

    assert rule["EventPattern"] == {"source": ["payments"], "detail-type": list(NOTICES)}
    assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": ["NotifyQueue", "Arn"]}]
    [grant] = resources["NotifyQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert grant["Principal"] == {"Service": "events.amazonaws.com"} and grant["Action"] == "sqs:SendMessage"
    assert grant["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["NotifyRule", "Arn"]}}}
    alarm = resources["NotifyDeadLettersAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["NotifyDeadLetters", "QueueName"]}}]
    assert (alarm["MetricName"], alarm["Threshold"]) == ("ApproximateNumberOfMessagesVisible", 0)


def test_outbound_webhooks_flow_from_the_bus_through_a_queue_with_a_dead_letter_queue_and_its_alarm(
    template: dict[str, Any],
) -> None:
    """docs/webhooks-outbound.md: the rule routes every event an endpoint may ask for to the delivery queue (the
    queue policy lets that rule alone send), the function reads it by a mapping of its own with partial batch
    answers, the dead-letter queue alarms as soon as it holds a message, the KMS key rotates."""
    from payments.webhook_endpoints import EVENT_TYPES

    resources = template["Resources"]
    rule = resources["WebhookEventsRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule["EventPattern"] == {"source": ["payments"], "detail-type": list(EVENT_TYPES)}
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["WebhookDeliveries", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["WebhookDeliveriesDLQ", "Arn"]}}
    policy = resources["WebhookDeliveriesQueuePolicy"]["Properties"]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["WebhookEventsRule", "Arn"]}}}
    queue = resources["WebhookDeliveries"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["WebhookDeliveriesDLQ", "Arn"]}
    function = _functions(template)["DeliverWebhooksFunction"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]  # as Lambda asks of an SQS source
    mapping = resources["DeliverWebhooksEventSource"]["Properties"]
    assert mapping["FunctionName"] == {"Ref": "DeliverWebhooksFunction.Alias"}  # its `live` alias (docs/snapstart.md)
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["WebhookDeliveries", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] * 10 < function["Timeout"]  # a batch of attempts of 10 s each fits
    assert "Events" not in function  # a SAM SQS event would attach a managed policy reading every queue
    alarm = resources["WebhookDeliveriesDLQAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["WebhookDeliveriesDLQ", "QueueName"]}}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert resources["WebhookSecretsKey"]["Properties"]["EnableKeyRotation"] is True


def test_the_autotopup_function_has_least_privilege_and_its_own_queue(template: dict[str, Any]) -> None:
    """docs/auto-topup.md: the function reads its queue (its own mapping, partial batch answers), the payments table
    (no index, no Scan, no DeleteItem) and the gateway secret; the two rules alone may fill the queue: the internal
    charge events, and the settled payments that are auto top-ups."""
    resources = template["Resources"]
    function = _functions(template)["AutoTopupFunction"]
    statements = {s["Sid"]: s for s in _statements(function)}
    assert _actions(function) == {
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
        "secretsmanager:GetSecretValue",
    }  # fmt: skip
    assert statements["ChargeAndRecord"]["Resource"] == {"Fn::GetAtt": ["PaymentsTable", "Arn"]}
    assert statements["ReadAutoTopupQueue"]["Resource"] == {"Fn::GetAtt": ["AutoTopupQueue", "Arn"]}
    assert statements["ReadGatewayCredentials"]["Resource"] == {"Ref": "GatewaySecret"}
    assert "Events" not in function
    mapping = resources["AutoTopupQueueMapping"]["Properties"]
    assert mapping["FunctionName"] == {"Ref": "AutoTopupFunction.Alias"}  # its `live` alias (docs/snapstart.md)
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["AutoTopupQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = resources["AutoTopupQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["AutoTopupDeadLetters", "Arn"]}
    charge = resources["AutoTopupChargeRule"]["Properties"]["EventPattern"]
    assert charge == {"source": ["payments"], "detail-type": ["autotopup.charge"]}
    outcome = resources["AutoTopupOutcomeRule"]["Properties"]["EventPattern"]
    assert outcome["detail"] == {"payment": {"auto_topup": [True]}}
    [grant] = resources["AutoTopupQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert grant["Condition"] == {
        "ArnEquals": {
            "aws:SourceArn": [
                {"Fn::GetAtt": ["AutoTopupChargeRule", "Arn"]},
                {"Fn::GetAtt": ["AutoTopupOutcomeRule", "Arn"]},
            ]
        }
    }


def test_the_webhook_delivery_function_has_least_privilege(template: dict[str, Any]) -> None:
    props = _functions(template)["DeliverWebhooksFunction"]
    statements = {s["Sid"]: s for s in _statements(props)}

    assert _actions(props) == {
        "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem",
        "kms:Decrypt",
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage",
    }  # fmt: skip  # no Scan, no DeleteItem, no Encrypt, no wildcard
    assert statements["WebhookItems"]["Resource"] == {"Fn::GetAtt": ["PaymentsTable", "Arn"]}  # no index
    assert statements["DecryptSigningSecrets"]["Resource"] == {"Fn::GetAtt": ["WebhookSecretsKey", "Arn"]}
    assert statements["DecryptSigningSecrets"]["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:purpose": "webhook-signing-secret"}
    }
    assert statements["ReadDeliveryQueue"]["Resource"] == {"Fn::GetAtt": ["WebhookDeliveries", "Arn"]}
    assert _resource_refs(statements["SendTasksAndDeadLetters"]) == [
        {"Fn::GetAtt": ["WebhookDeliveries", "Arn"]},
        {"Fn::GetAtt": ["WebhookDeliveriesDLQ", "Arn"]},
    ]
    for statement in _statements(props):
        assert all("*" not in str(ref) for ref in _resource_refs(statement)), statement
    variables = props["Environment"]["Variables"]
    assert variables["WEBHOOK_QUEUE_URL"] == {"Ref": "WebhookDeliveries"}
    assert variables["WEBHOOK_DLQ_URL"] == {"Ref": "WebhookDeliveriesDLQ"}
    assert variables["WEBHOOK_KEY_ID"] == {"Ref": "WebhookSecretsKey"}


def test_only_the_webhook_route_function_encrypts_secrets_and_only_the_delivery_function_decrypts_them(
    template: dict[str, Any],
) -> None:
    functions = _functions(template)
    routes = functions["WebhookEndpointsFunction"]

    assert _actions(routes) == {
        "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem", "kms:Encrypt"
    }  # fmt: skip
    kms_users = {name: {a for a in _actions(p) if a.startswith("kms:")} for name, p in functions.items()}
    assert {name: actions for name, actions in kms_users.items() if actions} == {
        "WebhookEndpointsFunction": {"kms:Encrypt"},
        "DeliverWebhooksFunction": {"kms:Decrypt"},
    }
    senders = {name for name, p in functions.items() if "sqs:SendMessage" in _actions(p)}
    assert senders == {"PublishEventsFunction", "DeliverWebhooksFunction"}
    readers = {name for name, p in functions.items() if "sqs:ReceiveMessage" in _actions(p)}
    assert readers == {"DeliverWebhooksFunction", "NotifyFunction", "AutoTopupFunction"}


def test_no_function_may_loosen_the_ssrf_rules_in_aws(template: dict[str, Any]) -> None:
    for name, props in _functions(template).items():
        assert "WEBHOOK_ALLOW_LOOPBACK" not in props.get("Environment", {}).get("Variables", {}), name


def _queue_of(arn: Any) -> str | None:
    """The queue resource an `!GetAtt Queue.Arn` names, None for anything else."""
    if isinstance(arn, dict) and "Fn::GetAtt" in arn and arn["Fn::GetAtt"][1] == "Arn":
        return str(arn["Fn::GetAtt"][0])
    return None


def _given_up_into(template: dict[str, Any]) -> dict[str, str]:
    """Every queue that something is given up into (a redrive policy's dead-letter queue, a rule target's
    dead-letter queue, a stream mapping's on-failure destination), with what gives up into it."""
    queues = _resources(template, "AWS::SQS::Queue")
    found: dict[str, str] = {}
    for name, queue in queues.items():
        redrive = queue["Properties"].get("RedrivePolicy")
        if redrive:
            found[str(_queue_of(redrive["deadLetterTargetArn"]))] = f"{name}'s redrive policy"
    for name, rule in _resources(template, "AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            if "DeadLetterConfig" in target:
                found[str(_queue_of(target["DeadLetterConfig"]["Arn"]))] = f"rule {name}"
    for name, function in _functions(template).items():
        for event in (function.get("Events") or {}).values():
            failure = (event["Properties"].get("DestinationConfig") or {}).get("OnFailure")
            if failure:
                found[str(_queue_of(failure["Destination"]))] = f"{name}'s {event['Type']} mapping"
    assert set(found) <= set(queues), f"dead letters go to something that is not a queue of the stack: {found}"
    return found


def test_nothing_is_given_up_without_an_alarm_and_every_alarm_notifies_the_alarm_topic(
    template: dict[str, Any],
) -> None:
    """docs/api.md#alarms: every queue something is given up into has an alarm that goes off at its first message,
    and every alarm notifies `AlarmTopicArn` when one is given (going off and clearing)."""
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    watched: dict[str, dict[str, Any]] = {}
    for alarm in alarms.values():
        props = alarm["Properties"]
        [dimension] = props["Dimensions"]
        if dimension["Name"] == "QueueName":
            watched[dimension["Value"]["Fn::GetAtt"][0]] = props
    given_up = _given_up_into(template)
    assert {"WebhookDeliveriesDLQ", "NotifyDeadLetters", "AutoTopupDeadLetters", "PublishEventsFailures"} <= set(
        given_up
    )
    for queue, source in given_up.items():
        assert queue in watched, f"{queue} ({source}) has no alarm"
        props = watched[queue]
        assert (props["Namespace"], props["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        assert (props["ComparisonOperator"], props["Threshold"], props["Statistic"]) == (
            "GreaterThanThreshold",
            0,
            "Maximum",
        )
    topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for name, alarm in alarms.items():
        assert alarm["Properties"].get("AlarmActions") == topic, f"{name} notifies no one"
        assert alarm["Properties"].get("OKActions") == topic, f"{name} does not say when it clears"
    assert template["Conditions"]["HasAlarmTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""


def test_every_rule_target_queue_has_a_dead_letter_queue_the_rule_may_send_to(template: dict[str, Any]) -> None:
    """An event EventBridge cannot put on a target queue after its retries goes to a dead-letter queue, never away:
    the queue's policy lets exactly that rule send to it (else EventBridge would drop it after all)."""
    policies = _resources(template, "AWS::SQS::QueuePolicy").values()
    queues = _resources(template, "AWS::SQS::Queue")
    for name, rule in _resources(template, "AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            if _queue_of(target["Arn"]) not in queues:
                continue
            assert "DeadLetterConfig" in target, f"rule {name} drops what it cannot queue"
            dead = _queue_of(target["DeadLetterConfig"]["Arn"])
            grants = [
                s
                for policy in policies
                if {"Ref": dead} in policy["Properties"]["Queues"]
                for s in policy["Properties"]["PolicyDocument"]["Statement"]
                if {"Fn::GetAtt": [dead, "Arn"]}
                in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
            ]
            sources = [g["Condition"]["ArnEquals"]["aws:SourceArn"] for g in grants]
            rule_arn = {"Fn::GetAtt": [name, "Arn"]}
            assert any(s == rule_arn or (isinstance(s, list) and rule_arn in s) for s in sources), (name, dead)
            assert all(g["Principal"] == {"Service": "events.amazonaws.com"} for g in grants)


def test_every_queue_mapping_runs_at_most_a_configured_number_of_functions_at_once(template: dict[str, Any]) -> None:
    """A burst on a queue (deliveries to slow endpoints, e-mails, off-session charges) cannot take the account's
    Lambda concurrency from the API: each SQS mapping has a MaximumConcurrency, a parameter within Lambda's 2-1000."""
    queues = _resources(template, "AWS::SQS::Queue")
    mappings = _resources(template, "AWS::Lambda::EventSourceMapping")
    sqs = {
        name: m["Properties"] for name, m in mappings.items() if _queue_of(m["Properties"]["EventSourceArn"]) in queues
    }
    assert set(sqs) == {"DeliverWebhooksEventSource", "NotifyQueueMapping", "AutoTopupQueueMapping"}
    for name, props in sqs.items():
        limit = props["ScalingConfig"]["MaximumConcurrency"]
        parameter = template["Parameters"][limit["Ref"]]
        assert (parameter["Type"], parameter["MinValue"], parameter["MaxValue"]) == ("Number", 2, 1000), name
        assert 2 <= parameter["Default"] <= 1000
