"""Per-model input mappers for the generic hosts: fal's queue and Replicate's predictions.

A generic host runs many makers' models, each with its own input fields. A route picks the mapper
with `options.input_map` (e.g. `"seedream"`); the mapper turns reapi's parameters, resolved shape
and sealed payload into the host's model path and input object. Other route options it reads:

- `edit_model`: the host's model path for image edits (fal serves edits at a second endpoint).
- `reference_model`: the host's model path for image-to-video (fal: a second endpoint).
- `audio`: whether to ask for native audio (the catalog price assumes the maker's default).
- `resolution`: false when the host's model takes no resolution field at all.
- `upscale_factor`, `upscale_model`, `target_fps`: fixed settings of the hosted Topaz upscalers.

What a host's input cannot express is refused here with the parameter's name, never dropped.
Input images travel as data URLs, or as the user's own URL (the host fetches it). A video to
enhance travels only as the bytes reapi vetted: the host's own file URL or a data URL.
Field names come from each host's model page (PROVIDERS.md §10-§12); docs/providers/fal.md and
docs/providers/replicate.md say which are UNVERIFIED.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import ConfigurationError, InvalidRequestError
from .._payload import File
from ..catalog import Route
from ._base import ImageCall, VideoCall
from ._reference import image_url
from ._source_video import invalid_video
from ._util import as_data_url, drop_none

__all__ = [
    "FAL_INPUTS",
    "REPLICATE_INPUTS",
    "HostInput",
    "InputMap",
    "input_map",
    "route_seconds",
]

_PIXELS = re.compile(r"([1-9][0-9]{1,4})x([1-9][0-9]{1,4})")
#: A host model path: `owner/app[/sub/path]`; nothing that could climb out of the base URL.
_MODEL_PATH = re.compile(r"[A-Za-z0-9][\w.\-]*(?:/[\w.\-]+)+", re.ASCII)


@dataclass(frozen=True, slots=True)
class HostInput:
    """What to send: the host's model path and the model's input object."""

    model: str
    #: The prompt, the user's inputs: never in a repr.
    input: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class InputMap:
    image: Callable[[ImageCall], HostInput] | None = None
    video: Callable[[VideoCall], HostInput] | None = None


def input_map(registry: Mapping[str, InputMap], route: Route, host: str) -> InputMap:
    """The mapper a route names; a route without a known one is a catalog mistake."""
    name = route.options.get("input_map")
    found = registry.get(name) if isinstance(name, str) else None
    if found is None:
        raise ConfigurationError(
            f"route {route.key} needs options.input_map naming one of {host}'s mappers: "
            f"{', '.join(sorted(registry))}",
            provider=route.provider,
        )
    return found


def route_seconds(route: Route, option: str, default: float) -> float:
    """A duration knob from the route's options (e.g. `poll_interval`, `max_wait`)."""
    value = route.options.get(option)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return default


# -- shared pieces ---------------------------------------------------------------------------
def _model(route: Route, option: str | None = None) -> str:
    value = route.options.get(option) if option else route.upstream_model
    if not isinstance(value, str) or not _MODEL_PATH.fullmatch(value) or ".." in value:
        raise ConfigurationError(
            f"route {route.key} needs options.{option or 'upstream_model'} as a host model path",
            provider=route.provider,
        )
    return value


def _refuse(route: Route, param: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{param} is not supported by this model on {route.provider}", param=param
    )


def _refuse_image_options(call: ImageCall, *names: str) -> None:
    """OpenAI options with no field on the host: refused, never silently dropped."""
    params = call.params
    present = {
        "output_compression": params.output_compression is not None,
        "input_fidelity": params.input_fidelity is not None,
        "moderation": params.moderation not in (None, "auto"),
        "seed": params.seed is not None,
        "output_format": params.output_format is not None,
        "quality": params.quality not in (None, "auto"),
    }
    for name in ("output_compression", "input_fidelity", "moderation", *names):
        if present[name]:
            raise _refuse(call.route, name)


def _pixels(size: str | None) -> dict[str, int] | None:
    match = _PIXELS.fullmatch(size or "")
    return {"width": int(match[1]), "height": int(match[2])} if match else None


def _images(call: ImageCall) -> list[str]:
    files: tuple[File, ...] = call.payload.get("images") or ()
    return [image_url(f, param="image") for f in files]


def _reference(call: VideoCall) -> str | None:
    reference = call.payload.get("input_reference")
    return None if reference is None else image_url(reference, param="input_reference")


def _video(call: VideoCall) -> str:
    """The vetted source as the host reads it: the host's own copy when its adapter uploaded
    it, else a data URL of the bytes. Never the caller's URL, which the host would fetch again
    and could get other bytes from than reapi vetted (`_source_video`)."""
    source = call.source
    if source is None:
        raise invalid_video()
    if source.host_url is not None:
        return source.host_url
    return as_data_url(File(source.content, source.filename, source.media_type))


def _prompt(call: ImageCall | VideoCall) -> Any:
    return call.payload.get("prompt")


