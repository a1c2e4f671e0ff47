"""The frame decoder's two fast paths against what they stand in for: the nesting check
against the real depth of the decoded value, and orjson against the standard library."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from engine.protocol.errors import EngineError
from engine.protocol.frames import nesting_bound, parse_frame

LIMIT = 4  # small, so that generated values reach it often

# Strings full of what the nesting check must see through: brackets, quotes, backslashes.
tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\/ab\u00e9\u2028\U0001f600\n'), max_size=12)
scalars = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | \
    st.floats(allow_nan=False, allow_infinity=False) | tricky_text
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(tricky_text, inner, max_size=3), max_leaves=30)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@settings(max_examples=400, deadline=None)
@given(values, st.booleans())
def test_the_nesting_bound_is_exact_at_the_limit_and_never_below_the_depth(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    real, bound = depth(value), nesting_bound(text, LIMIT)
    if real > LIMIT:
        assert bound == LIMIT + 1
    elif real == LIMIT:
        assert bound == LIMIT
    else:
        assert real <= bound <= LIMIT or bound == text.count("[") + text.count("{")


def _frame(value: Any) -> str:
    return json.dumps({"auth": {}, "payload": {"type": "x", "value": value}}, ensure_ascii=False)


@settings(max_examples=300, deadline=None)
@given(values)
def test_a_frame_decodes_to_what_the_standard_library_reads(value: Any) -> None:
    """Integers past 64 bits and lone surrogates included, which orjson alone reads otherwise."""
    text = _frame(value)
    if nesting_bound(text) > 64:
        return
    decoded = parse_frame(text).payload["value"]
    assert decoded == json.loads(text)["payload"]["value"]
    assert json.dumps(decoded) == json.dumps(value)  # the same types too (an int stays an int)


@pytest.mark.parametrize("text", ['{"auth": {}, "payload": {"type": "x", "v": 123456789012345678901234567}}',
                                  '{"auth": {}, "payload": {"type": "x", "v": "\\ud800"}}',
                                  '{"auth": {}, "payload": {"type": "x", "v": -0.0}}'])
def test_what_orjson_reads_otherwise_is_read_exactly(text: str) -> None:
    got = parse_frame(text).payload["v"]
    want = json.loads(text)["payload"]["v"]
    assert got == want and type(got) is type(want)
    if isinstance(want, float):
        assert math.copysign(1, got) == math.copysign(1, want)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_numbers_json_has_not_are_refused(number: str) -> None:
    with pytest.raises(EngineError) as info:
        parse_frame('{"auth": {}, "payload": {"type": "x", "v": %s}}' % number)
    assert "not valid JSON" in info.value.message
