"""The one server-sent events decoder (`reapi._sse`), for the SDK's gateway streams and the
adapters' streamed answers alike: the WHATWG event-stream rules (fields, comments, line endings,
the byte order mark, an event cut off by the end), chunks cut anywhere, and its size bound."""

import pytest

from reapi import APIResponseError
from reapi._sse import (
    EventDecoder,
    EventTooLarge,
    ServerSentEvent,
    is_event_stream,
    read_events,
)

MESSAGE = "message"


def decode(*chunks: bytes, decoder: EventDecoder | None = None) -> list[ServerSentEvent]:
    decoder = decoder or EventDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


def tiny() -> EventDecoder:
    return EventDecoder(max_event_bytes=64)


def every_split(body: bytes) -> list[list[bytes]]:
    """The body as one chunk, byte by byte, and cut in two at every place."""
    return [[body], [body[i : i + 1] for i in range(len(body))]] + [
        [body[:i], body[i:]] for i in range(1, len(body))
    ]


def test_events_fields_and_line_endings():
    body = (
        b"\xef\xbb\xbf: a comment\n\n"  # a BOM, then a comment-only block: no event
        b'event: one\r\ndata: {"a":\r\ndata:  1}\r\nid: 7\r\nretry: 10\r\n\r\n'
        b"data: plain\r\rdata:\n\n"  # CR line ends; an empty data field is still an event
        b"event: ignored-without-data\n\n"
        b"event: cut\ndata: off"  # no blank line: cut off by the end of the body
    )
    expected = [
        ServerSentEvent("one", '{"a":\n 1}', "7"),
        ServerSentEvent(MESSAGE, "plain", "7"),
        ServerSentEvent(MESSAGE, "", "7"),
    ]
    for chunks in every_split(body):
        decoder = EventDecoder()
        assert decode(*chunks, decoder=decoder) == expected, chunks
        assert decoder.retry_ms == 10 and decoder.last_id == "7"
    assert read_events(body, "p") == expected


def test_a_line_cut_by_the_end_is_not_an_event():
    assert read_events(b"data: x\n", "p") == []
    assert read_events(b"data: x\r", "p") == []
    assert read_events(b"data: x\n\n", "p") == [ServerSentEvent(MESSAGE, "x")]


def test_events_ids_and_data_lines():
    decoder = EventDecoder()
    events = decode(
        b'retry: 1500\n\n: keep-alive\n\nid: a\nevent: video.updated\ndata: {"x":\ndata: 1}\n\n'
        b"data:plain\n\n",
        decoder=decoder,
    )
    assert events == [
        ServerSentEvent("video.updated", '{"x":\n1}', "a"),
        ServerSentEvent(MESSAGE, "plain", "a"),  # the id carries over; the type does not
    ]
    assert decoder.retry_ms == 1500 and decoder.last_id == "a"


def test_what_is_not_an_event():
    decoder = EventDecoder()
    assert decode(b"event: x\n\nid: b\n\n: comment\n\n", decoder=decoder) == []  # no data
    assert decoder.last_id == "b"
    assert decode(b"id: c\0d\nretry: soon\ndata: y\n\n", decoder=decoder)[0].id == "b"
    assert decoder.retry_ms is None


def test_only_cr_lf_and_crlf_end_a_line():
    """`str.splitlines` also splits on U+2028, U+0085, form feeds and more: the standard does
    not, so they stay in the value."""
    odd = "a\u2028b\u2029c\x85d\x0be\x0cf\x1cg"
    assert read_events(f"data: {odd}\n\n".encode(), "p") == [ServerSentEvent(MESSAGE, odd)]


def test_a_crlf_cut_between_chunks_is_one_line_end():
    assert decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [
        ServerSentEvent(MESSAGE, "a\nb")
    ]
    assert decode(b"data: a\r", b"", b"\n\r\n") == [ServerSentEvent(MESSAGE, "a")]


def test_the_byte_order_mark_is_dropped_once_and_only_at_the_start():
    assert decode(b"\xef\xbb", b"\xbfdata: x\n\n") == [ServerSentEvent(MESSAGE, "x")]
    # A second mark is part of the first field's name: that field is no field.
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n") == [
        ServerSentEvent(MESSAGE, "y")
    ]
    assert decode(b"data: \xef\xbb\xbfx\n\n") == [ServerSentEvent(MESSAGE, "\ufeffx")]


def test_utf8_is_decoded_across_chunks_and_bad_bytes_are_replaced():
    body = "data: café ☕\n\n".encode()
    for chunks in every_split(body):
        assert decode(*chunks) == [ServerSentEvent(MESSAGE, "café ☕")]
    assert decode(b"data: \xff\xe2\n\n") == [ServerSentEvent(MESSAGE, "\ufffd\ufffd")]


def test_field_names_and_values():
    body = (
        b"data\n"  # no colon: the whole line is the name, the value is empty
        b"data:x\n"  # no space: the value as is
        b"data:  y\n"  # only the first space goes
        b"Data: case matters\n"
        b"unknown: skipped\n"
        b"event\n\n"  # an empty type is "message"
    )
    assert read_events(body, "p") == [ServerSentEvent(MESSAGE, "\nx\n y")]


