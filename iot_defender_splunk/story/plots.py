"""One PNG per incident, for whoever would rather look than read (and for the README).

matplotlib's object API on the Agg canvas (no pyplot, no display, no global state), with no
Software stamp in the PNG: the same chart gives the same bytes, so the README's images can be
regenerated and compared.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from iot_defender_splunk.story.evidence import Chart

SIZE_INCHES = (8.0, 3.6)
DPI = 100
DAY = 86_400.0


def _days(times: tuple[float, ...]) -> list[float]:
    """Epoch seconds as matplotlib's dates: days since 1970-01-01 UTC."""
    return [t / DAY for t in times]


def draw(chart: Chart, path: Path) -> None:
    """``chart`` as a PNG at ``path``: bars per category, or lines over UTC time."""
    # Fixed margins: a layout engine would cost more time than the drawing itself.
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI)
    figure.subplots_adjust(left=0.3 if chart.bars else 0.09, right=0.98, bottom=0.14, top=0.91)
    axes = figure.add_subplot()
    axes.set_title(chart.title, fontsize=11)
    if chart.bars:
        labels = [label for label, _ in chart.bars]
        axes.barh(labels, [value for _, value in chart.bars], color="tab:red")
        axes.invert_yaxis()
        axes.set_xlabel(chart.ylabel)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.tick_params(axis="y", labelsize=7)
    else:
        if chart.band is not None:
            band = chart.band
            axes.fill_between(
                _days(band.times),
                band.low,
                band.high,
                color="tab:grey",
                alpha=0.3,
                label=band.label,
            )
        for series in chart.lines:
            axes.plot(
                _days(series.times),
                series.values,
                label=series.label,
                linewidth=1.4,
                drawstyle="steps-post",
            )
        if chart.marker is not None:
            axes.axvline(
                chart.marker / DAY,
                color="black",
                linestyle="--",
                linewidth=1,
                label="incident starts",
            )
        # matplotlib.dates is not annotated.
        axes.xaxis.set_major_locator(AutoDateLocator(tz=dt.UTC))  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=dt.UTC))  # type: ignore[no-untyped-call]
        axes.set_xlabel("time (UTC)")
        axes.set_ylabel(chart.ylabel)
        if chart.log_scale:
            axes.set_yscale("log")
        else:
            axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.legend(fontsize=8, loc="upper left")
    axes.grid(alpha=0.3)
    figure.savefig(path, format="png", metadata={"Software": None})
