"""Usage as the dashboard's pages show it: rows, key names, times in the person's zone, and the
list of zones to choose from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from ..models import UsageRecord
from ..usage.calendar import zone_choices
from ..usage.reading import KeyLabel
from ..usage.report import UsageTotals

__all__ = [
    "STATUS_LABELS",
    "UNKNOWN_MODEL",
    "UNKNOWN_MODEL_LABEL",
    "key_rows",
    "model_label",
    "usage_rows",
    "when",
    "zone_options",
]

#: status → (what the page says, badge style)
STATUS_LABELS = {
    "succeeded": ("Succeeded", "badge-ok"),
    "failed": ("Failed", "badge-danger"),
    "pending": ("Running", "badge-info"),
}


#: endpoint → what the page calls it (the API and CSV keep the endpoint's name).
ENDPOINT_LABELS = {
    "images.generations": "Image",
    "images.edits": "Image edit",
    "videos.create": "Video",
}


def when(timestamp: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(timestamp, zone).strftime("%d %b %Y, %H:%M:%S")


def short_when(timestamp: float, zone: ZoneInfo) -> str:
    """Within the last weeks, the year goes without saying (the full time is the cell's
    machine-readable `datetime`)."""
    return datetime.fromtimestamp(timestamp, zone).strftime("%d %b, %H:%M:%S")


#: The model a usage row names when the request named none the catalog has (refused before
#: any call: `usage.outcomes.record_refusal`), and how the pages say it.
UNKNOWN_MODEL = "unknown"
UNKNOWN_MODEL_LABEL = "Model not offered here (refused)"


def model_label(model: str) -> str:
    return UNKNOWN_MODEL_LABEL if model == UNKNOWN_MODEL else model


def usage_rows(
    rows: Sequence[UsageRecord], zone: ZoneInfo, keys: Mapping[str, KeyLabel]
) -> list[dict[str, Any]]:
    shown = []
    for row in rows:
        key = keys.get(row.api_key_id or "")
        label, badge = STATUS_LABELS.get(row.status, (row.status, ""))
        shown.append(
            {
                "id": row.id,
                "time": short_when(row.created_at, zone),
                "iso": datetime.fromtimestamp(int(row.created_at), zone).isoformat(),
                "key": key.label if key is not None else (row.api_key_id or "—"),
                "model": model_label(row.model),
                "endpoint": ENDPOINT_LABELS.get(row.endpoint, row.endpoint),
                "credits": f"{row.credit_cost:,}" if row.status != "pending" else "—",
                "status": label,
                "badge": badge,
                "error": row.error_code or "",
            }
        )
    return shown


def key_rows(totals: UsageTotals, keys: Mapping[str, KeyLabel]) -> list[dict[str, str]]:
    rows = []
    for total in totals.by_key:
        key = keys.get(total.key_id or "")
        name = key.label if key is not None else total.key_id or "No key"
        rows.append(
            {"name": name, "requests": f"{total.requests:,}", "credits": f"{total.credits:,}"}
        )
    return rows


@lru_cache(maxsize=256)
def zone_options(selected: str) -> Markup:
    """The time zone select's options (about 600, by region), the person's zone selected:
    built once per zone rather than on every render of the usage page."""
    parts = []
    for region, names in zone_choices():
        if region:
            parts.append(f'<optgroup label="{escape(region)}">')
        for name in names:
            chosen = " selected" if name == selected else ""
            label = escape(name.replace("_", " "))
            parts.append(f'<option value="{escape(name)}"{chosen}>{label}</option>')
        if region:
            parts.append("</optgroup>")
    return Markup("\n".join(parts))  # noqa: S704  (every part escaped above)
