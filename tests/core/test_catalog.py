import json

import pytest

from reapi import ConfigurationError, InvalidRequestError, ModelNotFoundError, load_catalog
from reapi._params import ImageParams, VideoParams
from reapi.catalog import (
    Capabilities,
    ModelSpec,
    Price,
    Route,
    ShapeSpec,
    check_image,
    check_video,
    default_catalog,
    eligible_routes,
)

MARKER = "9999x7777"


def gpt() -> ModelSpec:
    return default_catalog().models["gpt-image-2"]


def test_packaged_catalog_loads_typed_models():
    catalog = default_catalog()
    model = catalog.models["gpt-image-2"]
    assert model.kind == "image"
    assert model.routes[0].provider in catalog.providers
    assert model.price.cost(units=2) == 2 * model.price.credits


def test_invalid_size_is_refused_with_allowed_values_and_no_echo():
    with pytest.raises(InvalidRequestError) as info:
        check_image(gpt(), ImageParams(model="gpt-image-2", size=MARKER))
    assert info.value.param == "size"
    assert "1024x1024" in info.value.message
    assert MARKER not in str(info.value) + repr(info.value)


def test_free_form_size_rule_for_gpt_image_2():
    shape = check_image(gpt(), ImageParams(model="gpt-image-2", size="1280x720"))
    assert shape.size == "1280x720" and shape.aspect_ratio == "16:9"
    for bad in ("1000x1000", "3840x3840", "4000x1000", "abc"):
        with pytest.raises(InvalidRequestError):
            check_image(gpt(), ImageParams(model="gpt-image-2", size=bad))


@pytest.mark.parametrize(
    ("field", "value"),
    [("quality", "ultra"), ("output_format", "gif"), ("n", 11), ("output_compression", 101)],
)
def test_invalid_choices_name_the_parameter(field, value):
    with pytest.raises(InvalidRequestError) as info:
        check_image(gpt(), ImageParams(model="gpt-image-2", **{field: value}))
    assert info.value.param == field


def test_an_option_the_model_does_not_have_says_to_leave_it_out():
    gemini = default_catalog().models["gemini-3-pro-image"]
    with pytest.raises(InvalidRequestError) as info:
        check_image(gemini, ImageParams(model="gemini-3-pro-image", quality="high"))
    assert info.value.param == "quality"
    assert info.value.message == (
        "quality is not supported by gemini-3-pro-image; this model has no quality option:"
        " leave it out"
    )


def test_image_model_refuses_video_checks():
    with pytest.raises(InvalidRequestError, match="image model"):
        check_video(gpt(), VideoParams(model="gpt-image-2"))


def video_model(**caps) -> ModelSpec:
    return ModelSpec(
        id="v",
        kind="video",
        name="V",
        owned_by="x",
        capabilities=Capabilities(**caps),
        price=Price(unit="second", credits=5),
        routes=(
            Route(provider="a", upstream_model="v"),
            Route(provider="b", upstream_model="v", limits=Capabilities(resolutions=("720p",))),
        ),
    )


def test_video_sizes_map_to_ratio_and_resolution():
    model = video_model(
        sizes={
            "1920x1080": ShapeSpec(aspect_ratio="16:9", resolution="1080p"),
            "1280x720": ShapeSpec(aspect_ratio="16:9", resolution="720p"),
        },
        aspect_ratios=("16:9",),
        resolutions=("720p", "1080p"),
        seconds=(4, 8),
    )
    shape = check_video(model, VideoParams(model="v", size="1920x1080", seconds=8))
    assert (shape.aspect_ratio, shape.resolution, shape.seconds) == ("16:9", "1080p", 8)
    with pytest.raises(InvalidRequestError) as info:
        check_video(model, VideoParams(model="v", seconds=5))
    assert "4, 8" in info.value.message
    # The second host cannot do 1080p: it is skipped, never asked for something else.
    assert [r.provider for r in eligible_routes(model, shape)] == ["a"]
    low = check_video(model, VideoParams(model="v", size="1280x720"))
    assert [r.provider for r in eligible_routes(model, low)] == ["a", "b"]
    assert low.seconds == 4  # the model's first duration is its default


def test_the_allowed_durations_are_named_shortest_first_whatever_the_default():
    """The catalog lists the default first (veo-3.1: 8, 4, 6); a refusal lists them in order,
    as /models does."""
    model = video_model(seconds=(8, 4, 6))
    with pytest.raises(InvalidRequestError) as info:
        check_video(model, VideoParams(model="v", seconds=5))
    assert info.value.message.endswith("allowed values: 4, 6, 8")
    assert check_video(model, VideoParams(model="v")).seconds == 8  # still the default


