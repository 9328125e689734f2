import copy
import pickle

import pytest

from reapi import File, Payload
from reapi.core import input_sizes

MARKER = "MARKER-7f3a-prompt"


def make() -> Payload:
    return Payload(prompt=MARKER, user=MARKER + "-user", mask=File(MARKER.encode(), "m.png"))


def test_repr_str_format_hide_every_field():
    payload = make()
    texts = (repr(payload), str(payload), f"{payload}", f"{payload!r}", "{}".format(payload))  # noqa: UP032
    for text in texts:
        assert MARKER not in text
    assert repr(payload) == "Payload(<3 sealed fields>)"


def test_file_repr_hides_bytes():
    file = File(MARKER.encode(), "ref.png", "image/png")
    assert MARKER not in repr(file)
    assert MARKER not in str([file])


def test_pickling_is_refused_without_revealing_content():
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError) as info:
            pickle.dumps(make(), protocol=protocol)
        assert MARKER not in str(info.value)


def test_copies_stay_sealed():
    payload = make()
    for clone in (copy.copy(payload), copy.deepcopy(payload), copy.deepcopy({"p": payload})["p"]):
        assert MARKER not in repr(clone)
        assert clone.get("prompt") == MARKER


def test_reveal_is_the_only_way_in_and_payload_is_immutable():
    payload = make()
    assert payload.reveal()["prompt"] == MARKER
    with pytest.raises(AttributeError):
        payload.prompt = "x"  # type: ignore[attr-defined]
    assert sorted(payload.names()) == ["mask", "prompt", "user"]
    assert "prompt" in payload and len(payload) == 3


def test_none_fields_are_dropped():
    assert len(Payload(prompt="p", user=None)) == 1


def test_input_sizes_are_those_of_the_files_at_hand():
    """What the per-file limits are checked on: at the request (uploads; a reference, not yet
    fetched, is left out) and once references are fetched (every input a file)."""
    reference = object()  # stands for a file by URL or id, fetched later
    payload = Payload(images=(File(b"a" * 3), reference, File(b"b" * 5)), mask=File(b"m" * 2))
    assert input_sizes(payload) == ([3, 5], 2)
    assert input_sizes(Payload(images=(File(b"a"),), mask=reference)) == ([1], None)
    assert input_sizes(Payload(prompt="p")) == ([], None)
