"""Objects of the SDK that hold request content (or what an upstream made of it) show no value in
their repr (issue 9 A5): a repr ends up in logs, tracebacks and debuggers."""

from reapi._hidden import HiddenValues
from reapi.providers._host_inputs import HostInput
from reapi.types import Image, ImagesResponse

MARKER = "MARKER-sdk-2c71aa"


def _shown(value: object) -> str:
    return " ".join((repr(value), str(value), f"{value}", repr([value])))


def test_a_host_input_hides_the_model_input():
    host_input = HostInput("fal-ai/model", {"prompt": MARKER, "image_urls": [MARKER]})
    assert MARKER not in _shown(host_input)
    assert "fal-ai/model" in repr(host_input)


def test_an_image_hides_its_bytes_and_the_revised_prompt():
    image = Image(b64_json=MARKER * 3, revised_prompt=MARKER, url=f"https://x.test/{MARKER}")
    response = ImagesResponse(created=1, data=[image])
    assert MARKER not in _shown(image) and MARKER not in _shown(response)
    assert "b64_json=<51 chars>" in repr(image)
    assert image.revised_prompt == MARKER  # hidden from reprs only


def test_hidden_values_say_kind_and_size_only():
    class Body(HiddenValues):
        prompt: str
        images: list[bytes]
        n: int

    body = Body(prompt=MARKER, images=[b"a", b"b"], n=3)
    assert repr(body) == "Body(prompt=<17 chars>, images=<2 items>, n=<int>)"
