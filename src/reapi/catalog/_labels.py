"""The size a video reports before its upstream says what it made: the one it is charged for.

A request that names no resolution is priced at the tier the price has no figure of its own for
(the maker's default, `Price.cost`), so the size shown is that tier's preset, in the aspect ratio
asked. The model's first preset is often of a cheaper tier: showing it would name a size other
than the one the request asked for and paid for. The gateway and the in-process SDK both use it.
"""

from __future__ import annotations

from .._params import Shape
from ._models import ModelSpec

__all__ = ["video_size_label"]


def video_size_label(spec: ModelSpec, shape: Shape) -> str | None:
    """As asked, else the model's preset in the aspect ratio asked at the resolution charged
    for, else `aspect_ratio@resolution`, else the first preset (what OpenAI-style upstreams
    default to)."""
    if shape.size:
        return str(shape.size)
    resolution = shape.resolution or _priced_default(spec)
    for size, preset in spec.capabilities.sizes.items():
        if shape.aspect_ratio in (None, preset.aspect_ratio) and resolution in (
            None,
            preset.resolution,
        ):
            return size
    if shape.aspect_ratio and shape.resolution:
        return f"{shape.aspect_ratio}@{shape.resolution}"
    return next(iter(spec.capabilities.sizes), None)


def _priced_default(spec: ModelSpec) -> str | None:
    """The resolution a request naming none is charged as: the first without a price of its own
    (`Price.cost` charges `credits` then; the catalog prices the maker's default that way)."""
    tiers = spec.price.by_resolution
    return next((res for res in spec.capabilities.resolutions if res not in tiers), None)
