"""Numbers a caller writes (`seconds`, `n`, the sides of `size`) are ASCII digits or refused with
an `InvalidRequestError`: `str.isdigit()` is true for '²' and an Arabic-Indic four, which `int()`
then refuses (a crash) or reads as 4 (a surprise), and `int()` refuses more than 4,300 digits."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reapi import InvalidRequestError, ReAPI
from reapi._numbers import ascii_whole_number
from reapi._params import ImageParams
from reapi.catalog import check_image, default_catalog
from reapi.resources._inputs import image_request, video_request

HUGE = "1" * 5000  # over int()'s 4,300-digit limit
#: Digits of every kind, and text: what hypothesis draws numbers from.
DIGITISH = st.one_of(
    st.text(st.sampled_from("0123456789²\u00b3\u00b9\u0664\u0660\uff11\u07c0\u09e9"), max_size=24),
    st.text(st.characters(categories=["Nd", "No"]), max_size=8),
    st.text(max_size=12),
)
ARABIC_FOUR, FULLWIDTH_TWELVE = "\u0664", "\uff11\uff12"
NOT_NUMBERS = ["²", ARABIC_FOUR, FULLWIDTH_TWELVE, "4²", "", " 4", "4 ", "+4", "-4", "4.0", HUGE]


def client() -> ReAPI:
    return ReAPI(provider_keys={"openai": "sk-test"})


@pytest.mark.parametrize("seconds", NOT_NUMBERS)
def test_seconds_that_are_not_ascii_digits_are_refused(seconds):
    with pytest.raises(InvalidRequestError) as info:
        video_request(prompt="p", model="sora-2", seconds=seconds)
    assert info.value.param == "seconds"
    with pytest.raises(InvalidRequestError):
        client().videos.create(model="sora-2", prompt="p", seconds=seconds)


@pytest.mark.parametrize("seconds", [True, False, 4.5, [4]])
def test_seconds_of_another_type_are_refused(seconds):
    with pytest.raises(InvalidRequestError) as info:
        video_request(prompt="p", model="sora-2", seconds=seconds)
    assert info.value.param == "seconds"


def test_seconds_as_ascii_digits_or_an_int_are_taken():
    assert video_request(prompt="p", model="sora-2", seconds="8")[0].seconds == 8
    assert video_request(prompt="p", model="sora-2", seconds=12)[0].seconds == 12


@pytest.mark.parametrize("n", [True, ARABIC_FOUR, "²", HUGE, 2.5])
def test_n_that_is_not_a_whole_number_is_refused(n):
    with pytest.raises(InvalidRequestError) as info:
        image_request(prompt="p", model="gpt-image-2", n=n)
    assert info.value.param == "n"
    with pytest.raises(InvalidRequestError):
        client().images.generate(model="gpt-image-2", prompt="p", n=n)


@pytest.mark.parametrize("field", ["output_compression", "seed"])
def test_other_whole_number_options_refuse_booleans(field):
    with pytest.raises(InvalidRequestError) as info:
        image_request(prompt="p", model="gpt-image-2", **{field: True})
    assert info.value.param == field


@pytest.mark.parametrize(
    "size", ["²²x16", "16x²²", f"{ARABIC_FOUR * 3}x{ARABIC_FOUR * 3}", f"{HUGE}x16", f"16x{HUGE}"]
)
def test_sizes_with_other_digits_are_refused(size):
    spec = default_catalog().models["gpt-image-2"]
    with pytest.raises(InvalidRequestError) as info:
        check_image(spec, ImageParams(model="gpt-image-2", size=size))
    assert info.value.param == "size"
    with pytest.raises(InvalidRequestError):
        client().images.generate(model="gpt-image-2", prompt="p", size=size)


@given(DIGITISH)
@settings(max_examples=300, deadline=None)
def test_any_text_is_a_number_or_none(text):
    parsed = ascii_whole_number(text)
    if text.isascii() and text.isdigit() and len(text) <= 18:
        assert parsed == int(text)
    else:
        assert parsed is None


@given(DIGITISH, DIGITISH)
@settings(max_examples=300, deadline=None)
def test_any_size_is_taken_or_refused_as_a_request_error(width, height):
    spec = default_catalog().models["gpt-image-2"]
    try:
        check_image(spec, ImageParams(model="gpt-image-2", size=f"{width}x{height}"))
    except InvalidRequestError:
        pass


@given(st.one_of(DIGITISH, st.integers(), st.booleans(), st.floats()))
@settings(max_examples=300, deadline=None)
def test_any_seconds_is_taken_or_refused_as_a_request_error(seconds):
    try:
        params, _ = video_request(prompt="p", model="sora-2", seconds=seconds)
    except InvalidRequestError:
        return
    assert isinstance(params.seconds, int) and not isinstance(params.seconds, bool)


@pytest.mark.parametrize("value", ["inf", "Infinity", "nan", "1e309", "-inf", ARABIC_FOUR, "²"])
def test_a_retry_after_that_is_no_number_of_seconds_is_ignored(value):
    # An upstream's Retry-After reaches answers (`Retry-After` header, math.ceil): inf and nan
    # would crash them, and float() reads other scripts' digits.
    from reapi.providers import parse_retry_after

    assert parse_retry_after(value) is None


def test_a_retry_after_in_seconds_or_as_a_date_is_read():
    from reapi.providers import parse_retry_after

    assert parse_retry_after("7") == 7.0 and parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0) == 0.0


def test_an_input_image_is_labelled_by_its_bytes():
    """An upstream is told what an image is by its bytes, whatever label it came with."""
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    jpeg = b"\xff\xd8\xff\xe0" + b"\0" * 32
    _, payload = image_request(
        prompt="p",
        model="gpt-image-2",
        images=[("a.html", jpeg, "text/html"), ("b.png", png, "image/png")],
        mask=("m", png, "application/octet-stream"),
    )
    assert [f.content_type for f in payload.get("images")] == ["image/jpeg", "image/png"]
    assert [f.filename for f in payload.get("images")] == ["a.html", "b.png"]
    assert payload.get("mask").content_type == "image/png"
