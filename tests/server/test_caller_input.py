"""What the gateway answers to odd input: numbers in other digits, booleans, values too long to
repeat, query parameters out of range, malformed idempotency keys. Always a 4xx in OpenAI's
error shape, never a 500, and never more than a short excerpt of the input."""

import base64

import pytest
from tests.server.fakes import PNG, FakeUpstream
from tests.server.helpers import auth, ledger_matches

HUGE = "1" * 5000  # over int()'s 4,300-digit limit
ARABIC_FOUR = "\u0664"


def assert_refused(response, statuses=(400,)) -> dict:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    return error


async def video(gateway, key, **fields):
    body = {"model": "sim-video", "prompt": "waves", "size": "1280x720", **fields}
    return await gateway.client.post("/v1/videos", json=body, headers=auth(key))


async def video_form(gateway, key, **fields):
    data = {"model": "sim-video", "prompt": "waves", "size": "1280x720", **fields}
    parts = [(name, (None, str(value))) for name, value in data.items()]
    return await gateway.client.post("/v1/videos", files=parts, headers=auth(key))


async def generate(gateway, key, **fields):
    body = {"model": "gpt-image-2", "prompt": "a lighthouse", **fields}
    return await gateway.client.post("/v1/images/generations", json=body, headers=auth(key))


async def edit_form(gateway, key, **fields):
    return await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "p", **fields},
        files={"image": ("a.png", PNG, "image/png")},
        headers=auth(key),
    )


# -- B4: digits of other scripts, huge numbers, booleans ----------------------------------------
@pytest.mark.parametrize("seconds", ["²", ARABIC_FOUR, HUGE, True])
async def test_video_seconds_that_are_not_ascii_digits_are_400s(gateway, seconds):
    account, key = await gateway.account()
    error = assert_refused(await video(gateway, key, seconds=seconds))
    assert error["param"] == "seconds"
    if not isinstance(seconds, bool):
        error = assert_refused(await video_form(gateway, key, seconds=seconds))
        assert error["param"] == "seconds"
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)
    assert gateway.upstream.calls == []


@pytest.mark.parametrize("size", ["²²x16", f"{ARABIC_FOUR * 4}x{ARABIC_FOUR * 4}", f"{HUGE}x16"])
async def test_sizes_in_other_digits_are_400s(gateway, size):
    _, key = await gateway.account()
    assert assert_refused(await generate(gateway, key, size=size))["param"] == "size"
    assert assert_refused(await edit_form(gateway, key, size=size))["param"] == "size"
    assert assert_refused(await video(gateway, key, size=size))["param"] == "size"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", True),
        ("n", ARABIC_FOUR),
        ("n", HUGE),
        ("output_compression", True),
        ("seed", True),
        ("seed", HUGE),
    ],
)
async def test_whole_number_fields_refuse_booleans_and_other_digits(gateway, field, value):
    _, key = await gateway.account()
    error = assert_refused(await generate(gateway, key, **{field: value}))
    assert error["param"] == field
    if not isinstance(value, bool) and field != "seed":  # a form edit has no seed: ignored
        form = assert_refused(await edit_form(gateway, key, **{field: value}))
        assert form["param"] == field
    assert gateway.upstream.calls == []


async def edit_json(gateway, key, **fields):
    image = {"image_url": "data:image/png;base64," + base64.b64encode(PNG).decode()}
    body = {"model": "gpt-image-2", "prompt": "p", "images": [image], **fields}
    return await gateway.client.post("/v1/images/edits", json=body, headers=auth(key))


# JSON has numbers: an integer field's digits in a string are refused, as OpenAI does
# ("Invalid type for 'n'"); a form's fields are strings, so there digits are the number.
@pytest.mark.parametrize(
    ("send", "field", "value"),
    [
        (generate, "n", "2"),
        (generate, "output_compression", "50"),
        (generate, "seed", "7"),
        (generate, "n", 2.0),
        (edit_json, "n", "2"),
        (edit_json, "output_compression", "50"),
        (video, "seed", "7"),
        (video, "seed", 7.0),
    ],
)
async def test_json_integer_fields_refuse_strings(gateway, send, field, value):
    account, key = await gateway.account()
    response = await send(gateway, key, **{field: value})
    error = assert_refused(response)
    assert (error["param"], error["code"]) == (field, "invalid_type")
    assert error["message"] == f"{field} must be an integer"
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)
    assert gateway.upstream.calls == []