def test_prompt_and_input_video_requirements():
    model = video_model(prompt_required=False, input_video=True, input_reference=True)
    with pytest.raises(InvalidRequestError, match="input_reference"):
        check_video(model, VideoParams(model="v"), has_prompt=False)
    check_video(model, VideoParams(model="v"), has_reference=True, has_prompt=False)
    with pytest.raises(InvalidRequestError, match="prompt"):
        check_video(video_model(), VideoParams(model="v"), has_prompt=False)


def test_overlay_replaces_and_adds_models(tmp_path):
    base = default_catalog().models["gpt-image-2"].model_dump(mode="json")
    base["price"]["credits"] = 1
    extra = dict(base, id="my-image", name="Mine")
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"models": [base, extra]}))
    catalog = load_catalog(path)
    assert catalog.models["gpt-image-2"].price.credits == 1
    assert "my-image" in catalog.models
    assert next(iter(catalog.models)) == "gpt-image-2"


def test_overlay_can_remove_and_env_var_is_read(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('remove_models = ["gpt-image-2"]\n')
    monkeypatch.setenv("REAPI_CATALOG", str(path))
    assert "gpt-image-2" not in load_catalog().models


def test_broken_catalog_is_a_configuration_error(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[models]]\nid = "x"\nkind = "image"\n')
    with pytest.raises(ConfigurationError):
        load_catalog(path)
    path.write_text("not toml [")
    with pytest.raises(ConfigurationError):
        load_catalog(path)


def test_routes_must_name_known_providers(tmp_path):
    model = default_catalog().models["gpt-image-2"].model_dump(mode="json")
    model["routes"] = [{"provider": "nowhere", "upstream_model": "m"}]
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"models": [model]}))
    with pytest.raises(ConfigurationError, match="nowhere"):
        load_catalog(path)


def test_unknown_model_is_model_not_found():
    from reapi import ReAPI

    client = ReAPI(provider_keys={"openai": "k"})
    with pytest.raises(ModelNotFoundError):
        client.images.generate(model="no-such-model", prompt="p")


def test_the_readme_lists_every_model_with_its_hosts_in_catalog_order():
    import re
    from pathlib import Path

    from reapi.catalog import default_catalog

    names = {
        "OpenAI": "openai",
        "Gemini API": "gemini",
        "fal": "fal",
        "Replicate": "replicate",
        "BytePlus ModelArk": "byteplus",
        "xAI": "xai",
        "Vidu": "vidu",
        "Alibaba DashScope": "dashscope",
        "Topaz Labs": "topaz",
    }
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| (image|video) \| (.+) \|$", readme, re.MULTILINE)
    listed = {model: [names[h.strip()] for h in hosts.split("→")] for model, _, hosts in rows}
    shipped = {m.id: [r.provider for r in m.routes] for m in default_catalog().models.values()}
    assert listed == shipped


def test_a_size_just_over_the_limit_never_reads_as_the_limit():
    """50 000 001 bytes against a 50 MB limit: "50.1 MB", not "50.0 MB" (rounded up)."""
    params = ImageParams(model="gpt-image-2")
    with pytest.raises(InvalidRequestError, match=r"image 1 is 50\.1 MB; .* at most 50 MB"):
        check_image(gpt(), params, input_images=1, input_sizes=[50_000_001])
    with pytest.raises(InvalidRequestError, match=r"the mask is 4\.1 MB; .* at most 4 MB"):
        check_image(gpt(), params, input_images=1, has_mask=True, mask_size=4_000_001)
    # At the limits.
    check_image(gpt(), params, input_images=1, input_sizes=[50_000_000], mask_size=4_000_000)


def test_a_routes_key_is_made_once_and_a_copy_makes_its_own():
    """`Route.key` is cached on the route; a copy with other fields (`model_copy`, which
    `copy.replace` uses too) must not keep the original's key: it names the breaker."""
    import copy

    from reapi.catalog import Route

    route = Route(provider="openai", upstream_model="gpt-image-2")
    assert route.key == "openai/gpt-image-2" and route.key is route.key
    moved = route.model_copy(update={"provider": "fal"})
    assert moved.key == "fal/gpt-image-2" and route.key == "openai/gpt-image-2"
    assert route.model_copy(update={"upstream_model": "x"}, deep=True).key == "openai/x"
    assert route.model_copy(update={"stream_idle_timeout": 5.0}).key == "openai/gpt-image-2"
    assert copy.copy(route).key == copy.deepcopy(route).key == "openai/gpt-image-2"
    assert route == Route(provider="openai", upstream_model="gpt-image-2")  # cache not compared
    assert "key" not in route.model_dump()