def test_retry_is_ascii_digits_only():
    decoder = EventDecoder()
    for value in (b"1.5", b"-1", b"10s", b"", b" 5", b"\xd9\xa4", b"1234567890"):
        decode(b"retry: " + value + b"\n\n", decoder=decoder)
        assert decoder.retry_ms is None, value
    decode(b"retry: 0\n\n", decoder=decoder)  # zero is a delay too
    assert decoder.retry_ms == 0
    decode(b"retry:250\n", decoder=decoder)  # a field: no blank line needed
    assert decoder.retry_ms == 250


def test_the_last_id_is_set_by_a_blank_line_and_may_be_emptied():
    decoder = EventDecoder()
    decode(b"id: 1\ndata: a\n\nid: 2\ndata: b", decoder=decoder)  # the second event is cut
    assert decoder.last_id == "1"
    decoder = EventDecoder()
    events = decode(b"id: 1\ndata: a\n\nid\ndata: b\n\n", decoder=decoder)
    assert [e.id for e in events] == ["1", ""] and decoder.last_id == ""


def test_a_new_stream_keeps_the_last_id_and_retry_and_drops_the_rest():
    decoder = EventDecoder()
    decode(b"retry: 300\nid: 9\ndata: a\n\nevent: x\ndata: cut\nda", decoder=decoder)
    decoder.new_stream()
    assert decode(b"\xef\xbb\xbfta: b\n\ndata: c\n\n", decoder=decoder) == [
        ServerSentEvent(MESSAGE, "c", "9")  # "ta: b" is no field: the cut line went
    ]
    assert decoder.retry_ms == 300 and decoder.last_id == "9"


def test_an_event_over_the_bound_is_refused():
    with pytest.raises(EventTooLarge):
        decode(b"data: " + b"x" * 40 + b"\n" + b"data: " + b"x" * 40 + b"\n", decoder=tiny())
    decoder = tiny()
    with pytest.raises(EventTooLarge):  # a line that never ends, however it comes
        for _ in range(20):
            decoder.feed(b"data: xxxxxx")


def test_the_bound_is_per_event_and_comments_do_not_count():
    decoder = tiny()
    body = b"data: " + b"x" * 50 + b"\n\n"
    assert len(decode(*[body] * 100, decoder=decoder)) == 100
    assert decode(*[b": " + b"k" * 50 + b"\n"] * 100, b"data: y\n\n", decoder=decoder) == [
        ServerSentEvent(MESSAGE, "y")
    ]


def test_an_upstream_event_over_the_bound_is_the_upstreams_fault(monkeypatch):
    monkeypatch.setattr("reapi._sse.MAX_UPSTREAM_EVENT_BYTES", 64)
    with pytest.raises(APIResponseError) as info:
        read_events(b"data: MARKER" + b"x" * 64 + b"\n\n", "p")
    assert info.value.provider == "p" and info.value.code == "upstream_bad_response"
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert "MARKER" not in str(info.value)


def test_event_json_errors_do_not_chain_the_data():
    with pytest.raises(APIResponseError) as info:
        ServerSentEvent(MESSAGE, "{MARKER").json("p")
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert "MARKER" not in str(info.value)


def test_an_events_repr_hides_its_data():
    assert "MARKER" not in repr(ServerSentEvent(MESSAGE, "MARKER"))


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
    assert is_event_stream(content_type) is expected


def _general_loop(decoder: EventDecoder, chunk: bytes) -> list[ServerSentEvent]:
    """`feed` without its fast path for chunks with no CR: every chunk by the general loop."""
    chunk = decoder._unstarted(chunk)
    return decoder._any_lines(chunk) if chunk else []


def _outcome(feed, chunks: list[bytes], max_event_bytes: int):
    decoder = EventDecoder(max_event_bytes=max_event_bytes)
    events = []
    try:
        for chunk in chunks:
            events.extend(feed(decoder, chunk))
    except EventTooLarge:
        events.append("too large")
    state = (decoder.last_id, decoder.retry_ms, decoder._after_cr, b"".join(decoder._line))
    return events, state, decoder._line_bytes, decoder._data, decoder._event


LINES = [
    b"data: x",
    b"data:y",
    b"data:  two spaces",
    b"data",
    b"data: caf\xc3\xa9 \xe2\x98\x95",
    b"data: \xff",
    b"event: image_generation.partial_image",
    b"event:e",
    b"event",
    b"id: 7",
    b"id: a\0b",
    b"retry: 250",
    b": keep-alive",
    b"",
    b"",
    b"unknown: v",
    b"Data: case",
    b"data: " + b"z" * 40,
    b"\xef\xbb\xbfdata: after a mark",
]


def test_lf_only_chunks_decode_as_the_general_loop_does():
    """The fast path for chunks without CR (split in C, `data:`/`event:` read in place) gives
    the same events, state and size errors as the general loop, wherever the chunks are cut
    (a CR ending one chunk included)."""
    import random

    rng = random.Random(13)
    for _ in range(3000):
        body = b"\n".join(rng.choice(LINES) for _ in range(rng.randint(0, 12)))
        body = rng.choice([b"", b"\xef\xbb\xbf", b"\xef\xbb"]) + body + rng.choice([b"", b"\n"])
        if rng.random() < 0.2:  # a CR line end here and there: later chunks may start with LF
            at = rng.randint(0, len(body))
            body = body[:at] + rng.choice([b"\r", b"\r\n"]) + body[at:]
        cuts = sorted(rng.sample(range(len(body) + 1), min(len(body) + 1, rng.randint(0, 4))))
        chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        bound = rng.choice([64, 1024])
        assert _outcome(EventDecoder.feed, chunks, bound) == _outcome(
            _general_loop, chunks, bound
        ), chunks
