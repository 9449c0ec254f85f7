"""Charts as SVG images, drawn by pygal (a maintained Python charting library, LGPL).

The agent pages show a chart as ``<img src=".../chart.svg">`` beside a table of the same numbers:
an image needs no JavaScript and keeps the pages' strict Content-Security-Policy, and the table
is what screen readers and CSV read. pygal's own tooltip script is left out (``js=[]``); the
SVG's inline style sheet only ever runs inside the image, which kb serves with a CSP of its own
(kb.web.agent.insights_common.svg_response).
"""

from __future__ import annotations

import sys
from typing import Mapping, Sequence

import pygal
from pygal.style import Style

# pygal puts an old-style import hook (for its map plugins, which kb does not use) on sys.meta_path;
# it makes every failed import anywhere in the process warn (ImportWarning: no find_spec). Take it off.
sys.meta_path[:] = [finder for finder in sys.meta_path if type(finder).__module__ != "pygal"]

# kb's colours: readable on white, told apart without colour by the legend's order and the table.
KB_STYLE = Style(background="white", plot_background="white", foreground="#1f2933", foreground_strong="#1f2933",
                 foreground_subtle="#8a96a3", opacity="1", opacity_hover="1", transition="none",
                 colors=("#1b6ac9", "#7fb2f0", "#d9822b", "#3f8f5a", "#a83279", "#6b7280"),
                 font_family="system-ui, sans-serif", label_font_size=12, major_label_font_size=12,
                 legend_font_size=13, title_font_size=15, value_font_size=11)
WIDTH, HEIGHT = 760, 320


def _options(title: str, labels: Sequence[str], *, percent: bool = False) -> dict:
    """The options every kb chart shares: size, style, no script, few x labels when there are many."""
    step = max(1, -(-len(labels) // 8))  # at most eight x labels, so dates never overlap
    return dict(title=title, style=KB_STYLE, width=WIDTH, height=HEIGHT, js=[], legend_at_bottom=True,
                show_minor_x_labels=False, x_labels_major_every=step, truncate_label=12, x_label_rotation=0,
                value_formatter=(lambda v: f"{v:.0%}") if percent else (lambda v: f"{v:g}"),
                print_values=False, no_data_text="No data in this period", explicit_size=True)


def render(kind: str, title: str, labels: Sequence[str], series: Mapping[str, Sequence[float | None]], *,
           percent: bool = False) -> bytes:
    """An SVG chart: ``kind`` is "bar", "stacked" (bars stacked) or "line"; one entry of ``series`` per legend item."""
    chart_class = {"bar": pygal.Bar, "stacked": pygal.StackedBar, "line": pygal.Line,
                   "hbar": pygal.HorizontalBar}[kind]
    chart = chart_class(**_options(title, labels, percent=percent))
    chart.x_labels = list(labels)
    if percent:
        chart.range = (0, 1)
    for name, values in series.items():
        chart.add(name, list(values))
    return chart.render()