def _audio(route: Route) -> bool:
    return route.options.get("audio", True) is not False


def _no_prompt(call: VideoCall) -> None:
    if call.payload.get("prompt"):
        raise _refuse(call.route, "prompt")


# -- fal: images -----------------------------------------------------------------------------
def _fal_gpt_image(call: ImageCall) -> HostInput:
    """`openai/gpt-image-2` and `openai/gpt-image-2/edit`. GPT Image 2 renders opaque only, so
    `background` has nothing to say; `user` is an abuse-tracking hint fal has no field for."""
    _refuse_image_options(call, "seed")
    params = call.params
    fields = drop_none(
        {
            "prompt": _prompt(call),
            "image_size": _pixels(call.shape.size) or "auto",
            "quality": params.quality,
            "num_images": params.n,
            "output_format": params.output_format,
        }
    )
    if not call.edit:
        return HostInput(_model(call.route), fields)
    fields["image_urls"] = _images(call)
    mask: File | None = call.payload.get("mask")
    if mask is not None:
        fields["mask_url"] = image_url(mask, param="mask")
    return HostInput(_model(call.route, "edit_model"), fields)


#: Gemini's "512" tier is fal's "0.5K".
_NANO_RESOLUTIONS = {"512": "0.5K"}


def _fal_nano_banana(call: ImageCall) -> HostInput:
    """`fal-ai/nano-banana[-pro|-2]` and their `/edit` endpoints."""
    _refuse_image_options(call, "quality")
    resolution = call.shape.resolution
    if call.route.options.get("resolution") is False:
        resolution = None  # one tier only: the model has no resolution field
    fields = drop_none(
        {
            "prompt": _prompt(call),
            "num_images": call.params.n,
            "aspect_ratio": call.shape.aspect_ratio,
            "resolution": _NANO_RESOLUTIONS.get(resolution or "", resolution),
            "output_format": call.params.output_format,
            "seed": call.params.seed,
        }
    )
    if not call.edit:
        return HostInput(_model(call.route), fields)
    fields["image_urls"] = _images(call)
    return HostInput(_model(call.route, "edit_model"), fields)


def _fal_seedream(call: ImageCall) -> HostInput:
    """`fal-ai/bytedance/seedream/v5/lite/text-to-image` and `.../edit`. `n` is fal's
    `num_images` (separate generations), so exactly n images come back."""
    _refuse_image_options(call, "output_format", "quality")
    size: Any = _pixels(call.shape.size)
    if size is None and call.shape.resolution:
        size = f"auto_{call.shape.resolution}"
    fields = drop_none(
        {
            "prompt": _prompt(call),
            "image_size": size,
            "num_images": call.params.n,
            "seed": call.params.seed,
        }
    )
    if not call.edit:
        return HostInput(_model(call.route), fields)
    fields["image_urls"] = _images(call)
    return HostInput(_model(call.route, "edit_model"), fields)


# -- fal: video ------------------------------------------------------------------------------
def _with_reference(call: VideoCall, fields: dict[str, Any], field: str = "image_url") -> HostInput:
    """Text-to-video at the route's model; image-to-video at `options.reference_model`."""
    reference = _reference(call)
    if reference is None:
        return HostInput(_model(call.route), fields)
    return HostInput(_model(call.route, "reference_model"), {**fields, field: reference})


def _fal_veo(call: VideoCall) -> HostInput:
    """`fal-ai/veo3.1` and `fal-ai/veo3.1/image-to-video`. `auto_fix` would let fal rewrite a
    prompt its checker refuses: reapi never changes a prompt, so it is always off."""
    fields = drop_none(
        {
            "prompt": _prompt(call),
            "aspect_ratio": call.shape.aspect_ratio,
            "duration": f"{call.shape.seconds}s" if call.shape.seconds else None,
            "resolution": call.shape.resolution,
            "seed": call.params.seed,
            "generate_audio": _audio(call.route),
            "auto_fix": False,
        }
    )
    return _with_reference(call, fields)


def _fal_seedance(call: VideoCall) -> HostInput:
    """`bytedance/seedance-2.0/text-to-video` and `.../image-to-video` (durations as strings)."""
    fields = drop_none(
        {
            "prompt": _prompt(call),
            "aspect_ratio": call.shape.aspect_ratio,
            "resolution": call.shape.resolution,
            "duration": str(call.shape.seconds) if call.shape.seconds else None,
            "seed": call.params.seed,
            "generate_audio": _audio(call.route),
        }
    )
    return _with_reference(call, fields)


