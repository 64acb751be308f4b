"""`make dev`: the whole service on this machine, no Docker, no AWS account (docs/api.md#running-it-locally).

The flow, in order:
1. Read AWS_PORT, GATEWAY_SIM_PORT, API_PORT; a taken port is a one-line error before anything starts.
2. Start the embedded AWS (moto in server mode, local/embedded_aws.py) and point boto3 at it through
   AWS_ENDPOINT_URL and fake credentials, as a handler's boto3 would be pointed at any AWS-compatible endpoint.
3. Create the tables, buckets and secrets template.yaml declares (local/resources.py), and put back the
   items and objects saved when the stack last stopped (LOCAL_STATE_DIR, which `make dev` sets; local/state.py).
4. Build the functions' environment from template.yaml (Globals + each function), resolving `!Ref` to the
   local resources, plus the gateway credentials and API bases. Handlers run in this process, so the
   environment is the union of all functions' variables; a variable you set in your shell wins, unless it
   names a local resource.
5. Start the gateway simulator (GATEWAY_SIM=on), the outbox's stream poller (local/streams.py: the table's
   stream -> the publisher function -> the local EventBridge bus, seen at GET /_local/outbox), the queue pollers
   (local/queues.py: the webhook delivery queue -> its function), and seed demo data (SEED_DEMO=1, local/seed.py).
6. Serve the HTTP API: routes from template.yaml, JWT check, payload 2.0 events, real handlers
   (local/apigw.py). Foreground until Ctrl-C or SIGTERM, which save the state and stop everything started here.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

from local.defaults import API_BASE_VARS, DEFAULT_PORTS, LOCAL_GATEWAY_ENV, LOCAL_REGION, gateway_credential, jwt_secret
from local.template import ROOT, FunctionSpec, Resolver, as_text, functions, load_template, resources_of_type, routes

WEB_DIR = ROOT / "local" / "web"
DEMO_TOKEN_TTL_SECONDS = 12 * 3600


class StartupError(Exception):
    """Stops `make dev` with one line on stderr."""


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


# ---- 1. ports -------------------------------------------------------------------------------------


def read_ports(names: list[str]) -> dict[str, int]:
    ports = {}
    for name in names:
        raw = os.environ.get(name) or str(DEFAULT_PORTS[name])
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise StartupError(f"{name}={raw!r} is not a port number")
        ports[name] = int(raw)
    if len(set(ports.values())) < len(ports):
        raise StartupError(f"{', '.join(f'{k}={v}' for k, v in ports.items())} must be different ports")
    return ports


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The servers bind with SO_REUSEADDR too, so a port in TIME_WAIT counts as free, a listener as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


# ---- 2. embedded AWS ------------------------------------------------------------------------------


def point_boto3_at(endpoint: str) -> None:
    """Make every boto3 client in this process (the handlers' too) use `endpoint` with fake credentials."""
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")]:
        del os.environ[name]  # a per-service endpoint from the shell would win over ours
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - the embedded AWS accepts any credentials
        AWS_DEFAULT_REGION=LOCAL_REGION,
        AWS_REGION=LOCAL_REGION,
    )
    _serialize_boto3_client_creation()


def _serialize_boto3_client_creation() -> None:
    """In Lambda each request has its own process; here handlers share boto3's default session across
    threads, and creating clients from one session concurrently is not thread-safe."""
    import boto3

    lock = threading.Lock()

    def locked(create: Callable[..., Any]) -> Callable[..., Any]:
        def create_locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return create(*args, **kwargs)

        return create_locked

    boto3.client = locked(boto3.client)
    boto3.resource = locked(boto3.resource)


def start_embedded_aws(port: int) -> Any:
    from local import embedded_aws

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per AWS call is noise here
    return embedded_aws.start(port)


# ---- 3. state across restarts ---------------------------------------------------------------------


def read_state_settings() -> tuple[Path | None, str]:
    """The state file (None: keep nothing) and LOCAL_STATE: keep (restore and save), fresh (start empty), off."""
    from local.state import FILE_NAME, MODES

    raw = os.environ.get("LOCAL_STATE") or "keep"
    mode = raw.strip().lower()
    if mode not in MODES:
        raise StartupError(f"LOCAL_STATE={raw!r} is not one of {', '.join(MODES)}")
    folder = os.environ.get("LOCAL_STATE_DIR", "").strip()
    return (Path(folder).resolve() / FILE_NAME if folder and mode != "off" else None), mode


