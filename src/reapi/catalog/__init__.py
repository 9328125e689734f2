"""The model catalog: public ids → capabilities, prices and ordered upstream routes."""

from ._checks import (
    aspect_ratio_of,
    check_image,
    check_input_sizes,
    check_video,
    eligible_routes,
)
from ._labels import video_size_label
from ._loader import CATALOG_ENV, default_catalog, load_catalog
from ._models import (
    Capabilities,
    Catalog,
    ModelSpec,
    Price,
    ProviderSpec,
    Route,
    ShapeSpec,
    SizeRule,
)

__all__ = [
    "CATALOG_ENV",
    "Capabilities",
    "Catalog",
    "ModelSpec",
    "Price",
    "ProviderSpec",
    "Route",
    "ShapeSpec",
    "SizeRule",
    "aspect_ratio_of",
    "check_image",
    "check_input_sizes",
    "check_video",
    "default_catalog",
    "eligible_routes",
    "load_catalog",
    "video_size_label",
]
