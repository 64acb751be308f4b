"""`make fuzz`: schemathesis against the local stack's `GET /openapi.json` (issue 6, part 1).

Every documented operation is exercised in four phases (the `phase` of each request in the Report):
- coverage: schemathesis' deterministic boundary and negative cases derived from the schema (minimum/maximum
  values and lengths, each enum value, wrong types, missing required parts, a missing token, unexpected
  methods and content types);
- fuzzing: schemathesis generates positive (schema-valid) and negative (schema-invalid) requests;
- shaped: payment-shaped bodies that pass the schema AND look like real payments (methods, currencies, test
  cards, repeated Idempotency-Keys, known payment ids), so the gateways, idempotency and settlement paths run
  too, and webhook garbage: unsigned, badly signed and non-JSON bodies to every provider and to unknown ones;
- stateful: schemathesis' state machine over the document's links (those its dependency analysis infers from
  the responses, e.g. POST /payments -> GET /payments/{id}, POST /payments/exports -> GET
  /payments/exports/{export_id}, plus the fuzzer's own links from POST /payments to the operator's
  complete/cancel of that payment), so ids just created are read and settled in the same sequence.

Callers carry valid tokens: `finance` of a fresh customer on customer routes, `operator` on /admin routes.
Every answer must be no 5xx, a documented status code, a documented content type and body schema, and an
error body with a `message`; a webhook without a valid signature must be refused (400/401, unknown provider 404),
and a protected route called without a valid token (coverage's missing one, a negative case's mangled one) must
answer 401.

    python -m scripts.fuzz                      # starts a private stack on free ports, 100 examples a strategy
                                                # (and 100 stateful scenarios); coverage sends all its cases
    python -m scripts.fuzz --url http://127.0.0.1:3000 --max-examples 300   # a running `make dev`

Exit code 1 if anything failed; the summary names each failure with a curl line to reproduce it.
tests/e2e/test_fuzz.py runs the same fuzzer, bounded, in `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Flaky, Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local.token import make_token
from payments import registry
from payments.gateways import adapter_class
from scripts.private_stack import private_stack

ROOT = Path(__file__).resolve().parents[1]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
PUBLIC_PATHS = ("/openapi.json", "/webhooks/{provider}")  # security: [] in the document
PROVIDERS = registry.PROVIDERS
# Each gateway's signature header(s), as its adapter declares them: garbage in them must be refused like no
# header at all.
SIGNATURE_HEADERS = tuple(header for p in PROVIDERS for header in adapter_class(p).signature_headers)
# Stripe test cards (the simulator knows them): success, decline, 3-D Secure, and one failing the Luhn check.
CARDS = ("4242424242424242", "4000000000000002", "4000002760003184", "4242424242424241")
METHODS = tuple(method.value for method in registry.PAYABLE)
CURRENCIES = ("USD", "EUR", "JPY", "KWD", "INR", "NGN", "GBP", "usd", "XXX", "ZZZ", "")
# Currencies tried with each method: those of CANDIDATE_CURRENCIES its gateway takes (its adapter says, with no call).
CANDIDATE_CURRENCIES = ("USD", "EUR", "JPY", "KWD", "INR", "NGN")


def _currencies_taken(method: str) -> tuple[str, ...]:
    from payments.gateways.base import GatewayInputRejected
    from payments.money import Money, currency_digits

    entry = registry.GATEWAY_BY_METHOD.get(registry.PaymentMethod(method))
    if entry is None:  # a bank transfer or voucher takes any currency
        return ("EUR", "USD", "JPY", "KWD")
    cls = adapter_class(entry.provider)
    adapter = cls(cls.settings_class())
    taken = []
    for code in CANDIDATE_CURRENCIES:
        try:
            adapter.check_currency(Money(100 * 10 ** currency_digits(code), code))
        except GatewayInputRejected:
            continue
        taken.append(code)
    return tuple(taken)


GATEWAY_CURRENCIES = {method: _currencies_taken(method) for method in METHODS}
REQUEST_TIMEOUT_SECONDS = 30


# ---- callers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Callers:
    """Valid tokens for the fuzzed customer (finance) and for an operator."""

    customer: str
    finance: str
    operator: str

    @classmethod
    def minted(cls, secret: str, customer: str | None = None) -> Callers:
        customer = customer or f"fuzz-{uuid.uuid4().hex[:10]}"
        return cls(
            customer=customer,
            finance=make_token(customer, ["finance"], secret=secret, email=f"{customer}@example.com"),
            operator=make_token(None, ["operator"], secret=secret),
        )

    def headers_for(self, path: str) -> dict[str, str]:
        token = self.operator if path.startswith("/admin/") else self.finance
        return {"Authorization": f"Bearer {token}"}


# ---- the report -----------------------------------------------------------------------------------


@dataclass
class Finding:
    operation: str
    status: int
    problems: list[str]
    reproduce: str
    count: int = 1


@dataclass
class Report:
    """Status codes seen per operation, requests per phase, the stateful phase's linked steps, and distinct
    failures (one example each, with a curl line; for a stateful step, the curl lines of the steps before it)."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    findings: dict[tuple[str, int, tuple[str, ...]], Finding] = field(default_factory=dict)
    requests: int = 0
    phases: Counter[str] = field(default_factory=Counter)
    # (operation whose answer gave the values, operation that used them, its status) of every stateful step
    # taken through a link: proof the sequences ran, not only their first requests.
    linked: Counter[tuple[str, str, int]] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.findings

    def record(
        self,
        case: Case,
        status: int,
        problems: list[str],
        headers: dict[str, str],
        raw_body: bytes | None = None,
        *,
        phase: str,
        before: list[str] | None = None,
    ) -> None:
        label = case.operation.label
        self.requests += 1
        self.phases[phase] += 1
        self.statuses[(label, status)] += 1
        if not problems:
            return
        key = (label, status, tuple(sorted(problems)))
        if key in self.findings:
            self.findings[key].count += 1
            return
        curl = _curl(case, headers)
        if raw_body is not None:
            curl += f" --data-binary <{raw_body!r:.300}>"
        if before:
            curl = "\n      then ".join([*before, curl])
        self.findings[key] = Finding(label, status, sorted(problems), f"({phase}) {curl}")

    def summary(self) -> str:
        lines = [
            f"{self.requests} requests, {len(self.findings)} distinct failures",
            "  per phase: " + ", ".join(f"{phase} {count}" for phase, count in sorted(self.phases.items())),
        ]
        by_operation: dict[str, list[str]] = {}
        for (label, status), count in sorted(self.statuses.items()):
            by_operation.setdefault(label, []).append(f"{status}x{count}")
        lines += [f"  {label:62} {' '.join(codes)}" for label, codes in sorted(by_operation.items())]
        if self.linked:
            lines.append("  stateful steps through a link:")
            lines += [
                f"    {source} -> {target}: {status}x{count}"
                for (source, target, status), count in sorted(self.linked.items())
            ]
        for finding in self.findings.values():
            lines.append(f"FAIL {finding.operation} -> {finding.status} ({finding.count}x)")
            lines += [f"    {problem}" for problem in finding.problems]
            lines.append(f"    reproduce: {finding.reproduce}")
        return "\n".join(lines)


