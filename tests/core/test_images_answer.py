"""`LocalCore.images_answer`: the images answer as the JSON object `images_response` dumps to,
built without pydantic, with the provider's own base64 text passed on."""

import base64

import httpx
import pydantic
import pytest

from reapi import ReAPI, RouterConfig
from reapi._engine import Outcome
from reapi._exceptions import AttemptSummary
from reapi._local import GATEWAY_HINTS, LocalCore
from reapi._params import ImageParams
from reapi._payload import Payload
from reapi._settings import resolve_connections
from reapi.providers import GeneratedFile, ImageResult

PRIMARY = "http://primary.test/v1"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16 + b"A"
#: The same bytes as `base64.b64encode(PNG)`, with the unused bits of the last digit set: text
#: that is valid base64 and that no encoder writes, so it shows whose text the answer carries.
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_CANONICAL = base64.b64encode(PNG).decode()  # ends with a digit and "==": 4 bits unused
UNCANONICAL = _CANONICAL[:-3] + _ALPHABET[_ALPHABET.index(_CANONICAL[-3]) | 1] + "=="
assert base64.b64decode(UNCANONICAL, validate=True) == PNG
assert UNCANONICAL != base64.b64encode(PNG).decode()


def _core(catalog) -> LocalCore:
    connections = resolve_connections(catalog, {"primary": "sk-p"}, {"primary": PRIMARY})
    return LocalCore(catalog, connections, hints=GATEWAY_HINTS)


def _outcome(core: LocalCore, result: ImageResult) -> tuple[object, Outcome[ImageResult]]:
    prepared = core.prepare_image(
        ImageParams(model="gpt-image-2", size="1024x1024", quality="high"),
        Payload({"prompt": "a lighthouse"}),
        edit=False,
    )
    route = prepared.routes[0]
    attempts = (
        AttemptSummary(
            provider="backup", route="backup/x", code="timeout", status=504, elapsed_ms=2
        ),
        AttemptSummary(
            provider=route.provider, route=route.key, code="ok", status=None, elapsed_ms=3.25
        ),
    )
    return prepared, Outcome(result, route, attempts)


def test_the_answer_is_what_images_response_dumps_to(catalog):
    core = _core(catalog)
    result = ImageResult(
        images=(
            GeneratedFile("image/png", data=PNG),
            GeneratedFile("image/png", data=PNG, b64=UNCANONICAL),
            GeneratedFile("image/png", url="https://cdn.test/1.png", url_expires_at=1900000000),
        ),
        usage={"input_tokens": 3, "details": {"x": None}},
        output_format="png",
        background=None,
    )
    prepared, outcome = _outcome(core, result)
    answer = core.images_answer(prepared, outcome)  # type: ignore[arg-type]
    dumped = core.images_response(prepared, outcome).model_dump(  # type: ignore[arg-type]
        mode="json", exclude_none=True
    )
    answer.pop("created"), dumped.pop("created")
    assert answer == dumped
    assert list(answer) == list(dumped)
    assert list(answer["reapi"]) == list(dumped["reapi"])
    assert answer["data"][0] == {"b64_json": base64.b64encode(PNG).decode()}
    assert answer["data"][1] == {"b64_json": UNCANONICAL}  # the provider's text, not re-encoded
    assert answer["reapi"]["url_expires_at"] == 1900000000


def test_a_field_of_the_wrong_type_is_refused_as_images_response_refuses_it(catalog):
    core = _core(catalog)
    result = ImageResult(images=(GeneratedFile("image/png", data=PNG),), size=1024)  # type: ignore[arg-type]
    prepared, outcome = _outcome(core, result)
    with pytest.raises(pydantic.ValidationError):
        core.images_response(prepared, outcome)  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError):
        core.images_answer(prepared, outcome)  # type: ignore[arg-type]


def test_the_sdk_answers_the_providers_base64_text(httpx_mock, catalog):
    httpx_mock.add_response(
        url=f"{PRIMARY}/images/generations",
        json={"created": 1, "data": [{"b64_json": UNCANONICAL}], "output_format": "png"},
    )
    client = ReAPI(
        catalog=catalog,
        provider_keys={"primary": "sk-p"},
        provider_base_urls={"primary": PRIMARY},
        router=RouterConfig(first_byte_timeout=0.5),
    )
    image = client.images.generate(model="gpt-image-2", prompt="a lighthouse").data[0]
    assert image.b64_json == UNCANONICAL
    assert image.content() == PNG
    assert isinstance(httpx_mock.get_requests()[0], httpx.Request)
