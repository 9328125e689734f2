"""SimRequest helpers and the multipart parser (binary parts byte for byte)."""

import httpx
import pytest

from reapi.testing import SimRequest, json_answer, parse_multipart, png_bytes


def encoded(files, data=None):
    request = httpx.Request("POST", "http://x/", files=files, data=data)
    return request.headers["content-type"], request.read()


def test_multipart_keeps_binary_parts_exactly():
    binary = bytes(range(256)) * 4 + b"\r\n--not-a-boundary\r\n"
    ctype, body = encoded(
        [("image[]", ("a.png", png_bytes(), "image/png")), ("image[]", ("b.bin", binary))],
        {"prompt": 'say "hi"', "n": "2"},
    )
    parts = parse_multipart(ctype, body)
    by_name = {}
    for part in parts:
        by_name.setdefault(part.name, []).append(part)
    assert by_name["prompt"][0].text == 'say "hi"' and by_name["prompt"][0].filename is None
    assert [p.data for p in by_name["image[]"]] == [png_bytes(), binary]
    assert by_name["image[]"][0].filename == "a.png"
    assert by_name["image[]"][0].content_type == "image/png"


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/json", b"{}"),
        ("multipart/form-data", b"--x\r\n\r\n--x--"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\nv"),
        ("multipart/form-data; boundary=x", b"--x\r\nno headers--x--"),
    ],
)
def test_malformed_multipart_is_a_value_error(ctype, body):
    with pytest.raises(ValueError):
        parse_multipart(ctype, body)


def test_request_helpers():
    request = SimRequest(
        "POST",
        "/v1/x",
        "a=1&b=two+words&a=3",
        {"content-type": "Application/JSON; charset=utf-8"},
        b'{"k": [1]}',
    )
    assert request.params() == {"a": "3", "b": "two words"}
    assert request.json() == {"k": [1]}
    assert request.content_type == "application/json"


def test_json_answer_is_a_response_triple():
    status, headers, body = json_answer(201, {"ok": True}, {"x-a": "1"})
    assert status == 201 and headers["content-type"] == "application/json"
    assert headers["x-a"] == "1" and body == b'{"ok":true}'
