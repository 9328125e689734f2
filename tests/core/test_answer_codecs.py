"""An upstream answer's JSON and base64 (`reapi._answer_codecs`): read by orjson and pybase64
when installed, and always to the standard library's result: the same value (and types), or the
standard library's own error with nothing chained."""

import base64
import binascii
import json
import random

import pytest

from reapi import _answer_codecs
from reapi._answer_codecs import b64decode_strict, json_loads

TRICKY_JSON = [
    '{"a": 1, "b": [true, false, null], "c": {"d": "e"}}',
    '{"a":1,"b":2,"a":3}',  # a repeated key: the last value, in the first one's place
    "-0",
    "-0.0",
    "1E2",
    "0.1",
    "9007199254740993",
    "9007199254740993.0",
    "18446744073709551615",  # the widest integer orjson holds
    "18446744073709551616",  # one more: orjson reads a float, json an integer
    "-9223372036854775809",
    '{"usage": {"total_tokens": 123456789012345678901234567890}}',
    "[1e19, 1.5e19]",  # floats that look like what orjson makes of a wide integer
    "1e400",  # past a double: json reads infinity, orjson refuses
    "-1e400",
    "1e-400",
    "NaN",
    "[Infinity, -Infinity]",
    '"\\ud800"',  # a lone surrogate, escaped
    '"\\udfff"',
    '"\\ud83d\\ude00"',
    '"\\u0000"',
    '"\u2028"',
    '"\x01"',  # a control character: refused by both
    "\ufeff{}",
    "[1,]",
    "'a'",
    "",
    " ",
    '{"a": 1} ',
    '{"a": 1} x',
    "[" * 1100 + "]" * 1100,  # deeper than orjson reads
    "2.2250738585072011e-308",
    "4.9e-324",
    "123456789012345678901234567890.5",
]


def outcome(read, text):
    try:
        value = read(text)
    except ValueError as error:
        return "refused", type(error)
    except RecursionError:
        return "too deep", RecursionError
    return "read", _typed(value)


def _typed(value):
    """The value with every scalar's type, so that 1 and 1.0 (and True) differ."""
    if isinstance(value, dict):
        return [(key, _typed(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, float) and value != value:
        return (float, "nan")
    return (type(value), value)


def _bodies():
    rng = random.Random(15)
    yield from TRICKY_JSON
    for _ in range(300):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 40)))
        sign = rng.choice(["", "-"])
        yield f"{sign}{digits.lstrip('0') or '0'}"
        yield f"[{sign}{digits[:20]}.{digits[20:] or '0'}e{rng.randint(-330, 330)}]"


@pytest.mark.parametrize("as_bytes", [False, True])
def test_json_reads_as_the_json_module_does(as_bytes):
    assert _answer_codecs._orjson is not None  # the gateway's extras are installed here
    for body in _bodies():
        text = body.encode("utf-8", "surrogatepass") if as_bytes else body
        assert outcome(json_loads, text) == outcome(json.loads, text), body[:60]


def test_json_bodies_orjson_cannot_read_go_to_json():
    for text in (b"\xef\xbb\xbf{}", '{"a": 1}'.encode("utf-16"), b'"\xed\xa0\x80"'):
        assert outcome(json_loads, text) == outcome(json.loads, text)
        assert json_loads(text) == json.loads(text)


def test_a_wide_integer_stays_an_integer():
    assert json_loads('{"n": 18446744073709551616}') == {"n": 18446744073709551616}
    assert type(json_loads("[-9223372036854775809]")[0]) is int


def test_a_refusal_is_the_json_modules_with_nothing_chained():
    with pytest.raises(json.JSONDecodeError) as caught:
        json_loads('{"prompt": "secret", ')
    assert caught.value.__context__ is None and caught.value.__cause__ is None


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _base64_inputs():
    rng = random.Random(64)
    yield from ["", "QQ==", "QR==", "QUI=", "QUJD", "QUJD=", "QUJD==", "QUJD===", "=QUJD"]
    yield from ["QQ=", "QQ", "Q", "Q===", "====", "QUJ=D", "QQ==QQ==", "QU JD", "QUJD\n"]
    yield from ["-_-_", "QUJD\x00", "QUJDé", "\ud800AAA"]
    yield base64.b64encode(bytes(range(256)) * 20).decode()
    for _ in range(3000):
        length = rng.randint(0, 14)
        yield "".join(rng.choice(ALPHABET + "====  \n-_é") for _ in range(length))
        data = rng.randbytes(rng.randint(0, 40))
        text = base64.b64encode(data).decode()
        cut = rng.randint(0, len(text))
        yield text[:cut] + rng.choice(["", "=", "==", "A", " ", "=A"]) + text[cut:]


def test_base64_reads_as_strict_binascii_does():
    assert _answer_codecs._pybase64 is not None  # the gateway's extras are installed here
    strict = lambda text: binascii.a2b_base64(text, strict_mode=True)  # noqa: E731
    for text in _base64_inputs():
        assert outcome(b64decode_strict, text) == outcome(strict, text), repr(text)


def test_padding_after_a_whole_quantum_is_read_as_binascii_reads_it():
    """pybase64 refuses `QUJD=`; strict binascii reads it, and so does reapi (as before)."""
    assert b64decode_strict("QUJD=") == b"ABC"


def test_a_base64_refusal_is_binasciis_with_nothing_chained():
    with pytest.raises(binascii.Error) as caught:
        b64decode_strict("QUJ=D")
    assert caught.value.__context__ is None and caught.value.__cause__ is None


def _reference_no_wide_integer(value):
    """The check as first written: every value visited one by one."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif type(item) is float and abs(item) >= 2.0**63 and item.is_integer():
            return False
    return True


def _random_value(rng, depth=0):
    roll = rng.random()
    if depth < 4 and roll < 0.25:
        return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randint(0, 5))}
    if depth < 4 and roll < 0.45:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return rng.choice(
        [
            "text",
            12,
            True,
            None,
            0.5,
            -0.0,
            1e19,  # whole and past 2**63: what orjson makes of a wide integer
            -9.223372036854776e18,  # -2**63: wide too
            9.2e18,  # whole, under 2**63
            1.5e300,
            float("inf"),
            2**70,  # an int (json's reading), never wide
        ]
    )


def test_the_wide_integer_walk_finds_a_wide_float_wherever_it_is():
    """The walk stacks containers only and looks at scalars where they lie: it must still find
    a wide float at any depth, in a dict or a list, among any other values, and nothing else."""
    rng = random.Random(63)
    found = 0
    for _ in range(5000):
        value = _random_value(rng)
        expected = _reference_no_wide_integer(value)
        assert _answer_codecs._no_wide_integer(value) is expected, value
        found += not expected
    assert 500 < found < 4500  # both answers were exercised


def test_a_wide_float_deep_in_an_event_sends_the_answer_to_json():
    text = '{"type": "x", "usage": {"a": 1, "details": {"b": [1, 2, 18446744073709551616]}}}'
    value = json_loads(text)
    assert value["usage"]["details"]["b"][2] == 18446744073709551616
    assert type(value["usage"]["details"]["b"][2]) is int
    assert _answer_codecs._no_wide_integer(json.loads(text.replace("18446744073709551616", "1")))
