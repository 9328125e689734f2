"""The event-stream reader adapters share: the standard's line endings, fields and comments."""

import pytest

from reapi import APIResponseError
from reapi.providers import UpstreamResponse
from reapi.providers._sse import ServerSentEvent, is_event_stream, read_events


def test_events_fields_and_line_endings():
    body = (
        b"\xef\xbb\xbf: a comment\n\n"  # a BOM, then a comment-only block: no event
        b'event: one\r\ndata: {"a":\r\ndata:  1}\r\nid: 7\r\nretry: 10\r\n\r\n'
        b"data: plain\r\rdata:\n\n"  # CR line ends; an empty data field is still an event
        b"event: ignored-without-data\n\n"
        b"event: cut\ndata: off"  # no blank line: cut off by the end of the body
    )
    assert read_events(body) == [
        ServerSentEvent("one", '{"a":\n 1}'),
        ServerSentEvent("message", "plain"),
        ServerSentEvent("message", ""),
    ]


def test_a_line_cut_by_the_end_is_not_an_event():
    assert read_events(b"data: x\n") == []
    assert read_events(b"data: x\n\n") == [ServerSentEvent("message", "x")]


def test_event_json_errors_do_not_chain_the_data():
    with pytest.raises(APIResponseError) as info:
        ServerSentEvent("message", "{MARKER").json("p")
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert "MARKER" not in str(info.value)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/event-stream", True),
        ("Text/Event-Stream; charset=utf-8", True),
        ("application/json", False),
        (None, False),
    ],
)
def test_is_event_stream(content_type, expected):
    headers = {"content-type": content_type} if content_type else {}
    assert is_event_stream(UpstreamResponse(200, headers, b"")) is expected