def _curl(case: Case, headers: dict[str, str]) -> str:
    shown = {**headers, "Authorization": "Bearer <token>"} if "Authorization" in headers else headers
    return case.as_curl_command(headers=shown)


def _problems_of(group: FailureGroup) -> list[str]:
    return [f"{type(f).__name__}: {f.title}" for f in group.exceptions]


def _error_body_problem(status: int, response: Any) -> str | None:
    """docs/errors.md: errors are JSON `{"message": "..."}` with a human sentence."""
    if status < 400:
        return None
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return "error body is not JSON"
    if not (isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"].strip()):
        return "error body has no message"
    return None


# ---- strategies beyond the schema -----------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One request: a schemathesis Case plus what the Case cannot carry (a raw body) and extra expectations."""

    case: Case
    raw_body: bytes | None = None
    expect: Callable[[int], str | None] | None = None


def _amounts() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(["12.50", "0.50", "1000", "1.250", "0", "-5.00", "1.999", "1e3", "9999999", " 7.00 ", "abc"]),
        st.decimals(min_value=-10, max_value=10**7, places=2, allow_nan=False).map(str),
        st.integers(min_value=-5, max_value=10**7),
    )


def _realistic_payment_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """Bodies a real client would send: each method with a currency its gateway takes, test cards, vouchers."""

    def realistic(method: str) -> st.SearchStrategy[dict[str, Any]]:
        base = {"method": st.just(method), "currency": st.sampled_from(GATEWAY_CURRENCIES[method])}
        if method == "voucher":
            return st.fixed_dictionaries({**base, "voucher_code": st.text(min_size=1, max_size=20)})
        base["amount"] = st.integers(min_value=50, max_value=5000).map(str)  # valid in every currency's digits
        if method == "credit_card":
            return st.fixed_dictionaries({**base, "card": _cards()}) | st.fixed_dictionaries(
                {**base, "payment_method": _payment_methods()}
            )
        return st.fixed_dictionaries(base, optional={"description": st.text(max_size=40)})

    return st.sampled_from(METHODS).flatmap(realistic)


