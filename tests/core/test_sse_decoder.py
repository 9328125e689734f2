"""The SDK's Server-Sent Events decoder (`reapi._sse`): the event-stream rules a client needs."""

from reapi._sse import EventDecoder, ServerSentEvent


def feed(decoder: EventDecoder, text: str) -> list[ServerSentEvent]:
    return [e for line in text.split("\n") if (e := decoder.feed(line)) is not None]


def test_events_ids_and_data_lines():
    decoder = EventDecoder()
    events = feed(
        decoder,
        'retry: 1500\n\n: keep-alive\n\nid: a\nevent: video.updated\ndata: {"x":\ndata: 1}\n\n'
        "data:plain\n\n",
    )
    assert events == [
        ServerSentEvent("video.updated", '{"x":\n1}', "a"),
        ServerSentEvent("message", "plain", "a"),  # the id carries over; the type does not
    ]
    assert decoder.retry_ms == 1500 and decoder.last_id == "a"


def test_what_is_not_an_event():
    decoder = EventDecoder()
    assert feed(decoder, "event: x\n\nid: b\n\n: comment\n\n") == []  # no data: no event
    assert decoder.last_id == "b"
    assert feed(decoder, "id: c\0d\nretry: soon\ndata: y\n\n")[0].id == "b"
    assert decoder.retry_ms is None