async def test_json_integers_and_form_digits_are_taken(gateway):
    _, key = await gateway.account()
    for response in (
        await generate(gateway, key, n=2, output_compression=50, seed=7, output_format="jpeg"),
        await edit_json(gateway, key, n=2, output_compression=50, output_format="jpeg"),
        await edit_form(gateway, key, n="2", output_compression="50", output_format="jpeg"),
        await video(gateway, key, seed=7, seconds=8),
        await video_form(gateway, key, seed="7", seconds="8"),
    ):
        assert response.status_code == 200, response.text[:300]


async def test_a_json_number_of_5000_digits_is_a_400(gateway):
    _, key = await gateway.account()
    response = await gateway.client.post(
        "/v1/images/generations",
        content=b'{"model": "gpt-image-2", "prompt": "p", "n": ' + HUGE.encode() + b"}",
        headers={**auth(key), "content-type": "application/json"},
    )
    assert_refused(response)


async def test_ascii_digits_still_work(gateway):
    _, key = await gateway.account()
    assert (await video(gateway, key, seconds="8")).status_code == 200
    assert (await video_form(gateway, key, seconds="8")).status_code == 200
    assert (await edit_form(gateway, key, n="2")).status_code == 200


# -- A8: messages repeat at most a short excerpt of the input -----------------------------------
TWO_MB = "M" * (2 * 1024 * 1024)
MAX_EXCERPT = 64


def assert_no_long_echo(text: str) -> None:
    assert "M" * (MAX_EXCERPT + 1) not in text, len(text)
    assert len(text) < 2000, len(text)


@pytest.mark.parametrize("model", [TWO_MB, "m" + "M" * 150])
async def test_an_unknown_model_is_named_by_an_excerpt_only(gateway, model):
    _, key = await gateway.account()
    for response in (
        await generate(gateway, key, model=model),
        await edit_form(gateway, key, model=model),
        await video(gateway, key, model=model),
        await video_form(gateway, key, model=model),
    ):
        error = assert_refused(response, (400, 404, 413))
        assert error["param"] == "model"
        assert_no_long_echo(response.text)


async def test_values_of_every_field_are_never_echoed_whole(gateway):
    _, key = await gateway.account()
    for field in ("size", "quality", "background", "output_format", "aspect_ratio", "resolution"):
        for response in (
            await generate(gateway, key, **{field: TWO_MB}),
            await edit_form(gateway, key, **{field: TWO_MB}),
        ):
            assert_refused(response, (400, 413))
            assert_no_long_echo(response.text)
    for field in ("seconds", "size"):
        response = await video(gateway, key, **{field: TWO_MB})
        assert_refused(response, (400, 413))
        assert_no_long_echo(response.text)


async def test_unknown_keys_and_ids_are_never_echoed_whole(gateway):
    _, key = await gateway.account()
    keyed = await gateway.client.post(
        "/v1/images/edits",
        json={"model": "gpt-image-2", "prompt": "p", "images": [{"image_url": "x", TWO_MB: 1}]},
        headers=auth(key),
    )
    assert_refused(keyed)
    assert_no_long_echo(keyed.text)
    long_id = "video_" + "M" * 60
    for response in (
        await gateway.client.get(f"/v1/videos/{long_id}", headers=auth(key)),
        await gateway.client.get(f"/v1/models/{'M' * 190}", headers=auth(key)),
        await gateway.client.get(f"/v1/files/file_{'M' * 58}/content"),
    ):
        assert response.status_code in (400, 404)
        assert "M" * 50 not in response.text


def test_the_sdk_names_an_unknown_model_by_an_excerpt_only():
    from reapi import ModelNotFoundError, ReAPI

    client = ReAPI(provider_keys={"openai": "sk-test"})
    for call in (
        lambda: client.images.generate(model=TWO_MB, prompt="p"),
        lambda: client.videos.create(model=TWO_MB, prompt="p"),
    ):
        with pytest.raises(ModelNotFoundError) as info:
            call()
        text = str(info.value) + repr(info.value) + info.value.message
        assert_no_long_echo(text)
        assert "M" * 10 in info.value.message  # an excerpt still says which id it was