def _cards() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "number": st.sampled_from(CARDS),
            "exp_month": st.sampled_from([12, "07", 13, 0]),
            "exp_year": st.sampled_from([2031, "2030", 2020]),
            "cvc": st.sampled_from(["737", "1234", ""]),
        }
    )


def _payment_methods() -> st.SearchStrategy[str]:
    return st.sampled_from(["pm_card_visa", "pm_card_authenticationRequired", "pm_card_chargeDeclined"])


def _payment_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """Mostly realistic bodies, some with one field gone wrong, so requests get past validation into the
    gateways."""
    free_form = st.fixed_dictionaries(
        {"method": st.sampled_from(METHODS), "currency": st.sampled_from(CURRENCIES)},
        optional={
            "amount": _amounts(),
            "description": st.text(max_size=40),
            "card": _cards(),
            "payment_method": _payment_methods() | st.text(max_size=10),
            "voucher_code": st.text(min_size=1, max_size=20),
        },
    )
    realistic_bodies = _realistic_payment_bodies()
    return st.one_of(realistic_bodies, realistic_bodies, realistic_bodies, free_form)


def _signature_headers() -> st.SearchStrategy[dict[str, str]]:
    # No leading whitespace: no client can send it (HTTP strips it; requests refuses to build such a request).
    printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(str.lstrip)
    return st.dictionaries(st.sampled_from(SIGNATURE_HEADERS), printable, max_size=4)


def _webhook_bodies() -> st.SearchStrategy[bytes]:
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=10,
    )
    event_like = st.fixed_dictionaries(
        {
            "id": st.text(max_size=20),
            "type": st.sampled_from(["payment_intent.succeeded", "order.paid", "charge.success", "x"]),
            "event": st.sampled_from(["order.paid", "charge.success", "refund.processed"]),
            "data": json_values,
            "payment_status": st.sampled_from(["finished", "failed", "waiting"]),
        }
    )
    return st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        event_like.map(lambda v: json.dumps(v).encode()),
    )


def _webhook_expectation(provider: str) -> Callable[[int], str | None]:
    def expect(status: int) -> str | None:
        if provider in PROVIDERS:
            wanted: tuple[int, ...] = (400, 401)
        else:  # unknown provider: 404, or 422 when the name breaks the documented length
            wanted = (404, 422)
        return None if status in wanted else f"unsigned webhook to {provider!r} answered {status}, wanted {wanted}"

    return expect


@dataclass
class Known:
    """Ids that exist, so generated requests also hit real payments, not only 404s."""

    payment_ids: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=lambda: [f"fuzz-key-{i}" for i in range(3)])


