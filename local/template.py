"""template.yaml as the local stack reads it: resources, functions, routes, and intrinsic functions.

template.yaml is the one source of truth for routes; nothing here lists a route by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account
STACK_NAME = "payments-local"


# ---- loading --------------------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """A SafeLoader that turns CloudFormation short tags into their long form: `!Ref X` -> {"Ref": "X"}."""


def _construct_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        template = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(template, dict) or "Resources" not in template:
        raise ValueError(f"{path} is not a CloudFormation template (no Resources)")
    return template


def resources_of_type(template: Mapping[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res.get("Type") in types}


# ---- intrinsic functions --------------------------------------------------------------------------

_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


@dataclass
class Resolver:
    """Resolves intrinsics against local values. Whatever has no local meaning becomes a harmless placeholder.

    refs: logical id -> what `!Ref` gives (table/bucket name, secret ARN).
    attributes: (logical id, attribute) -> what `!GetAtt` gives.
    parameters: parameter name -> local value; otherwise the parameter's Default is used.
    """

    template: Mapping[str, Any]
    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    region: str = "us-east-1"

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": LOCAL_ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.refs:
            return self.refs[name]
        declared = self.template.get("Parameters", {}).get(name)
        if declared is not None:
            value = self.parameters.get(name, declared.get("Default", ""))
            if declared.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                return [part.strip() for part in value.split(",") if part.strip()]
            return value
        return f"local-{name}"

    def get_att(self, name: str, attribute: str) -> Any:
        return self.attributes.get((name, attribute), f"local-{name}-{attribute}")

    def sub(self, text: str, variables: Mapping[str, Any] | None = None) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if variables and name in variables:
                return as_text(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                return as_text(self.get_att(*name.split(".", 1)))
            return as_text(self.ref(name))

        # `${!Literal}` is CloudFormation's escape for a literal `${Literal}`.
        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        [(key, arg)] = value.items()
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            return self.get_att(*arg)
        if key == "Fn::Sub":
            return self.sub(arg) if isinstance(arg, str) else self.sub(arg[0], arg[1])
        if key == "Fn::Join":
            return str(arg[0]).join(as_text(v) for v in self.resolve(arg[1]))
        if key == "Fn::Select":
            return self.resolve(arg[1])[int(self.resolve(arg[0]))]
        if key.startswith("Fn::"):
            return f"local-unresolved-{key[4:]}"
        return {key: self.resolve(arg)}


def as_text(value: Any) -> str:
    """How CloudFormation renders a value into a string (environment variables are strings)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(as_text(v) for v in value)
    return "" if value is None else str(value)


# ---- functions and routes -------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function, with Globals.Function applied."""

    name: str  # logical id
    code_dir: Path
    handler: str  # "app.lambda_handler"
    memory_mb: int
    timeout_s: int
    environment: dict[str, Any]  # unresolved

    @property
    def handler_file(self) -> Path:
        return self.code_dir / (self.handler.rsplit(".", 1)[0].replace(".", "/") + ".py")

    @property
    def handler_attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


def functions(template: Mapping[str, Any], root: Path = ROOT) -> dict[str, FunctionSpec]:
    defaults = template.get("Globals", {}).get("Function", {})
    specs = {}
    for name, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        props = {**defaults, **resource.get("Properties", {})}
        environment = {
            **defaults.get("Environment", {}).get("Variables", {}),
            **resource.get("Properties", {}).get("Environment", {}).get("Variables", {}),
        }
        specs[name] = FunctionSpec(
            name=name,
            code_dir=root / str(props.get("CodeUri", ".")),
            handler=str(props.get("Handler", "app.lambda_handler")),
            memory_mb=int(props.get("MemorySize", 128)),
            timeout_s=int(props.get("Timeout", 3)),
            environment=environment,
        )
    return specs


_SEGMENT_RANK = {"literal": 0, "param": 1, "greedy": 2}


@dataclass(frozen=True)
class Route:
    """One HttpApi event: `GET /payments/{id}` -> ListPaymentsFunction."""

    method: str  # upper case, or ANY
    path: str  # as declared: /payments/{id}, /files/{proxy+}
    function: str  # logical id of the function
    public: bool  # Auth: {Authorizer: NONE}, or no authorizer at all

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, path: str) -> dict[str, str] | None:
        """Path parameters if `path` matches this route's path, else None."""
        pattern = self.path.strip("/").split("/")
        parts = path.strip("/").split("/")
        params: dict[str, str] = {}
        for index, segment in enumerate(pattern):
            if segment.startswith("{") and segment.endswith("+}"):
                rest = parts[index:]
                if not rest or rest == [""]:
                    return None
                params[segment[1:-2]] = unquote("/".join(rest))
                return params
            if index >= len(parts):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                if not parts[index]:
                    return None
                params[segment[1:-1]] = unquote(parts[index])
            elif segment != parts[index]:
                return None
        return params if len(parts) == len(pattern) else None

    def specificity(self) -> tuple[Any, ...]:
        """API Gateway prefers literal segments over {param} over {proxy+}, and a method over ANY."""
        kinds = [
            "greedy" if s.endswith("+}") else "param" if s.startswith("{") else "literal"
            for s in self.path.strip("/").split("/")
        ]
        return tuple(_SEGMENT_RANK[k] for k in kinds), self.method == "ANY"


def _default_authorizers(template: Mapping[str, Any]) -> dict[str, str | None]:
    """ApiId logical id -> its DefaultAuthorizer (None if it has none). Key "" is SAM's implicit API."""
    global_auth = template.get("Globals", {}).get("HttpApi", {}).get("Auth", {})
    apis: dict[str, str | None] = {"": global_auth.get("DefaultAuthorizer")}
    for name, api in resources_of_type(template, "AWS::Serverless::HttpApi").items():
        auth = {**global_auth, **api.get("Properties", {}).get("Auth", {})}
        apis[name] = auth.get("DefaultAuthorizer")
    return apis


def routes(template: Mapping[str, Any]) -> list[Route]:
    default_authorizer = _default_authorizers(template)
    found = []
    for name, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") != "HttpApi":
                continue
            props = event.get("Properties", {})
            if "Path" not in props:
                continue
            api_ref = props.get("ApiId", {})
            api_id = api_ref.get("Ref", "") if isinstance(api_ref, dict) else ""
            authorizer = props.get("Auth", {}).get("Authorizer") or default_authorizer.get(api_id)
            found.append(
                Route(
                    method=str(props.get("Method", "ANY")).upper(),
                    path=str(props["Path"]),
                    function=name,
                    public=authorizer in (None, "NONE"),
                )
            )
    return found


def find_route(all_routes: Iterable[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The most specific route for `method path`, as API Gateway picks it, with its path parameters."""
    candidates = []
    for route in all_routes:
        if route.method not in (method.upper(), "ANY"):
            continue
        params = route.match(path)
        if params is not None:
            candidates.append((route.specificity(), route, params))
    if not candidates:
        return None
    _, route, params = min(candidates, key=lambda c: c[0])
    return route, params
