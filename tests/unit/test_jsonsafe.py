"""payments.jsonsafe.loads: json.loads with a nesting limit that never lets RecursionError out."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments import jsonsafe
from payments.jsonsafe import MAX_DEPTH, JSONTooDeep, loads, nesting_depth

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.sampled_from('ab"\\[]{}\n é')),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=40,
)


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


def nested(depth: int, kind: str = "[") -> str:
    close = {"[": "]", "{": "}"}[kind]
    inner = '"a":' if kind == "{" else ""
    return (kind + inner) * (depth - 1) + kind + close + close * (depth - 1) if depth else "0"


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_it_reads_what_json_loads_reads_and_measures_the_depth(value: Any) -> None:
    text = json.dumps(value)
    assert loads(text) == json.loads(text)
    assert nesting_depth(text) == depth_of(value)
    assert loads(text.encode("utf-16")) == json.loads(text.encode("utf-16"))


def test_the_hooks_are_passed_on() -> None:
    text = '{"a": 1.50, "b": 7, "c": NaN}'
    assert loads(text, parse_float=Decimal, parse_int=str, parse_constant=lambda name: name) == {
        "a": Decimal("1.50"),
        "b": "7",
        "c": "NaN",
    }


@pytest.mark.parametrize("kind", ["[", "{"])
def test_the_limit_is_inclusive(kind: str) -> None:
    assert nesting_depth(nested(MAX_DEPTH, kind)) == MAX_DEPTH
    loads(nested(MAX_DEPTH, kind))
    with pytest.raises(JSONTooDeep) as caught:
        loads(nested(MAX_DEPTH + 1, kind))
    assert caught.value.max_depth == MAX_DEPTH
    assert str(caught.value) == caught.value.message == f"JSON is nested too deeply (at most {MAX_DEPTH} levels)"
    assert loads(nested(3), max_depth=3) == [[[]]]
    with pytest.raises(JSONTooDeep, match="at most 2 levels"):
        loads(nested(3), max_depth=2)


@pytest.mark.parametrize("depth", [1_000, 1_500, 100_000, 1_000_000])
def test_deep_input_is_a_value_error_never_a_recursion_error(depth: int) -> None:
    for text in (nested(depth), nested(depth, "{"), "[" * depth, '{"a":' * depth, "[" * depth + "]"):
        with pytest.raises(ValueError, match="nested too deeply"):
            loads(text)
        with pytest.raises(ValueError, match="nested too deeply"):
            loads(text.encode())


def test_even_a_limit_above_the_interpreters_is_a_value_error() -> None:
    with pytest.raises(JSONTooDeep):
        loads(nested(50_000), max_depth=10**9)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(["[" * 5000]),  # brackets in strings are text
        json.dumps({"[" * 100: "{" * 100}),
        json.dumps(['\\"[[[[' * 50]),  # escaped quotes do not end a string
        "[" + ",".join(["[]"] * 10_000) + "]",  # many brackets, shallow
    ],
)
def test_brackets_that_are_not_nesting_are_fine(text: str) -> None:
    assert loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ["{not json", "[1,", "", "\ufeff{}", '"abc', '["' + "[" * 5000])
def test_other_refusals_are_what_json_loads_raises(text: str) -> None:
    with pytest.raises(ValueError):  # JSONDecodeError or JSONTooDeep: both ValueErrors
        loads(text)


def test_huge_integers_are_a_value_error_as_in_json_loads() -> None:
    with pytest.raises(ValueError, match="digits"):
        loads("9" * 5000)


def test_it_imports_only_the_standard_library() -> None:
    source = jsonsafe.__file__
    with open(source, encoding="utf-8") as handle:
        imports = {line.split()[1].split(".")[0] for line in handle if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "json", "re", "collections", "itertools", "typing"}