def _shaped(operation: Any, callers: Callers, known: Known) -> st.SearchStrategy[Probe] | None:
    """Payment-shaped requests for the operations where schema-only data rarely gets past validation."""
    path, method = operation.path, operation.method.upper()
    # Mostly a fresh Idempotency-Key, now and then a reused one (same key, other body: 422). Not st.uuids():
    # Hypothesis repeats simple values on purpose, which would turn most requests into key reuses.
    key = st.sampled_from([None] * 9 + known.keys).map(lambda reused: reused or f"fuzz-{uuid.uuid4()}")
    ids = st.sampled_from(known.payment_ids or ["pay_none"]) | st.text(max_size=30)
    customers = st.sampled_from([callers.customer, "fuzz-other-customer"])
    json_media = "application/json"
    if (method, path) == ("POST", "/payments"):
        return st.builds(
            lambda body, k: Probe(operation.Case(headers={"idempotency-key": k}, body=body, media_type=json_media)),
            _payment_bodies(),
            key,
        )
    if (method, path) == ("POST", "/webhooks/{provider}"):
        providers = st.sampled_from(PROVIDERS) | st.text(min_size=1, max_size=40).filter(lambda p: "/" not in p)
        content_types = st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""])
        return st.builds(
            lambda p, h, body, ct: Probe(
                operation.Case(path_parameters={"provider": p}, headers={**h, "content-type": ct} if ct else h),
                raw_body=body,
                expect=_webhook_expectation(p),
            ),
            providers,
            _signature_headers(),
            _webhook_bodies(),
            content_types,
        )
    if (method, path) == ("GET", "/payments/{id}"):
        return ids.map(lambda i: Probe(operation.Case(path_parameters={"id": i})))
    if path.startswith("/admin/customers/") and path.endswith(("/complete", "/cancel")):
        note = st.none() | st.fixed_dictionaries({"note": st.text(max_size=30)})
        return st.builds(
            lambda c, i, b: Probe(
                operation.Case(
                    path_parameters={"customer_id": c, "id": i},
                    body=b,
                    media_type=json_media if b is not None else None,
                )
            ),
            customers,
            ids,
            note,
        )
    if (method, path) == ("POST", "/admin/customers/{customer_id}/payments/{id}/refunds"):
        body = st.none() | st.fixed_dictionaries(
            {}, optional={"amount": _amounts(), "reason": st.text(max_size=30) | st.integers()}
        )
        return st.builds(
            lambda c, i, b, k: Probe(
                operation.Case(
                    path_parameters={"customer_id": c, "id": i},
                    headers={"idempotency-key": k},
                    body=b,
                    media_type=json_media if b is not None else None,
                )
            ),
            customers,
            ids,
            body,
            key,
        )
    if (method, path) == ("POST", "/admin/customers/{customer_id}/charges"):
        body = st.fixed_dictionaries(
            {"amount": _amounts(), "currency": st.sampled_from(CURRENCIES), "description": st.text(max_size=30)}
        )
        return st.builds(
            lambda c, b, k: Probe(
                operation.Case(
                    path_parameters={"customer_id": c}, headers={"idempotency-key": k}, body=b, media_type=json_media
                )
            ),
            customers,
            body,
            key,
        )
    if (method, path) == ("POST", "/admin/vouchers"):
        body = st.fixed_dictionaries(
            {"amount": _amounts(), "currency": st.sampled_from(CURRENCIES)},
            optional={
                "count": st.integers(min_value=-1, max_value=101),
                "expires_at": st.sampled_from(["2031-01-01T00:00:00Z", "2020-01-01T00:00:00Z", "tomorrow", ""]),
            },
        )
        return body.map(lambda b: Probe(operation.Case(body=b, media_type=json_media)))
    if (method, path) == ("POST", "/payments/exports"):
        moments = st.sampled_from(["2026-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "x", ""])
        body = st.fixed_dictionaries(
            {}, optional={"from": moments, "to": moments, "status": st.sampled_from(["pending", "completed", "open"])}
        )
        return body.map(lambda b: Probe(operation.Case(body=b, media_type=json_media)))
    return None


# ---- running --------------------------------------------------------------------------------------


def _tests_authorization(case: Case) -> bool:
    """A case about the Authorization header itself: coverage's "Missing `Authorization`", a negative token."""
    data = case.meta.phase.data if case.meta is not None else None
    return str(getattr(data, "parameter", None) or "").lower() == "authorization"


def _authorization(case: Case, callers: Callers) -> dict[str, str]:
    """The caller's valid token, except for a case that tests the header: that one goes as generated, so the
    gateway's authorizer is fuzzed too instead of every such case turning into a valid request."""
    return {} if _tests_authorization(case) else callers.headers_for(case.operation.path)


def _expectation(case: Case, sent: Any, callers: Callers) -> Callable[[int], str | None] | None:
    """What the schema alone cannot say about the answer to a generated case, given the headers `sent`."""
    if case.method.upper() != case.operation.method.upper():
        return None  # coverage's unexpected methods: the gateway's own answer, checked like any other
    if case.operation.path == "/webhooks/{provider}":  # generated cases never carry a valid signature
        return _webhook_expectation(str(case.path_parameters.get("provider")))
    if case.operation.path in PUBLIC_PATHS:
        return None
    # Without the caller's token (none, or schemathesis' mangled one) no protected route may answer but 401.
    if sent.get("Authorization") != callers.headers_for(case.operation.path)["Authorization"]:
        return lambda status: None if status == 401 else f"a request without a valid token answered {status}"
    return None


def _judge(
    case: Case,
    response: Any,
    headers: dict[str, str],
    callers: Callers,
    expect: Callable[[int], str | None] | None = None,
) -> list[str]:
    """Every phase's checks on one answer: schemathesis' conformance checks, our error body, the expectation
    (the probe's own, or what the headers actually sent call for: schemathesis' transport drops a header that a
    negative case leaves out on purpose, whatever the caller passes)."""
    problems: list[str] = []
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as group:
        problems += _problems_of(group)
    expect = expect or _expectation(case, response.request.headers, callers)
    for extra_problem in (
        _error_body_problem(response.status_code, response),
        expect(response.status_code) if expect else None,
    ):
        if extra_problem:
            problems.append(extra_problem)
    return problems


def _send(probe: Probe, phase: str, api_url: str, callers: Callers, session: requests.Session, report: Report) -> None:
    case = probe.case
    headers = _authorization(case, callers)
    extra: dict[str, Any] = {"data": probe.raw_body} if probe.raw_body is not None else {}
    try:
        response = case.call(
            base_url=api_url, session=session, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS, **extra
        )
    except requests.RequestException as exc:  # no answer at all (a crash, a hang) is a finding too
        report.record(case, 0, [f"no answer: {type(exc).__name__}"], headers, probe.raw_body, phase=phase)
        return
    problems = _judge(case, response, headers, callers, probe.expect)
    report.record(case, response.status_code, problems, headers, probe.raw_body, phase=phase)


def _explore(
    strategy: st.SearchStrategy[Probe], send: Callable[[Probe], None], examples: int, seed: int | None
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=seed is None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every failure is recorded, not raised
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def explore(probe: Probe) -> None:
        send(probe)

    (explore if seed is None else hypothesis_seed(seed)(explore))()


def coverage_cases(schema: Any, operation: Any) -> Iterator[Case]:
    """schemathesis' coverage phase for one operation: the cases `schemathesis run --phases=coverage` sends, from
    the schema's own `iter_coverage_cases` (what the engine's and the pytest plugin's coverage phase iterate;
    `as_strategy(phase=COVERAGE)` only labels random cases). Deterministic and finite, so no max-examples."""
    config = schema.config.generation_for(operation=operation, phase="coverage")
    return schema.iter_coverage_cases(operation, generation_modes=config.modes, generation_config=config)


def with_fuzzer_links(document: dict[str, Any], customer: str) -> dict[str, Any]:
    """The document plus links it cannot carry itself: from POST /payments to the operator's complete and cancel
    of the payment just made. They need the payer's customer id, which no answer has (PaymentOut does not
    carry it, the token does), so only the fuzzer knows it: its own customer. The links schemathesis infers
    from the responses (POST /payments -> GET /payments/{id} and the others) are added to these, not replaced."""
    document = json.loads(json.dumps(document))
    made = document["paths"]["/payments"]["post"]["responses"]["201"]
    for action in ("complete", "cancel"):
        path = f"/admin/customers/{{customer_id}}/payments/{{id}}/{action}"
        if "post" in document["paths"].get(path, {}):
            made.setdefault("links", {})[f"FuzzOperator{action.title()}"] = {
                "operationRef": "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/post",
                "parameters": {"path.customer_id": customer, "path.id": "$response.body#/payment/id"},
            }
    return document


class _Unanswered(Exception):
    """The stack did not answer a stateful step (recorded as a finding); ends the phase."""


def _stateful(
    document: dict[str, Any],
    api_url: str,
    callers: Callers,
    session: requests.Session,
    report: Report,
    scenarios: int,
    seed: int | None,
) -> None:
    """schemathesis' state machine over the links: `scenarios` sequences of 2 to `max_steps` calls, steps fed by
    an earlier answer through a link (an id just created, then read or settled). Seeded (`seed`, or 0), so a
    run without one repeats."""
    # Its own schema object: the links and the hook below are this phase's, the other phases' stay the schema's.
    schema = schemathesis.openapi.from_dict(with_fuzzer_links(document, callers.customer))

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
        # Schema-made bodies almost never pass POST /payments' per-method rules (a currency the method's gateway
        # takes, an amount in its digits), so no payment would be made for the links to follow; half the
        # POST /payments steps send a realistic body instead.
        if context.operation is not None and context.operation.label == "POST /payments":
            return st.just(body) | _realistic_payment_bodies()
        return st.just(body)

    finished: list[int] = []  # steps of each finished sequence, across the runs below

    class Scenario(schema.as_state_machine()):
        # Answers are judged and recorded like the other phases', never raised: a failure does not end the
        # phase, and nothing is shrunk (the finding keeps the curl lines of the steps before it instead).

        def setup(self) -> None:
            self.trail: list[str] = []
            self.labels: dict[str, str] = {}  # case id -> operation, to name the source of a linked step
            self.source: str | None = None

        def step(self, input: Any) -> Any:
            linked = input.transition is not None and input.is_applied
            self.source = self.labels.get(input.transition.parent_id) if linked else None
            return super().step(input)

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            # The caller's token even on a step schemathesis made with a mangled one: this phase's budget is for
            # sequences; the coverage and fuzzing phases send bad tokens. (A step it made without the header still
            # goes without: its transport drops what a negative case leaves out.)
            return {
                "base_url": api_url,
                "session": session,
                "headers": callers.headers_for(case.operation.path),
                "timeout": REQUEST_TIMEOUT_SECONDS,
            }

        def call(self, case: Case, **kwargs: Any) -> Any:
            try:
                return super().call(case, **kwargs)
            except requests.RequestException as exc:
                problem = f"no answer: {type(exc).__name__}"
                report.record(case, 0, [problem], kwargs["headers"], phase="stateful", before=self.trail)
                raise _Unanswered(problem) from exc

        def validate_response(self, response: Any, case: Case, *_: Any, **kwargs: Any) -> None:
            headers = kwargs["headers"]
            problems = _judge(case, response, headers, callers)
            report.record(case, response.status_code, problems, headers, phase="stateful", before=self.trail)
            if self.source is not None:
                report.linked[(self.source, case.operation.label, response.status_code)] += 1
            self.labels[case.id] = case.operation.label
            self.trail.append(_curl(case, headers))

        def teardown(self) -> None:
            finished.append(len(self.trail))
            super().teardown()

    for attempt in range(scenarios):
        before = len(finished)
        try:
            # A seed per run, not derandomize: a run after the first must not replay the sequences before it.
            hypothesis_seed((seed or 0) + attempt)(Scenario).run(
                settings=settings(
                    max_examples=scenarios - len(finished),
                    stateful_step_count=schema.config.phases.stateful.max_steps,
                    deadline=None,
                    database=None,
                    phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
            )
            return
        except _Unanswered:
            return  # recorded where it happened; a stack that stopped answering has nothing more to tell
        except Flaky:
            # Hypothesis replays a prefix of an earlier sequence and sees other rules enabled, because the stack
            # answered differently this time (a 429, a payment settled since): real state, not a bug. Like
            # schemathesis' own engine, go on with a new run for the sequences left.
            if len(finished) == before:
                return


def seed_payments(api_url: str, callers: Callers, session: requests.Session) -> list[str]:
    """Two pending bank transfers of the fuzzed customer: real ids for get/complete/cancel."""
    ids = []
    for amount in ("10.00", "20.00"):
        answer = session.post(
            f"{api_url}/payments",
            json={"method": "bank_transfer", "amount": amount, "currency": "EUR"},
            headers={**callers.headers_for("/payments"), "Idempotency-Key": uuid.uuid4().hex},
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        answer.raise_for_status()
        ids.append(answer.json()["payment"]["id"])
    return ids


def fuzz(
    api_url: str,
    callers: Callers,
    *,
    max_examples: int,
    scenarios: int | None = None,
    seed: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> Report:
    """Fuzz every operation of the stack at `api_url`: all coverage cases, `max_examples` per operation and
    strategy, `scenarios` (default `max_examples`) stateful sequences. `seed` None: a fixed, repeatable run."""
    report = Report()
    with requests.Session() as session:
        # from_dict, not from_url: from_url leaves out the operation that serves the document itself.
        answer = session.get(f"{api_url}/openapi.json", timeout=REQUEST_TIMEOUT_SECONDS)
        answer.raise_for_status()
        document = answer.json()
        schema = schemathesis.openapi.from_dict(document)
        known = Known(payment_ids=seed_payments(api_url, callers, session))
        operations = [result.ok() for result in schema.get_all_operations()]

        def sender(phase: str) -> Callable[[Probe], None]:
            return lambda probe: _send(probe, phase, api_url, callers, session, report)

        # The engine's order: coverage, then fuzzing, then stateful (which then finds the customer's payments).
        started = time.monotonic()
        for operation in operations:
            for case in coverage_cases(schema, operation):
                sender("coverage")(Probe(case))
        log(f"coverage: {report.phases['coverage']} requests, {time.monotonic() - started:.1f} s")

        for operation in operations:
            started = time.monotonic()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = operation.as_strategy(generation_mode=mode).map(Probe)
                try:
                    _explore(strategy, sender("fuzzing"), max_examples, seed)
                except Unsatisfiable:
                    if mode is GenerationMode.POSITIVE:
                        raise
                    # An operation without parameters or body (GET /openapi.json) has nothing to make invalid.
            shaped = _shaped(operation, callers, known)
            if shaped is not None:
                _explore(shaped, sender("shaped"), max_examples, seed)
            log(f"{operation.label}: {time.monotonic() - started:.1f} s")

        started = time.monotonic()
        scenarios = max_examples if scenarios is None else scenarios
        _stateful(document, api_url, callers, session, report, scenarios, seed)
        log(f"stateful: {report.phases['stateful']} requests, {time.monotonic() - started:.1f} s")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running stack (make dev); default: start a private one")
    parser.add_argument(
        "--max-examples", type=int, default=100, help="examples per operation and strategy, and stateful sequences"
    )
    parser.add_argument("--seed", type=int, help="random seed (default: a new one, printed)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    print(
        f"fuzzing with seed {seed}: every coverage case, {args.max_examples} examples per operation and strategy, "
        f"{args.max_examples} stateful sequences",
        flush=True,
    )
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.url:
            from local.defaults import jwt_secret

            url, secret = args.url.rstrip("/"), jwt_secret()
        else:
            private = stack.enter_context(private_stack(seed_demo=False))
            url, secret = private.api_url, private.jwt_secret
        report = fuzz(url, Callers.minted(secret), max_examples=args.max_examples, seed=seed, log=print)
    print(report.summary())
    print(f"{time.monotonic() - started:.0f} s; {'OK' if report.ok else 'FAILED'} (seed {seed})")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
