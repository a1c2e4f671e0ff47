"""Canonical JSON as the web GUI writes it before signing a preset: JavaScript number formatting,
keys sorted by UTF-16 code units, no whitespace, non-ASCII as is.

The fixed vectors below were produced with node (`String(Number(text))` and `JSON.stringify`);
where node is installed the tests also compare against it directly on many generated values.
"""

from __future__ import annotations

import json
import math
import random
import struct
import subprocess

import pytest
from hypothesis import given, settings, strategies as st

from engine.protocol.canonical import canonical_json, js_number
from tests.conftest import require_tool

# (Python value, what JavaScript's String(value) prints), from node 18.
NUMBER_VECTORS = [
    (1.0, "1"), (0, "0"), (-0.0, "0"), (0.0, "0"), (1e21, "1e+21"), (1e-7, "1e-7"),
    (0.1, "0.1"), (123456789012345680000, "123456789012345680000"),
    (123456789012345680000.0, "123456789012345680000"), (5e-324, "5e-324"),
    (1e16, "10000000000000000"), (1.5e300, "1.5e+300"), (-1e-6, "-0.000001"),
    (1e-6, "0.000001"), (0.000001234, "0.000001234"), (123.456, "123.456"),
    (1e20, "100000000000000000000"), (1.7976931348623157e308, "1.7976931348623157e+308"),
    (2.5e-7, "2.5e-7"), (-123e-20, "-1.23e-18"), (0.30000000000000004, "0.30000000000000004"),
    (4.35, "4.35"), (100, "100"), (-42, "-42"), (1e100, "1e+100"), (0.00001, "0.00001"),
    (1.2e-5, "0.000012"), (12345678901234567890123.0, "1.2345678901234568e+22"),
    # Integers that only exist in Python: JavaScript would hold them as the nearest double.
    (12345678901234567890123, "1.2345678901234568e+22"), (99999999999999999999, "100000000000000000000"),
    (10**21, "1e+21"), (2**53, "9007199254740992"), (2**53 + 1, "9007199254740992"),
    (-(10**25), "-1e+25"), (10**400, "null"),
    (math.nan, "null"), (math.inf, "null"), (-math.inf, "null"),
]


@pytest.mark.parametrize(("value", "expected"), NUMBER_VECTORS, ids=[e for _, e in NUMBER_VECTORS])
def test_numbers_are_formatted_like_javascript(value: float | int, expected: str) -> None:
    assert js_number(value) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_text_reads_back_as_the_same_double(value: float) -> None:
    text = js_number(value)
    assert float(text) == value
    assert " " not in text and (not text.endswith(".0"))


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is the surrogate pair D83D DE00, which sorts before U+FF61 in JavaScript.
    value = {"b": 1, "a": "é", "é": 2, "😀": 3, "｡": 4, "Z": 5}
    assert canonical_json(value) == '{"Z":5,"a":"é","b":1,"é":2,"😀":3,"｡":4}'


def test_a_workflow_is_written_exactly_as_the_gui_signs_it() -> None:
    workflow = {
        "nodes": [{"id": "n1", "name": "Grüße 你好 🚀", "x": 10.0, "y": -2.5,
                   "module_id": "debug", "config_values": {"z": [3, 1.5, None, True],
                                                           "a": {"nested": {"deep": 1e21}}}}],
        "connections": [],
        "global_loop_config": {"isEnabled": False, "iterations": 1, "delayStatic": 0.1},
    }
    assert canonical_json({"workflow_data": workflow}) == (
        '{"workflow_data":{"connections":[],"global_loop_config":{"delayStatic":0.1,'
        '"isEnabled":false,"iterations":1},"nodes":[{"config_values":{"a":{"nested":'
        '{"deep":1e+21}},"z":[3,1.5,null,true]},"id":"n1","module_id":"debug",'
        '"name":"Grüße 你好 🚀","x":10,"y":-2.5}]}}')


def test_strings_escape_only_what_json_stringify_escapes() -> None:
    assert canonical_json(["a\"b\\c\n\t\x01é\u2028"]) == '["a\\"b\\\\c\\n\\t\\u0001é\u2028"]'


def test_values_json_cannot_express_are_refused() -> None:
    with pytest.raises(TypeError):
        canonical_json({"a": object()})


# --- cross-checks against a real JavaScript engine ----------------------------------------------

_NODE_NUMBERS = "const lines=require('fs').readFileSync(0,'utf8').trim().split('\\n');" \
                "console.log(lines.map(s=>String(Number(s))).join('\\n'));"
# Written the way stable-stringify libraries do it (keys sorted, written directly), as protocol.md
# describes. Rebuilding a sorted object and calling JSON.stringify would instead move
# integer-like keys ("2", "10") to the front: JavaScript objects enumerate those first.
_NODE_CANONICAL = """
const canon = v => Array.isArray(v) ? '[' + v.map(canon).join(',') + ']'
  : (v !== null && typeof v === 'object')
    ? '{' + Object.keys(v).sort().map(k => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}'
    : JSON.stringify(v);
const docs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(docs.map(canon)));
"""


def _random_doubles(count: int, seed: int = 20261129) -> list[float]:
    rng = random.Random(seed)
    values: list[float] = []
    while len(values) < count:
        kind = rng.randrange(4)
        if kind == 0:  # any bit pattern: subnormals, huge and tiny exponents
            value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        elif kind == 1:  # around the 1e-7 and 1e21 formatting thresholds
            value = rng.uniform(1, 10) * 10.0 ** rng.choice([-8, -7, -6, -5, 19, 20, 21, 22])
        elif kind == 2:  # short decimals, as people type them
            value = round(rng.uniform(-1e6, 1e6), rng.randrange(0, 8))
        else:
            value = float(rng.randrange(-10**18, 10**18))
        if math.isfinite(value):
            values.append(-value if rng.random() < 0.3 else value)
    return values


def test_numbers_match_node_on_generated_values() -> None:
    node = require_tool("node")
    values = _random_doubles(3000)
    out = subprocess.run([node, "-e", _NODE_NUMBERS], input="\n".join(map(repr, values)),
                         capture_output=True, text=True, check=True, timeout=60).stdout.split("\n")
    mismatches = [(v, js, js_number(v)) for v, js in zip(values, out) if js_number(v) != js]
    assert len(out) >= len(values) and not mismatches[:5]


_json_leaf = st.one_of(st.none(), st.booleans(), st.text(max_size=8),
                       st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False))
_json_doc = st.recursive(_json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=20)


@settings(max_examples=1, deadline=None)
@given(st.lists(_json_doc, min_size=200, max_size=200))
def test_canonical_json_matches_node_on_generated_documents(docs: list[object]) -> None:
    node = require_tool("node")
    fixed = [{"workflow_data": {"b": [1.0, 2.5e-7, "ü"], "a": {"😀": 1, "｡": {"x": -0.0}}}}]
    docs = fixed + docs
    out = subprocess.run([node, "-e", _NODE_CANONICAL], input=json.dumps(docs),
                         capture_output=True, text=True, check=True, timeout=60).stdout
    expected = json.loads(out)
    assert [canonical_json(d) for d in docs] == expected