# -- B5: every query parameter bounded; out of range or malformed is a 400 ---------------------
BAD_QUERIES = {
    "/v1/usage": [
        "before=9223372036854775808",
        "before=" + "9" * 5000,
        "before=-1",
        "before=²",
        "before=1e3",
        "before=",
        "limit=0",
        "limit=101",
        "limit=9223372036854775808",
        "limit=abc",
        "limit=true",
    ],
    "/v1/videos": [
        "limit=-1",
        "limit=101",
        "limit=9223372036854775808",
        "limit=" + ARABIC_FOUR,
        "order=sideways",
        "order=" + "a" * 5000,
        "after=" + "v" * 65,
    ],
}


@pytest.mark.parametrize(
    ("path", "query"), [(path, query) for path, queries in BAD_QUERIES.items() for query in queries]
)
async def test_a_query_parameter_out_of_range_is_a_400(gateway, path, query):
    _, key = await gateway.account()
    response = await gateway.client.get(f"{path}?{query}", headers=auth(key))
    error = assert_refused(response)
    assert error["param"] == query.partition("=")[0]
    assert_no_long_echo(response.text)


async def test_query_parameters_of_content_and_paths_are_bounded_too(gateway):
    _, key = await gateway.account()
    created = await video(gateway, key)
    video_id = created.json()["id"]
    bad = await gateway.client.get(
        f"/v1/videos/{video_id}/content?variant=sprites", headers=auth(key)
    )
    assert assert_refused(bad)["param"] == "variant"
    long_id = await gateway.client.get(f"/v1/videos/{'v' * 65}", headers=auth(key))
    assert assert_refused(long_id)["param"] == "video_id"


async def test_in_range_queries_still_work(gateway):
    _, key = await gateway.account()
    for query in ("limit=1&before=253402300799", "limit=100&before=0"):
        response = await gateway.client.get(f"/v1/usage?{query}", headers=auth(key))
        assert response.status_code == 200, response.text
    response = await gateway.client.get("/v1/videos?limit=0&order=asc", headers=auth(key))
    assert response.status_code == 200, response.text


def test_the_openapi_document_states_every_bound(gateway):
    document = gateway.app.openapi()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] not in ("query", "path"):
                    continue
                schema = parameter["schema"]
                options = schema.get("anyOf", [schema])
                for option in options:
                    kind = option.get("type")
                    where = (method, path, parameter["name"])
                    if kind == "integer":
                        assert "minimum" in option and "maximum" in option, where
                    elif kind == "string":
                        assert "maxLength" in option or "enum" in option, where
                    else:
                        assert kind == "null", where
                if parameter["in"] == "query" or "{" in path:
                    assert "400" in operation["responses"], (method, path)


# -- B8: a malformed Idempotency-Key is a 400, not a 409 ---------------------------------------
@pytest.mark.parametrize("idempotency_key", ["", "k" * 256, "k" * 5000])
async def test_a_malformed_idempotency_key_is_a_400(gateway, idempotency_key):
    account, key = await gateway.account()
    headers = {**auth(key), "idempotency-key": idempotency_key}
    for response in (
        await gateway.client.post("/v1/images/generations", json={"prompt": "p"}, headers=headers),
        await gateway.client.post(
            "/v1/videos",
            json={"model": "sim-video", "prompt": "p", "size": "1280x720"},
            headers=headers,
        ),
        await gateway.client.post(
            "/v1/images/edits",
            data={"prompt": "p"},
            files={"image": ("a.png", PNG, "image/png")},
            headers=headers,
        ),
    ):
        error = assert_refused(response)
        assert error["code"] == "invalid_idempotency_key"
        assert "k" * 65 not in response.text
    assert gateway.upstream.calls == []
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)


async def test_openai_python_sees_a_bad_request(gateway):
    import httpx2
    import openai

    _, key = await gateway.account()
    client = openai.AsyncOpenAI(
        base_url="http://gateway.test/v1",
        api_key=key,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gateway.app)),
    )
    with pytest.raises(openai.BadRequestError):
        await client.images.generate(
            model="gpt-image-2", prompt="p", extra_headers={"Idempotency-Key": "k" * 256}
        )


