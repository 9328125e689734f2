"""The models page's facts about each model this gateway serves: its hosts in failover order,
what it accepts, and its price — computed by `credits.service.price_of`, the function requests
are charged with, so the page and the charge cannot disagree."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import asdict, dataclass
from typing import Any

from reapi.catalog import Catalog, ModelSpec
from reapi.core import Shape

from ..credits.service import price_of
from ..offering import servable, served_routes

__all__ = ["ModelPrice", "ModelView", "model_views"]

UNIT_WORDS = {"image": "per image", "second": "per second", "request": "per request"}


@dataclass(frozen=True, slots=True)
class ModelPrice:
    #: image | second | request
    unit: str
    #: Credits per unit at the model's default (or only) resolution.
    credits: int
    #: Credits per unit at resolutions priced differently.
    by_resolution: dict[str, int]
    #: Credits per image sent to an edit, on top (0: inputs are free).
    per_input_image: int

    @property
    def unit_words(self) -> str:
        return UNIT_WORDS.get(self.unit, "per " + self.unit)


@dataclass(frozen=True, slots=True)
class ModelView:
    id: str
    name: str
    kind: str
    owned_by: str
    description: str
    #: Provider names, in the order requests try them.
    hosts: list[str]
    sizes: list[str]
    #: Free-form WxH sizes: "any WxH in multiples of N, up to ..." (or None).
    size_rule: str | None
    aspect_ratios: list[str]
    resolutions: list[str]
    seconds: list[int]
    max_outputs: int
    edits: bool
    max_input_images: int
    mask: bool
    input_reference: bool
    input_video: bool
    price: ModelPrice

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def tier_prices(self) -> list[tuple[str, int]]:
        """Each resolution with its price when they differ, the default's too, in the catalog's
        order: "218 credits per second" beside "480p: 101 · 1080p: 539" did not say at which."""
        price = self.price
        if not price.by_resolution:
            return []
        listed = [*self.resolutions, *(r for r in price.by_resolution if r not in self.resolutions)]
        return [(r, price.by_resolution.get(r, price.credits)) for r in listed]


def _unit_price(spec: ModelSpec, resolution: str | None = None) -> int:
    if spec.price.unit == "second":
        return price_of(spec, Shape(seconds=1, resolution=resolution))
    return price_of(spec, Shape(resolution=resolution), images=1)


def _price(spec: ModelSpec) -> ModelPrice:
    plain = price_of(spec, Shape(), images=1)
    with_input = price_of(spec, Shape(), images=1, input_images=1)
    return ModelPrice(
        unit=spec.price.unit,
        credits=_unit_price(spec),
        by_resolution={r: _unit_price(spec, r) for r in spec.price.by_resolution},
        per_input_image=with_input - plain,
    )


def _size_rule(spec: ModelSpec) -> str | None:
    rule = spec.capabilities.size_rule
    if rule is None:
        return None
    return (
        f"any WxH in multiples of {rule.multiple_of}, long edge up to {rule.max_long_edge}, "
        f"short edge up to {rule.max_short_edge}, aspect ratio up to {rule.max_ratio:g}:1"
    )


def _view(spec: ModelSpec, providers: Container[str]) -> ModelView:
    caps = spec.capabilities
    return ModelView(
        id=spec.id,
        name=spec.name,
        kind=spec.kind,
        owned_by=spec.owned_by,
        description=spec.description,
        hosts=[route.provider for route in served_routes(spec, providers)],
        sizes=list(caps.sizes),
        size_rule=_size_rule(spec),
        aspect_ratios=list(caps.aspect_ratios),
        resolutions=list(caps.resolutions),
        seconds=list(caps.seconds),
        max_outputs=caps.n_max,
        edits=caps.edits,
        max_input_images=caps.max_input_images,
        mask=caps.mask,
        input_reference=caps.input_reference,
        input_video=caps.input_video,
        price=_price(spec),
    )


def model_views(catalog: Catalog, providers: Container[str]) -> list[ModelView]:
    """Every model served here, images first, each kind in catalog order."""
    views = [_view(spec, providers) for spec in servable(catalog, providers).values()]
    return sorted(views, key=lambda view: view.kind != "image")
