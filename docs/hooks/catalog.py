"""mkdocs hook: render the catalog page from the catalog file shipped in the package.

The page can never drift from the data: `<!-- catalog -->` in docs/catalog.md is replaced at build
time by one section per model.
"""

from __future__ import annotations

from typing import Any

from reapi.catalog import ModelSpec, default_catalog

PLACEHOLDER = "<!-- catalog -->"


def _caps(model: ModelSpec) -> list[str]:
    caps = model.capabilities
    rows = []
    if caps.sizes:
        rows.append("sizes: " + ", ".join(f"`{s}`" for s in caps.sizes))
    if caps.size_rule:
        rule = caps.size_rule
        rows.append(
            f"any `WxH`: multiples of {rule.multiple_of}, up to {rule.max_long_edge}x"
            f"{rule.max_short_edge}, ratio within 1:{rule.max_ratio:g}–{rule.max_ratio:g}:1"
        )
    for label, values in (
        ("aspect ratios", caps.aspect_ratios),
        ("resolutions", caps.resolutions),
        ("seconds", caps.seconds),
        ("qualities", caps.qualities),
        ("output formats", caps.output_formats),
    ):
        if values:
            rows.append(f"{label}: " + ", ".join(f"`{v}`" for v in values))
    for resolution, allowed in caps.seconds_by_resolution.items():
        rows.append(f"at `{resolution}` only seconds: " + ", ".join(f"`{v}`" for v in allowed))
    rows.append(f"n: up to {caps.n_max}")
    if caps.edits:
        rows.append(f"edits: up to {caps.max_input_images} input images"
                    + (f" of at most {caps.max_input_image_mb:g} MB each"
                       if caps.max_input_image_mb is not None else "")
                    + (", mask" if caps.mask else "")
                    + (f" of at most {caps.max_mask_mb:g} MB"
                       if caps.mask and caps.max_mask_mb is not None else ""))
    if caps.input_reference:
        rows.append("input_reference: " + ("the video to work on" if caps.input_video
                                           else "first-frame image"))
    if caps.max_source_seconds is not None:
        rows.append(f"source video: up to {caps.max_source_seconds:g} s")
    return rows


def render() -> str:
    catalog = default_catalog()
    out = ["| model | kind | routes, in order | price |", "|---|---|---|---|"]
    for model in catalog.models.values():
        routes = " → ".join(f"{r.provider} `{r.upstream_model}`" for r in model.routes)
        price = f"{model.price.credits} credits / {model.price.unit}"
        out.append(f"| [`{model.id}`](#{model.id.replace('.', '')}) | {model.kind} | {routes} "
                   f"| {price} |")
    for model in catalog.models.values():
        out += ["", f"## {model.id}", "", f"**{model.name}** — {model.description}", ""]
        out += [f"- {row}" for row in _caps(model)]
        if model.price.per_input_image:
            out.append(f"- plus {model.price.per_input_image} credits per input image of an edit")
        if model.price.by_resolution:
            out.append("- price by resolution: " + ", ".join(
                f"`{k}` {v}" for k, v in model.price.by_resolution.items()))
        for route in model.routes:
            if route.limits is not None:
                limits = route.limits.model_dump(exclude_defaults=True)
                out.append(f"- route `{route.key}` only serves: `{limits}`")
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if PLACEHOLDER in markdown:
        return markdown.replace(PLACEHOLDER, render())
    return markdown
