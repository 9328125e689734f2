"""Invalid parameters answer 400 `invalid_request_error` as OpenAI does, with the rule in the
message and never the value; unknown models suggest the nearest and point at GET /v1/models."""

import pytest
from tests.server.helpers import auth

from reapi._excerpt import EXCERPT_CHARS


async def post(gateway, key, path, body):
    return await gateway.client.post(path, json=body, headers=auth(key))


@pytest.mark.parametrize(
    ("fields", "message", "code", "param"),
    [
        ({"n": 11}, "n must be between 1 and 10", "integer_above_max_value", "n"),
        ({"n": 0}, "n must be between 1 and 10", "integer_below_min_value", "n"),
        ({"n": "SECRET-N"}, "n must be an integer", "invalid_type", "n"),
        ({"prompt": ""}, "prompt must not be empty", "empty_string", "prompt"),
        (
            {"prompt": "p" * 32001},
            "prompt must be at most 32000 characters",
            "string_above_max_length",
            "prompt",
        ),
        (
            {"response_format": "SECRET-RF"},
            "response_format must be 'url' or 'b64_json'",
            "invalid_value",
            "response_format",
        ),
        (
            {"output_compression": 101},
            "output_compression must be between 0 and 100",
            "integer_above_max_value",
            "output_compression",
        ),
        ({"prompt": None}, "prompt must be a string", "invalid_type", "prompt"),
    ],
)
async def test_image_parameters(gateway, fields, message, code, param):
    _, key = await gateway.account(credits=100)
    body = {"model": "gpt-image-2", "prompt": "a lighthouse", **fields}
    response = await post(gateway, key, "/v1/images/generations", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }
    assert "SECRET" not in response.text
    assert gateway.upstream.calls == []


async def test_a_missing_prompt_is_required(gateway):
    _, key = await gateway.account(credits=100)
    response = await post(gateway, key, "/v1/images/generations", {"model": "gpt-image-2"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "prompt is required"
    assert response.json()["error"]["code"] == "missing_required_parameter"


async def test_a_body_that_is_not_an_object(gateway):
    _, key = await gateway.account(credits=100)
    response = await post(gateway, key, "/v1/videos", ["SECRET"])
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "the request body must be an object"
    assert "SECRET" not in response.text


async def test_a_video_without_a_model_says_model_is_required(gateway):
    _, key = await gateway.account(credits=1000)
    response = await post(gateway, key, "/v1/videos", {"prompt": "waves", "seconds": "4"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "model is required" and error["param"] == "model"
    assert "sora" not in response.text


@pytest.mark.parametrize("seconds", [4.5, [4], {"s": 4}])
async def test_a_parameter_of_two_types_is_named_as_sent(gateway, seconds):
    """`seconds` takes an integer or a string: pydantic names the union's members in the
    location (`seconds.int`, `seconds.str`), and the answer named them as the parameter."""
    _, key = await gateway.account(credits=100)
    body = {"model": "sim-video", "prompt": "a wave", "seconds": seconds}
    response = await post(gateway, key, "/v1/videos", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == {
        "message": "seconds must be an integer or a string",
        "type": "invalid_request_error",
        "param": "seconds",
        "code": "invalid_type",
    }


async def test_an_integer_past_64_bits_is_read_as_the_integer_it_is(gateway):
    """JSON's integers have no size: 10**40 is an integer (not a float, nor "not valid JSON"),
    so the answer is the model's own range, as for any other unsupported duration."""
    _, key = await gateway.account(credits=100)
    body = {"model": "sim-video", "prompt": "a wave", "seconds": 10**40}
    response = await post(gateway, key, "/v1/videos", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "seconds" and error["code"] == "invalid_value"
    assert error["message"].startswith("seconds is not supported by sim-video; allowed values:")


async def test_query_parameters_state_their_limit(gateway):
    _, key = await gateway.account()
    response = await gateway.client.get("/v1/videos?limit=1000", headers=auth(key))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "limit must be at most 100"


async def test_an_unknown_model_suggests_the_nearest_and_points_at_the_api(gateway):
    _, key = await gateway.account(credits=100)
    body = {"model": "gpt-image-3", "prompt": "p"}
    response = await post(gateway, key, "/v1/images/generations", body)
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert "did you mean 'gpt-image-2'?" in message and "GET /v1/models" in message
    assert "reapi models" not in message
    body = {"model": "m" * 300, "prompt": "p"}
    response = await post(gateway, key, "/v1/images/generations", body)
    message = response.json()["error"]["message"]
    assert len(message) < 150
    assert "m" * EXCERPT_CHARS + "…" in message and "m" * (EXCERPT_CHARS + 1) not in message


def test_the_openapi_document_lists_400_and_never_422(gateway):
    """What is answered is what is documented: a request that fails validation (parameter or
    body) is a 400, so no operation lists FastAPI's 422 or its schema."""
    document = gateway.app.openapi()
    validated = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation.get("responses", {})
            assert "422" not in responses, (method, path)
            if operation.get("parameters") or "requestBody" in operation:
                validated += 1
                assert "400" in responses, (method, path)
    assert validated >= 10
    schemas = document.get("components", {}).get("schemas", {})
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