async def test_a_key_of_255_characters_is_taken(gateway):
    _, key = await gateway.account()
    headers = {**auth(key), "idempotency-key": "k" * 255}
    response = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=headers
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("seed", [str(2**64), str(2**63), str(-(2**63) - 1)])
async def test_a_seed_past_64_bits_is_refused_in_a_form_too(gateway, seed):
    """A form's digits can spell any size; no host takes a seed past a signed 64-bit integer."""
    account, key = await gateway.account()
    error = assert_refused(await video_form(gateway, key, seed=seed, seconds="8"))
    assert error["param"] == "seed"
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)
    assert gateway.upstream.calls == []


async def test_the_widest_seeds_are_taken(gateway):
    _, key = await gateway.account()
    for seed in (2**63 - 1, -(2**63)):
        assert (await video(gateway, key, seed=seed, seconds=8)).status_code == 200
        assert (await video_form(gateway, key, seed=str(seed), seconds="8")).status_code == 200


async def post_raw(gateway, key, path: str, raw: bytes):
    headers = {**auth(key), "content-type": "application/json"}
    return await gateway.client.post(path, content=raw, headers=headers)


@pytest.mark.parametrize(
    ("path", "body", "param", "message", "code"),
    [
        ("/v1/images/generations", b'"n": 1e400', "n", "n must be an integer", "invalid_type"),
        ("/v1/images/generations", b'"n": -1e400', "n", "n must be an integer", "invalid_type"),
        (
            "/v1/images/generations",
            b'"seed": 18446744073709551616',
            "seed",
            "seed must be between -9223372036854775808 and 9223372036854775807",
            "integer_above_max_value",
        ),
        (
            "/v1/images/generations",
            b'"seed": -99999999999999999999999',
            "seed",
            "seed must be between -9223372036854775808 and 9223372036854775807",
            "integer_below_min_value",
        ),
        (
            "/v1/images/generations",
            b'"output_compression": ' + b"9" * 200,
            "output_compression",
            "output_compression must be an integer",
            "invalid_type",
        ),
        (
            "/v1/videos",
            b'"seconds": 1e400',
            "seconds",
            "seconds must be an integer or a string",
            "invalid_type",
        ),
    ],
)
async def test_valid_json_with_numbers_out_of_range_names_the_field(
    gateway, path, body, param, message, code
):
    """JSON takes any number: one past a double (orjson refuses it) or past 64 bits (orjson
    reads a float) is the field's error, not "not valid JSON"."""
    account, key = await gateway.account()
    model = b"sim-video" if path == "/v1/videos" else b"gpt-image-2"
    raw = b'{"model": "' + model + b'", "prompt": "p", ' + body + b"}"
    error = assert_refused(await post_raw(gateway, key, path, raw))
    assert (error["param"], error["message"], error["code"]) == (param, message, code)
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)
    assert gateway.upstream.calls == []


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": "gpt-image-2", "prompt": "p", "n": NaN}',
        b'{"model": "gpt-image-2", "prompt": "p", "n": Infinity}',
        b'{"model": "gpt-image-2", "prompt": "p", "n": 1e400',  # unclosed
        b'{"model": "gpt-image-2", "prompt": "p", "n": 1e4OO}',
        b'{"model": "gpt-image-2", "prompt": "\\ud800", "n": 1}',  # a lone surrogate
    ],
)
async def test_a_body_that_is_not_json_still_says_so(gateway, raw):
    _, key = await gateway.account()
    error = assert_refused(await post_raw(gateway, key, "/v1/images/generations", raw))
    assert (error["code"], error["param"]) == ("invalid_json", None)
    assert error["message"] == "the request body is not valid JSON"


async def test_a_prompt_with_a_long_number_is_read_as_written(gateway):
    """Twenty digits in a string send the body through the second parser: the same body."""
    _, key = await gateway.account()
    prompt = "serial 123456789012345678901234567890, seed 7"
    raw = b'{"model": "gpt-image-2", "prompt": "' + prompt.encode() + b'", "seed": 7, "n": 2}'
    response = await post_raw(gateway, key, "/v1/images/generations", raw)
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["data"]) == 2