def _fal_vidu(call: VideoCall) -> HostInput:
    """`fal-ai/vidu/q3/text-to-video` and `.../image-to-video`. Image-to-video takes its aspect
    ratio from the image, as on Vidu's own API, so a ratio beside a reference is refused."""
    if call.payload.get("input_reference") is not None and call.shape.aspect_ratio:
        raise InvalidRequestError(
            "with input_reference Vidu takes the aspect ratio from the image; "
            "pass resolution instead of size or aspect_ratio",
            param="size" if call.params.size else "aspect_ratio",
        )
    fields = drop_none(
        {
            "prompt": _prompt(call),
            "duration": call.shape.seconds,
            "aspect_ratio": call.shape.aspect_ratio,
            "resolution": call.shape.resolution,
            "seed": call.params.seed,
            "audio": _audio(call.route),
        }
    )
    return _with_reference(call, fields)


def _fal_happy_horse(call: VideoCall) -> HostInput:
    """`alibaba/happy-horse/text-to-video` and `.../image-to-video` (audio is always native)."""
    fields = drop_none(
        {
            "prompt": _prompt(call),
            "aspect_ratio": call.shape.aspect_ratio,
            "resolution": call.shape.resolution,
            "duration": call.shape.seconds,
            "seed": call.params.seed,
        }
    )
    return _with_reference(call, fields)


def _fal_topaz(call: VideoCall) -> HostInput:
    """`fal-ai/topaz/upscale/video`: a fixed factor from the route, since fal's Topaz takes a
    factor of the source size, not a target resolution."""
    _no_prompt(call)
    if call.shape.resolution:
        raise InvalidRequestError(
            "a target resolution cannot be honoured by the fal upscaler (it scales by a factor); "
            "omit resolution",
            param="resolution",
        )
    options = call.route.options
    fields = drop_none(
        {
            "video_url": _video(call),
            "upscale_factor": options.get("upscale_factor"),
            "model": options.get("upscale_model"),
            "target_fps": options.get("target_fps"),
        }
    )
    return HostInput(_model(call.route), fields)


# -- Replicate -------------------------------------------------------------------------------
def _replicate_seedream(call: ImageCall) -> HostInput:
    """`bytedance/seedream-5-lite`: a tier (`2K`/`3K`) plus an aspect ratio, not exact pixels;
    n > 1 is one sequential batch, as on ModelArk."""
    _refuse_image_options(call, "seed", "quality")
    params = call.params
    fields = drop_none(
        {
            "prompt": _prompt(call),
            "image_input": _images(call) or None,
            "size": call.shape.resolution,
            "aspect_ratio": call.shape.aspect_ratio,
            "output_format": params.output_format,
        }
    )
    if params.n > 1:
        fields["sequential_image_generation"] = "auto"
        fields["max_images"] = params.n
    return HostInput(_model(call.route), fields)


def _replicate_grok_image(call: ImageCall) -> HostInput:
    """`xai/grok-imagine-image`: one input image edits it; `n` and `aspect_ratio` are ignored
    by the model when editing, so they are refused then."""
    _refuse_image_options(call, "seed", "output_format", "quality")
    images = _images(call)
    if images and call.params.n > 1:
        raise _refuse(call.route, "n")
    if images and call.shape.aspect_ratio:
        raise _refuse(call.route, "size" if call.params.size else "aspect_ratio")
    fields = drop_none(
        {
            "prompt": _prompt(call),
            "image": images[0] if images else None,
            "n": None if images else call.params.n,
            "aspect_ratio": call.shape.aspect_ratio,
        }
    )
    return HostInput(_model(call.route), fields)


def _replicate_veo(call: VideoCall) -> HostInput:
    """`google/veo-3.1`: one model for text and image to video (`image` is the first frame)."""
    fields = drop_none(
        {
            "prompt": _prompt(call),
            "image": _reference(call),
            "aspect_ratio": call.shape.aspect_ratio,
            "duration": call.shape.seconds,
            "resolution": call.shape.resolution,
            "seed": call.params.seed,
            "generate_audio": _audio(call.route),
        }
    )
    return HostInput(_model(call.route), fields)


def _replicate_topaz(call: VideoCall) -> HostInput:
    """`topazlabs/video-upscale`: a target resolution; the frame rate is the route's."""
    _no_prompt(call)
    fields = drop_none(
        {
            "video": _video(call),
            "target_resolution": call.shape.resolution,
            "target_fps": call.route.options.get("target_fps"),
        }
    )
    return HostInput(_model(call.route), fields)


#: `options.input_map` → mapper, per host.
FAL_INPUTS: dict[str, InputMap] = {
    "gpt-image": InputMap(image=_fal_gpt_image),
    "nano-banana": InputMap(image=_fal_nano_banana),
    "seedream": InputMap(image=_fal_seedream),
    "veo": InputMap(video=_fal_veo),
    "seedance": InputMap(video=_fal_seedance),
    "vidu": InputMap(video=_fal_vidu),
    "happy-horse": InputMap(video=_fal_happy_horse),
    "topaz": InputMap(video=_fal_topaz),
}
REPLICATE_INPUTS: dict[str, InputMap] = {
    "seedream": InputMap(image=_replicate_seedream),
    "grok-image": InputMap(image=_replicate_grok_image),
    "veo": InputMap(video=_replicate_veo),
    "topaz": InputMap(video=_replicate_topaz),
}
