"""The server-drawn chart: round grid lines above the tallest bar, labels that say what they
mark, every day a bar, and its numbers in words for assistive technology."""

import itertools
from datetime import date, timedelta

from reapi_server.usage.report import DayTotal
from reapi_server.web.charts import PLOT_HEIGHT, TOP, credits_chart, nice_ceiling


def test_grid_lines_are_round_and_just_above_the_tallest_bar():
    assert [nice_ceiling(v) for v in (0, 1, 7, 11, 51, 101, 2501, 5400)] == [
        1,
        1,
        8,
        12,
        60,
        120,
        3000,
        6000,
    ]


def test_bars_labels_and_description():
    first = date(2027, 1, 1)
    days = [DayTotal(first + timedelta(days=i), i, i * 10) for i in range(30)]
    chart = credits_chart(days, today=days[-1].day, zone="Europe/Paris")
    assert len(chart.bars) == 30 and chart.bars[-1].today
    tallest = chart.bars[-1]
    assert tallest.y >= TOP and tallest.y + tallest.height == TOP + PLOT_HEIGHT
    assert chart.bars[0].height == 0
    assert [g.label for g in chart.grid] == ["0", "150", "300"]  # 290 is the most
    assert chart.labels[0].text == "1 Jan" and chart.labels[-1].text == "30 Jan"
    assert len(chart.labels) <= 6
    # On a phone (a plot about 330 px wide) a date label takes some 13 % of the width: their
    # middles stay at least that far apart, whichever way each is anchored.
    shift = {"start": 6.5, "middle": 0.0, "end": -6.5}
    middles = [float(label.x.rstrip("%")) + shift[label.anchor] for label in chart.labels]
    assert min(b - a for a, b in itertools.pairwise(middles)) >= 13
    assert chart.description == (
        "4,350 credits over 30 days, 1 Jan to 30 Jan (Europe/Paris). "
        "Highest: 290 credits on 30 Jan."
    )
    assert chart.bars[3].tooltip == "4 Jan: 30 credits, 3 requests"


def test_a_half_grid_line_between_whole_numbers_says_so():
    chart = credits_chart([DayTotal(date(2027, 1, 1), 1, 15)], today=date(2027, 1, 1), zone="UTC")
    assert [g.label for g in chart.grid] == ["0", "7.5", "15"]