# -- uploads on images/edits: the bytes decide, not the part's label -----------------------------
HTML = b"<!doctype html><html><body>not an image</body></html>"
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 64


async def edit_parts(gateway, key, files):
    return await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "p"},
        files=files,
        headers=auth(key),
    )


@pytest.mark.parametrize(
    ("files", "param", "message"),
    [
        ([("image", ("a.html", HTML, "text/html"))], "image", "image must be a PNG, JPEG or WebP"),
        ([("image", ("a.png", HTML, "image/png"))], "image", "image must be a PNG, JPEG or WebP"),
        (
            [("image[]", ("a.png", PNG, "image/png")), ("image[]", ("b.png", HTML, "text/html"))],
            "image",
            "image must be a PNG, JPEG or WebP",
        ),
        (
            [("image", ("a.png", PNG, "image/png")), ("mask", ("m.jpg", JPEG, "image/jpeg"))],
            "mask",
            "mask must be a PNG",
        ),
    ],
)
async def test_an_upload_that_is_not_an_image_is_refused_naming_its_part(
    gateway, files, param, message
):
    account, key = await gateway.account()
    error = assert_refused(await edit_parts(gateway, key, files))
    assert (error["param"], error["code"]) == (param, "invalid_image")
    assert error["message"].startswith(message)
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)
    assert gateway.upstream.calls == []


async def test_an_image_under_another_label_goes_upstream_as_the_type_of_its_bytes(
    make_gateway, monkeypatch
):
    """A PNG sent as `text/html` (or any label) is passed on as `image/png`: the upstream is told
    what the bytes are, never the caller's label."""
    sent: list[bytes] = []
    handle = FakeUpstream.handle

    async def recording(self, request):
        if request.url.path.endswith("/images/edits"):
            sent.append(request.content)
        return await handle(self, request)

    monkeypatch.setattr(FakeUpstream, "handle", recording)
    gateway = await make_gateway()
    _, key = await gateway.account()
    files = [("image", ("a.html", PNG, "text/html")), ("mask", ("m", PNG, "application/x"))]
    response = await edit_parts(gateway, key, files)
    assert response.status_code == 200, response.text[:300]
    [body] = sent
    assert body.count(b"Content-Type: image/png") == 2
    assert b"text/html" not in body and b"application/x" not in body


# -- a video's uploaded input_reference: the bytes decide too -------------------------------------
async def video_upload(gateway, key, reference):
    return await gateway.client.post(
        "/v1/videos",
        data={"model": "sim-video", "prompt": "p", "seconds": "4", "size": "1280x720"},
        files={"input_reference": reference},
        headers=auth(key),
    )


@pytest.mark.parametrize(
    "reference",
    [("r.html", HTML, "text/html"), ("r.png", HTML, "image/png"), ("r.mp4", HTML, "video/mp4")],
)
async def test_a_video_reference_upload_of_no_media_type_is_refused(gateway, reference):
    account, key = await gateway.account()
    error = assert_refused(await video_upload(gateway, key, reference))
    assert (error["param"], error["code"]) == ("input_reference", "invalid_file")
    assert error["message"].startswith("input_reference must be an image (PNG, JPEG or WebP)")
    assert await ledger_matches(gateway.rt, account) == (10_000, 0)
    assert gateway.upstream.calls == []


@pytest.mark.parametrize(
    ("content", "label", "expected"),
    [(PNG, "text/html", b"image/png"), (JPEG, "image/png", b"image/jpeg")],
)
async def test_a_video_reference_goes_upstream_as_the_type_of_its_bytes(
    make_gateway, monkeypatch, content, label, expected
):
    """An uploaded input_reference is passed on under the type its bytes show, never the
    part's label."""
    sent: list[bytes] = []
    handle = FakeUpstream.handle

    async def recording(self, request):
        if request.method == "POST" and request.url.path.endswith("/videos"):
            sent.append(request.content)
        return await handle(self, request)

    monkeypatch.setattr(FakeUpstream, "handle", recording)
    gateway = await make_gateway()
    _, key = await gateway.account()
    response = await video_upload(gateway, key, ("r.bin", content, label))
    assert response.status_code == 200, response.text[:300]
    [body] = sent
    assert b"Content-Type: " + expected in body
    assert label.encode() not in body