def restore_state(path: Path, mode: str) -> str:
    """Put the saved items and objects back; returns the line to print. An unusable file is a warning."""
    import boto3

    from local import state

    if mode == "fresh":
        return f"local state        starting empty (LOCAL_STATE=fresh); {path} is replaced on stop"
    if not path.exists():
        return f"local state        nothing saved yet; saved to {path} on stop"
    started = time.monotonic()
    try:
        saved = state.read(path)
        dynamodb, s3 = boto3.client("dynamodb", region_name=LOCAL_REGION), boto3.client("s3")
        state.restore(saved, dynamodb, s3, boto3.client("secretsmanager", region_name=LOCAL_REGION))
    except state.UnusableState as exc:
        try:
            kept = f"file kept as {state.set_aside(path)}"
        except OSError as error:  # still start: the file is replaced on stop
            kept = f"could not move the file aside: {error.strerror or error}"
        print(f"warning: the saved local state is unusable, {exc}; starting empty ({kept})", file=sys.stderr)
        return f"local state        starting empty; saved to {path} on stop"
    millis = (time.monotonic() - started) * 1000
    return f"local state        restored {saved.summary} from {path} ({millis:.0f} ms)"


def save_state(path: Path, tables: list[str], buckets: list[str], secrets: list[str]) -> None:
    """Write every item, object and secret value to `path`, while the embedded AWS still runs. Never raises."""
    import boto3

    from local import state

    started = time.monotonic()
    try:
        dynamodb, s3 = boto3.client("dynamodb", region_name=LOCAL_REGION), boto3.client("s3")
        secretsmanager = boto3.client("secretsmanager", region_name=LOCAL_REGION)
        captured = state.capture(dynamodb, s3, tables, buckets, secretsmanager, secrets)
        size = state.write(captured, path)
    except KeyboardInterrupt:  # a second Ctrl-C: the previous file is still whole (written by rename)
        print(f"warning: the local state was not saved (interrupted); {path} is as before", file=sys.stderr)
        return
    except Exception as exc:
        print(f"warning: the local state was not saved ({state.one_line(exc)}); {path} is as before", file=sys.stderr)
        return
    millis = (time.monotonic() - started) * 1000
    print(f"saved the local state ({captured.summary}, {size / 1024:.0f} KiB, {millis:.0f} ms) to {path}")


# ---- 4. environment -------------------------------------------------------------------------------


def function_environment(specs: dict[str, FunctionSpec], resolver: Resolver) -> dict[str, str]:
    """The union of every function's resolved environment; one variable with two values is an error."""
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for spec in specs.values():
        for name, value in spec.environment.items():
            text = as_text(resolver.resolve(value))
            if name in merged and merged[name] != text:
                raise StartupError(
                    f"{name} is {merged[name]!r} in {owner[name]} but {text!r} in {spec.name}; "
                    "the local stack runs all handlers in one process, so it needs one value"
                )
            merged[name], owner[name] = text, spec.name
    return merged


