"""A bar chart of credits per day, drawn on the server as SVG (no script, no chart library).

Widths are percentages and heights pixels, so the chart takes the width it is given (a phone,
a desktop) without stretching its text. The numbers are also given as text: a title and a
description for assistive technology, a tooltip per bar, and a table beside it (the page's
`details`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ..usage.report import DayTotal

__all__ = ["BarChart", "credits_chart", "day_label", "nice_ceiling"]

#: Pixels: the plot area, the space above it (the top grid line's label) and below (dates).
PLOT_HEIGHT = 150
TOP = 22
BOTTOM = 26
HEIGHT = TOP + PLOT_HEIGHT + BOTTOM
_MAX_LABELS = 6


@dataclass(frozen=True, slots=True)
class Bar:
    x: str
    width: str
    y: float
    height: float
    tooltip: str
    today: bool


@dataclass(frozen=True, slots=True)
class GridLine:
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class AxisLabel:
    x: str
    anchor: str
    text: str


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    description: str
    bars: list[Bar]
    grid: list[GridLine]
    labels: list[AxisLabel]
    days: list[DayTotal]
    height: int = HEIGHT
    baseline: float = TOP + PLOT_HEIGHT
    label_y: float = HEIGHT - 6


def day_label(day: date) -> str:
    return f"{day.day} {day.strftime('%b')}"


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten (a whole
    number) at or above `value`: grid lines at round numbers, the tallest bar near the top."""
    if value <= 1:
        return 1
    power: int = 10 ** math.floor(math.log10(value))
    for tenths in (10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100):
        top, rest = divmod(tenths * power, 10)
        if top >= value and not rest:
            return top
    return 10 * power


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _percent(value: float) -> str:
    return f"{value:.3f}%"


def _label_indices(count: int) -> list[int]:
    if count <= _MAX_LABELS:
        return list(range(count))
    step = math.ceil((count - 1) / (_MAX_LABELS - 1))
    chosen = list(range(0, count - 1, step))
    if count - 1 - chosen[-1] < step:
        chosen.pop()  # too close to the last one, which is always shown
    return [*chosen, count - 1]


def credits_chart(days: Sequence[DayTotal], *, today: date, zone: str) -> BarChart:
    count = len(days)
    top_value = max((d.credits for d in days), default=0)
    ceiling = nice_ceiling(top_value)
    slot = 100 / max(count, 1)
    bars = []
    for index, day in enumerate(days):
        height = PLOT_HEIGHT * day.credits / ceiling
        if day.credits and height < 2:
            height = 2  # a day with any spend stays visible
        requests = f"{day.requests:,} request{'s' if day.requests != 1 else ''}"
        bars.append(
            Bar(
                x=_percent(index * slot + slot * 0.15),
                width=_percent(slot * 0.7),
                y=round(TOP + PLOT_HEIGHT - height, 2),
                height=round(height, 2),
                tooltip=f"{day_label(day.day)}{' (today, so far)' if day.day == today else ''}: "
                f"{day.credits:,} credits, {requests}",
                today=day.day == today,
            )
        )
    grid = [
        GridLine(round(TOP + PLOT_HEIGHT * (1 - share), 2), _number(ceiling * share))
        for share in (0.0, 0.5, 1.0)
    ]
    labels = []
    for index in _label_indices(count):
        if index == 0:
            x, anchor = index * slot, "start"
        elif index == count - 1:
            x, anchor = (index + 1) * slot, "end"
        else:
            x, anchor = (index + 0.5) * slot, "middle"
        labels.append(AxisLabel(_percent(x), anchor, day_label(days[index].day)))
    total = sum(d.credits for d in days)
    if days:
        span = f"{day_label(days[0].day)} to {day_label(days[-1].day)} ({zone})"
        busiest = max(days, key=lambda d: (d.credits, d.day))
        highest = (
            f" Highest: {busiest.credits:,} credits on {day_label(busiest.day)}."
            if busiest.credits
            else ""
        )
        description = f"{total:,} credits over {count} days, {span}.{highest}"
    else:
        description = "No days in this range."
    return BarChart(
        title="Credits spent per day",
        description=description,
        bars=bars,
        grid=grid,
        labels=labels,
        days=list(days),
    )
