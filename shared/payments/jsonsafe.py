"""`json.loads` that refuses deeply nested input instead of failing with RecursionError (docs/errors.md).

The standard parser recurses once per `[` or `{`, so about 1,000 levels of nesting (a few kilobytes of
`[`) raise RecursionError: not a ValueError, so code that catches bad JSON lets it through and the caller
answers 500. `loads` checks the nesting before it parses, cheaply:

- a text with at most `max_depth` opening brackets cannot be too deep: two `str.count` calls, then the
  standard parser (nearly every request and webhook);
- otherwise the strings are cut out (a `[` inside one is text, not structure) and the running depth of the
  remaining brackets is computed in C (`itertools.accumulate`), still one pass and no Python loop per byte.

Only the standard library is imported: the read paths load this module (tests/unit/test_read_path_imports.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

__all__ = ["MAX_DEPTH", "JSONTooDeep", "loads"]

MAX_DEPTH = 64
"""Levels of nesting `loads` accepts by default: `[]` and `{}` are one level, `{"a": [1]}` two. The API's
bodies need 3, gateway webhooks about 10; far below the parser's limit of about 1,000."""

# A JSON string: a quote, then anything but a quote or backslash, or a backslash and any character.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JSONTooDeep(ValueError):
    """The JSON text nests arrays and objects deeper than `max_depth`.

    A ValueError, so `except ValueError` catches it together with `json.JSONDecodeError`; it is not a
    JSONDecodeError itself, as it has no meaningful position.
    """

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.message = f"JSON is nested too deeply (at most {max_depth} levels)"
        super().__init__(self.message)


def nesting_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (0 for a scalar). Linear time, no recursion.

    For text that is not valid JSON this is an upper bound of how deep the standard parser gets before it
    fails: it parses strings exactly as the pattern above delimits them.
    """
    structure = _NOT_A_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, structure)), default=0)


def loads(
    s: str | bytes | bytearray,
    *,
    parse_float: Callable[[str], Any] | None = None,
    parse_int: Callable[[str], Any] | None = None,
    parse_constant: Callable[[str], Any] | None = None,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """`json.loads(s, parse_float=..., parse_int=..., parse_constant=...)`, refusing more than `max_depth` levels.

    Raises JSONTooDeep (a ValueError) before parsing anything deeper than `max_depth`, and otherwise what
    `json.loads` raises: json.JSONDecodeError for text that is not JSON, UnicodeDecodeError for bytes that
    are not UTF-8/16/32, ValueError for an integer of more than 4,300 digits (`sys.get_int_max_str_digits`)
    and whatever the hooks raise. So `except ValueError` covers every refusal of the input; RecursionError
    never escapes. Bytes are decoded as `json.loads` decodes them (UTF-8, -16 or -32, detected).

    Example, as the API reads request bodies (JSON numbers as Decimal, never float):

        body = jsonsafe.loads(text, parse_float=Decimal)
    """
    text = s.decode(json.detect_encoding(s), "surrogatepass") if isinstance(s, (bytes, bytearray)) else s
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise JSONTooDeep(max_depth)
    try:
        return json.loads(text, parse_float=parse_float, parse_int=parse_int, parse_constant=parse_constant)
    except RecursionError as exc:  # only if max_depth was set near the interpreter's own limit
        raise JSONTooDeep(max_depth) from exc
