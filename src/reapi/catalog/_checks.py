"""Refuse what a model cannot do before any upstream call, naming the allowed values.

Messages never echo the submitted value: a request field is user data, and error text ends up in
logs and responses. Each check names the parameter and what would have been accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from math import ceil, gcd

from .._exceptions import InvalidRequestError
from .._numbers import ascii_whole_number
from .._params import ImageParams, Shape, VideoParams
from ._models import Capabilities, ModelSpec, Route, SizeRule

__all__ = [
    "aspect_ratio_of",
    "check_image",
    "check_input_sizes",
    "check_video",
    "eligible_routes",
]


def _refuse(model: ModelSpec, param: str, allowed: Iterable[object], what: str = "") -> None:
    listed = ", ".join(str(v) for v in allowed)
    detail = what or f"allowed values: {listed}"
    raise InvalidRequestError(
        f"{param} is not supported by {model.id}; {detail}", param=param, code="invalid_value"
    )


def parse_size(size: str) -> tuple[int, int] | None:
    width, sep, height = size.lower().partition("x")
    parsed = ascii_whole_number(width), ascii_whole_number(height)
    if not sep or parsed[0] is None or parsed[1] is None:
        return None
    return parsed[0], parsed[1]


def aspect_ratio_of(width: int, height: int) -> str:
    divisor = gcd(width, height) or 1
    return f"{width // divisor}:{height // divisor}"


def _fits_rule(rule: SizeRule, size: str) -> bool:
    parsed = parse_size(size)
    if parsed is None:
        return False
    width, height = parsed
    long_edge, short_edge = max(width, height), min(width, height)
    return (
        short_edge > 0
        and width % rule.multiple_of == 0
        and height % rule.multiple_of == 0
        and long_edge <= rule.max_long_edge
        and short_edge <= rule.max_short_edge
        and width * height >= rule.min_pixels
        and long_edge / short_edge <= rule.max_ratio
    )


def _rule_text(rule: SizeRule, presets: Sequence[str]) -> str:
    return (
        f"use one of {', '.join(presets)} or WIDTHxHEIGHT with both sides multiples of "
        f"{rule.multiple_of}, at most {rule.max_long_edge}x{rule.max_short_edge}, "
        f"aspect ratio within 1:{rule.max_ratio:g} and {rule.max_ratio:g}:1"
    )


def _resolve_shape(
    model: ModelSpec,
    caps: Capabilities,
    size: str | None,
    aspect_ratio: str | None,
    resolution: str | None,
) -> Shape:
    if size is not None and size != "auto":
        preset = caps.sizes.get(size)
        if preset is not None:
            aspect_ratio = aspect_ratio or preset.aspect_ratio
            resolution = resolution or preset.resolution
        elif caps.size_rule is not None and _fits_rule(caps.size_rule, size):
            parsed = parse_size(size)
            assert parsed is not None
            aspect_ratio = aspect_ratio or aspect_ratio_of(*parsed)
        elif caps.size_rule is not None:
            _refuse(model, "size", (), _rule_text(caps.size_rule, list(caps.sizes)))
        else:
            _refuse(model, "size", ["auto", *caps.sizes] if caps.sizes else ["auto"])
    if aspect_ratio is not None and caps.aspect_ratios and aspect_ratio not in caps.aspect_ratios:
        _refuse(model, "aspect_ratio", caps.aspect_ratios)
    if aspect_ratio is not None and not caps.aspect_ratios and size is None:
        _refuse(model, "aspect_ratio", (), "this model takes `size` instead")
    if resolution is not None and caps.resolutions and resolution not in caps.resolutions:
        _refuse(model, "resolution", caps.resolutions)
    if resolution is not None and not caps.resolutions and size is None:
        _refuse(model, "resolution", (), "this model takes `size` instead")
    return Shape(size=size, aspect_ratio=aspect_ratio, resolution=resolution)


def _check_choice(model: ModelSpec, param: str, value: str | None, allowed: Sequence[str]) -> None:
    if value is not None and value not in allowed:
        if not allowed:
            _refuse(model, param, (), f"this model has no {param} option: leave it out")
        _refuse(model, param, allowed)


def check_image(
    model: ModelSpec,
    params: ImageParams,
    *,
    input_images: int = 0,
    has_mask: bool = False,
    input_sizes: Sequence[int] = (),
    mask_size: int | None = None,
) -> Shape:
    """Validate an image generation (input_images == 0) or edit; return the resolved shape.
    `input_sizes`, `mask_size`: the bytes of each input image, and of the mask, at hand
    (uploads; those by reference are checked once fetched: `check_input_sizes`)."""
    caps = model.capabilities
    if model.kind != "image":
        raise InvalidRequestError(
            f"{model.id} is a video model; use the videos endpoint", param="model"
        )
    if not 1 <= params.n <= caps.n_max:
        _refuse(model, "n", (), f"n must be between 1 and {caps.n_max}")
    if input_images and not caps.edits:
        _refuse(model, "image", (), "this model does not take input images")
    if input_images > caps.max_input_images:
        _refuse(model, "image", (), f"at most {caps.max_input_images} input images")
    if has_mask and not caps.mask:
        _refuse(model, "mask", (), "this model does not take a mask")
    check_input_sizes(model, input_sizes, mask_size)
    _check_choice(
        model, "quality", params.quality if params.quality != "auto" else None, caps.qualities
    )
    _check_choice(model, "output_format", params.output_format, caps.output_formats)
    _check_choice(
        model,
        "background",
        params.background if params.background != "auto" else None,
        caps.backgrounds,
    )
    if params.output_compression is not None and not 0 <= params.output_compression <= 100:
        _refuse(model, "output_compression", (), "output_compression must be between 0 and 100")
    if params.response_format not in (None, "url", "b64_json"):
        _refuse(model, "response_format", ("url", "b64_json"))
    return _resolve_shape(model, caps, params.size, params.aspect_ratio, params.resolution)


def check_input_sizes(model: ModelSpec, images: Sequence[int], mask: int | None = None) -> None:
    """The maker's per-file limits, in its own unit (MB): each input image's
    (`max_input_image_mb`) and the mask's (`max_mask_mb`). The size said is rounded up: one
    over the limit never reads as the limit."""
    caps = model.capabilities
    limit = caps.max_input_image_mb
    if limit is not None:
        for index, size in enumerate(images):
            if size > limit * 1_000_000:
                raise InvalidRequestError(
                    f"image {index + 1} is {_megabytes(size)} MB; {model.id} takes input images"
                    f" of at most {limit:g} MB each",
                    param="image",
                    code="file_too_large",
                )
    limit = caps.max_mask_mb
    if mask is not None and limit is not None and mask > limit * 1_000_000:
        raise InvalidRequestError(
            f"the mask is {_megabytes(mask)} MB; {model.id} takes a mask of at most {limit:g} MB",
            param="mask",
            code="file_too_large",
        )


def _megabytes(size: int) -> str:
    return f"{ceil(size / 100_000) / 10:.1f}"


def check_video(
    model: ModelSpec, params: VideoParams, *, has_reference: bool = False, has_prompt: bool = True
) -> Shape:
    caps = model.capabilities
    if model.kind != "video":
        raise InvalidRequestError(
            f"{model.id} is an image model; use the images endpoint", param="model"
        )
    if caps.prompt_required and not has_prompt:
        raise InvalidRequestError(
            "prompt must be a non-empty string", param="prompt", code="missing_required_parameter"
        )
    if caps.input_video and not has_reference:
        raise InvalidRequestError(
            f"{model.id} needs the video to work on as input_reference (a file or an https URL)",
            param="input_reference",
            code="missing_required_parameter",
        )
    if params.seconds is not None and caps.seconds and params.seconds not in caps.seconds:
        # Shortest first, as /models lists them: the catalog's order puts the default first.
        _refuse(model, "seconds", sorted(caps.seconds))
    if has_reference and not caps.input_reference:
        _refuse(model, "input_reference", (), "this model does not take a reference input")
    shape = _resolve_shape(model, caps, params.size, params.aspect_ratio, params.resolution)
    seconds = params.seconds if params.seconds is not None else (caps.seconds or (None,))[0]
    allowed = caps.seconds_by_resolution.get(shape.resolution or "")
    if allowed and seconds not in allowed:
        rules = "; ".join(
            f"{res} allows {', '.join(map(str, sorted(secs)))}"
            for res, secs in caps.seconds_by_resolution.items()
        )
        _refuse(model, "seconds", (), f"durations depend on the resolution: {rules}")
    return Shape(shape.size, shape.aspect_ratio, shape.resolution, seconds)


def _route_accepts(route: Route, shape: Shape, n: int, input_images: int) -> bool:
    limits = route.limits
    if limits is None:
        return True
    checks = (
        (shape.resolution, limits.resolutions),
        (shape.aspect_ratio, limits.aspect_ratios),
        (shape.size, tuple(limits.sizes)),
    )
    for value, allowed in checks:
        if value is not None and value != "auto" and allowed and value not in allowed:
            return False
    if shape.seconds is not None and limits.seconds and shape.seconds not in limits.seconds:
        return False
    # Numeric limits apply only when the route states them (defaults mean "as the model").
    stated = limits.model_fields_set
    if "n_max" in stated and n > limits.n_max:
        return False
    return not ("max_input_images" in stated and input_images > limits.max_input_images)


def eligible_routes(
    model: ModelSpec,
    shape: Shape,
    *,
    n: int = 1,
    input_images: int = 0,
    hint: str = "see `reapi models` for what each route accepts",
) -> tuple[Route, ...]:
    """The routes that can honour this request as asked, in catalog order. `hint` says where
    the caller can read what each route accepts ("" where they cannot)."""
    routes = tuple(r for r in model.routes if _route_accepts(r, shape, n, input_images))
    if not routes:
        raise InvalidRequestError(
            f"no host of {model.id} can serve this combination of parameters"
            + (f"; {hint}" if hint else ""),
            param="size",
        )
    return routes