def lambda_runtime_environment(template: Mapping[str, Any]) -> dict[str, str]:
    """The variables Lambda's runtime sets that have one value for every function, so one process can hold them.

    AWS_LAMBDA_FUNCTION_NAME and AWS_LAMBDA_FUNCTION_MEMORY_SIZE differ per function, and os.environ is shared
    by the requests to every function running on threads here: they are left unset (docs/local-stack.md).
    """
    defaults = template.get("Globals", {}).get("Function", {})
    declared = resources_of_type(template, "AWS::Serverless::Function").values()
    runtimes = {str({**defaults, **resource.get("Properties", {})}.get("Runtime")) for resource in declared}
    shared = {"AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"}  # what the context's function_version says too
    if len(runtimes) == 1:
        shared["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{runtimes.pop()}"
    return shared


def local_parameters(api_url: str) -> dict[str, str]:
    """Values for template parameters that have no usable default locally."""
    return {
        "PublicBaseUrl": api_url,  # gateways send payers and IPNs back here
        "PortalOrigin": api_url,  # the local web page is served by the API server
        "CognitoIssuerUrl": "local",
        "CognitoAudience": "local",
    }


def apply_environment(template_env: dict[str, str], resource_refs: Iterable[str], sim_url: str | None) -> list[str]:
    """Put the handlers' environment in os.environ; returns the names your shell overrode.

    A variable naming a local resource (table, bucket, secret) is always set; any other variable already
    set in your shell wins, e.g. `LOG_LEVEL=DEBUG make dev` or a tunnel's PUBLIC_BASE_URL for real webhooks.
    """
    wanted = {
        **template_env,
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
        "POWERTOOLS_METRICS_DISABLED": "true",  # no CloudWatch; keeps EMF blobs out of the console
        # Outbound webhooks may go to http://127.0.0.1 (a receiver on this machine); never set in AWS.
        "WEBHOOK_ALLOW_LOOPBACK": "1",
    }
    wanted.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Payments")
    pinned = {name for name, value in wanted.items() if any(ref in value for ref in resource_refs)}
    overridden = [n for n, v in wanted.items() if n not in pinned and os.environ.get(n, v) != v]
    for name, value in wanted.items():
        if name in pinned:
            os.environ[name] = value
        else:
            os.environ.setdefault(name, value)
    for name in LOCAL_GATEWAY_ENV:
        os.environ[name] = gateway_credential(name)
    if sim_url:  # GATEWAY_SIM=on points every gateway at the simulator (docs/api.md#running-it-locally)
        for provider, name in API_BASE_VARS.items():
            os.environ[name] = f"{sim_url}/{provider}"
    return overridden


# ---- 5. gateway simulator -------------------------------------------------------------------------


def start_gateway_sim(port: int, api_url: str) -> Any | None:
    """The simulator's server, or None if the local/gateway_sim package is not there."""
    if importlib.util.find_spec("local.gateway_sim") is None:
        return None
    gateway_sim = importlib.import_module("local.gateway_sim")
    return gateway_sim.serve(port, api_url)


# ---- the web page's local helpers ------------------------------------------------------------------

WEB_TOKEN_GROUPS = ("admin", "finance", "support", "operator")
_CUSTOMER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")


def page_methods() -> list[dict[str, Any]]:
    """The registry's methods as the page needs them: so the page names no method or gateway itself."""
    from payments import registry

    methods = []
    for entry in registry.METHODS:
        gateway = registry.GATEWAY_BY_METHOD.get(entry.method)
        methods.append(
            {
                "method": entry.method.value,
                "label": entry.label,
                "payable": entry.payable,
                "provider": gateway.provider if gateway else None,
                "gateway_label": gateway.label if gateway else None,
            }
        )
    return methods


def start_outbox(template: Mapping[str, Any], specs: dict[str, FunctionSpec], table: str, bus: str) -> tuple[Any, Any]:
    """The publisher fed by the payments table's stream, as Lambda's event source mapping feeds it (local/streams.py),
    and the capture of what it puts on the bus. Read from the stream's end: the state put back at start is not
    published again."""
    from local.apigw import FunctionPool
    from local.streams import BusCapture, StreamPoller, stream_filters

    capture = BusCapture(bus, "payments-local-outbox-capture")
    pool = FunctionPool(specs[PUBLISHER])
    poller = StreamPoller(
        table,
        pool.invoke,
        filters=stream_filters(template, PUBLISHER),
        start="LATEST",
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    poller.run()
    return poller, capture


PUBLISHER = "PublishEventsFunction"


def start_queue_consumers(
    template: Mapping[str, Any], specs: dict[str, FunctionSpec], queue_urls: Mapping[str, str]
) -> list[Any]:
    """A poller per SQS event source mapping of template.yaml (local/queues.py), invoking its function as Lambda's
    mapping would: the outbound webhooks' delivery function reads its queue (docs/webhooks-outbound.md#locally)."""
    from local.apigw import FunctionPool
    from local.queues import SqsPoller, queue_sources

    pollers = []
    for function, queue, batch_size in queue_sources(template):
        poller = SqsPoller(
            queue_urls[queue],
            FunctionPool(specs[function]).invoke,
            batch_size=batch_size,
            log=lambda line: print(line, file=sys.stderr, flush=True),
        )
        poller.start()
        pollers.append(poller)
    return pollers


def web_routes(sim_url: str | None, capture: Any = None) -> dict[tuple[str, str], Callable[[Any], Any]]:
    """What local/web/ needs beyond the API, served by the local stack only (in AWS the page is hosted
    separately and signs in with Cognito): its config, demo sign-in, and settling at the simulator.

    POSTs take JSON only: a page of another origin cannot send JSON here without a CORS preflight, which
    this server does not grant, so only the page itself can mint tokens or settle payments."""
    from local.apigw import HttpRequest, HttpResponse
    from local.seed import DEMO_CUSTOMER, OTHER_CUSTOMER
    from local.token import make_token

    def json_body(request: HttpRequest) -> dict[str, Any] | None:
        if not (request.header("content-type") or "").lower().startswith("application/json"):
            return None
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def config(request: HttpRequest) -> HttpResponse:
        return HttpResponse.of_json(
            200, {"simulator": sim_url, "customers": [DEMO_CUSTOMER, OTHER_CUSTOMER], "methods": page_methods()}
        )

    def token(request: HttpRequest) -> HttpResponse:
        body = json_body(request)
        if body is None:
            return HttpResponse.of_json(400, {"message": 'send JSON: {"customer": "demo", "groups": ["finance"]}'})
        customer, groups = body.get("customer"), body.get("groups")
        if customer is not None and not (isinstance(customer, str) and _CUSTOMER_ID.fullmatch(customer)):
            return HttpResponse.of_json(422, {"message": "customer must be a customer id (letters, digits, _.@-)"})
        if not isinstance(groups, list) or not groups or not set(groups) <= set(WEB_TOKEN_GROUPS):
            return HttpResponse.of_json(422, {"message": f"groups must be a list of {', '.join(WEB_TOKEN_GROUPS)}"})
        return HttpResponse.of_json(200, {"token": make_token(customer, groups, ttl=DEMO_TOKEN_TTL_SECONDS)})

    def settle(request: HttpRequest) -> HttpResponse:
        body = json_body(request)
        if sim_url is None:
            return HttpResponse.of_json(404, {"message": "the gateway simulator is off (GATEWAY_SIM=off)"})
        if body is None:
            return HttpResponse.of_json(400, {"message": 'send JSON: {"provider", "ref", "outcome"}'})
        forward = urllib.request.Request(  # noqa: S310 - the simulator on 127.0.0.1
            f"{sim_url}/_sim/settle", json.dumps(body).encode(), {"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(forward, timeout=60) as answer:  # noqa: S310
                status, payload = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        except OSError as exc:
            return HttpResponse.of_json(502, {"message": f"the gateway simulator did not answer: {exc}"})
        return HttpResponse(status, [("content-type", "application/json")], payload)

    def local_outbox(request: HttpRequest) -> HttpResponse:
        """Everything sent so far (what reached the local bus), local stack only, no auth (docs/events.md#locally)."""
        if capture is None:
            return HttpResponse.of_json(404, {"message": "the outbox publisher is not running"})
        return HttpResponse.of_json(200, capture.outbox())

    return {
        ("GET", "/web/config.json"): config,
        ("POST", "/web/token"): token,
        ("POST", "/web/sim/settle"): settle,
        ("GET", "/_local/outbox"): local_outbox,
    }


# ---- main -----------------------------------------------------------------------------------------


def _stop_on_sigterm() -> None:
    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def main() -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # the startup lines appear at once, even in a pipe
    sim_on = os.environ.get("GATEWAY_SIM", "on").strip().lower() != "off"
    try:
        state_settings = read_state_settings()
        ports = read_ports(["AWS_PORT", "API_PORT", *(["GATEWAY_SIM_PORT"] if sim_on else [])])
        for name, port in ports.items():
            if port_in_use(port):
                raise StartupError(f"port {port} ({name}) is already in use")
    except StartupError as exc:
        fail(str(exc))

    _stop_on_sigterm()
    sys.path.insert(0, str(ROOT / "shared"))  # the layer, as Lambda lays it out
    stops: list[Callable[[], None]] = []
    try:
        return _run(ports, sim_on, state_settings, stops)
    except StartupError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        return 0
    finally:
        for stop in reversed(stops):
            stop()


def _run(
    ports: dict[str, int], sim_on: bool, state_settings: tuple[Path | None, str], stops: list[Callable[[], None]]
) -> int:
    from local.apigw import LocalApi, isolate_powertools_requests, make_server
    from local.resources import BUCKET, SECRET, TABLE, create_resources, physical_name

    aws_url = f"http://127.0.0.1:{ports['AWS_PORT']}"
    api_url = f"http://127.0.0.1:{ports['API_PORT']}"
    point_boto3_at(aws_url)
    moto = start_embedded_aws(ports["AWS_PORT"])
    stops.append(moto.stop)

    template = load_template()
    created = create_resources(template, LOCAL_REGION)
    state_file, state_mode = state_settings
    if state_file is not None:
        tables = [created.refs[logical_id] for logical_id in resources_of_type(template, TABLE)]
        buckets = [created.refs[logical_id] for logical_id in resources_of_type(template, BUCKET)]
        kept_secrets = [physical_name(logical_id, SECRET) for logical_id in resources_of_type(template, SECRET)]
        print(restore_state(state_file, state_mode))
        # Registered after moto.stop, so it runs before it: after the API and the simulator have stopped.
        stops.append(lambda: save_state(state_file, tables, buckets, kept_secrets))
    resolver = Resolver(template, created.refs, created.attributes, local_parameters(api_url), LOCAL_REGION)
    specs = functions(template)
    sim_url = f"http://127.0.0.1:{ports['GATEWAY_SIM_PORT']}" if sim_on else None
    handler_env = {**function_environment(specs, resolver), **lambda_runtime_environment(template)}
    overridden = apply_environment(handler_env, created.refs.values(), sim_url)

    with _listening("GATEWAY_SIM_PORT", ports):
        sim = start_gateway_sim(ports["GATEWAY_SIM_PORT"], api_url) if sim_on else None
    if sim is not None:
        stops.append(sim.shutdown)
    # Before the stream poller's thread cold-starts the publisher: the API's Powertools patch is in place first.
    isolate_powertools_requests()
    poller, capture = start_outbox(template, specs, created.refs["PaymentsTable"], created.refs["EventBus"])
    stops.append(poller.stop)
    stops.extend(consumer.stop for consumer in start_queue_consumers(template, specs, created.refs))
    seeded = os.environ.get("SEED_DEMO", "1").strip().lower() in ("1", "true", "yes", "on")
    if seeded:
        from local.seed import DEMO_CUSTOMER, OTHER_CUSTOMER, demo_data_present, seed_demo

        if demo_data_present():  # restored with the saved state: seeding again would double it
            print(f"demo payments      kept from the saved state (customers {DEMO_CUSTOMER!r} and {OTHER_CUSTOMER!r})")
        else:
            payments = seed_demo()
            print(f"seeded {len(payments)} demo payments (customers {DEMO_CUSTOMER!r} and {OTHER_CUSTOMER!r})")

    all_routes = routes(template)
    api = LocalApi(
        all_routes, specs, jwt_secret(), WEB_DIR, web_routes=web_routes(sim_url if sim is not None else None, capture)
    )
    with _listening("API_PORT", ports):
        server = make_server(api, ports["API_PORT"])
    stops.append(server.server_close)

    print(f"embedded AWS       {aws_url}  (DynamoDB and its streams, S3, Secrets Manager, EventBridge, SQS, KMS)")
    for logical_id, ref in created.refs.items():
        print(f"  {logical_id:<18} {ref}")
    if sim is not None:
        print(f"gateway simulator  {sim_url}  (payer pages; POST /_sim/settle sends webhooks: local/gateway_sim/)")
    elif sim_on:
        print("gateway simulator  not started: local/gateway_sim/ is missing")
    else:
        print("gateway simulator  off (GATEWAY_SIM=off); gateway API bases come from your environment")
    print(f"outbound events    {api_url}/_local/outbox  (the table's stream -> {PUBLISHER} -> the local bus)")
    print("outbound webhooks  the bus -> WebhookDeliveries queue -> DeliverWebhooksFunction (http://127.0.0.1 allowed)")
    print(f"web page           {api_url}/  (local only: demo sign-in, settle at the simulator; docs/web-page.md)")
    print(f"HTTP API           {api_url}  ({len(all_routes)} routes from template.yaml)")
    for route in all_routes:
        print(f"  {route.route_key:<58} {route.function}{'  (public)' if route.public else ''}")
    for name in overridden:
        print(f"note: {name} comes from your shell, not from template.yaml")
    if seeded:
        _print_demo_token(api_url)
    print("Ctrl-C stops everything.")
    server.serve_forever()
    return 0


@contextlib.contextmanager
def _listening(name: str, ports: dict[str, int]) -> Iterator[None]:
    """A port taken since the check at start is still a one-line error."""
    try:
        yield
    except OSError as exc:
        raise StartupError(f"port {ports.get(name)} ({name}) is already in use ({exc.strerror or exc})") from exc


def _print_demo_token(api_url: str) -> None:
    from local.seed import DEMO_CUSTOMER
    from local.token import make_token

    token = make_token(DEMO_CUSTOMER, ["finance"], ttl=DEMO_TOKEN_TTL_SECONDS)
    print(f"\ntoken for customer {DEMO_CUSTOMER!r}, group finance (12 h; `make token` makes more):")
    print(f"  export TOKEN={token}")
    print(f'  curl -s -H "Authorization: Bearer $TOKEN" {api_url}/payments')
    print(f'  curl -s -H "Authorization: Bearer $TOKEN" {api_url}/balance')
    print("locked out of vouchers after 5 wrong codes? `make unlock-vouchers CUSTOMER=demo` lifts it at once\n")


if __name__ == "__main__":
    sys.exit(main())
