"""The drift chart: reference vs observed shares per bin, one panel per feature and prediction
(numeric bins labelled by their edges, categorical ones by category, at most MAX_CATEGORY_BARS
of them, plus an "(unseen)" bin).

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend switch, no
display needed), and returned as PNG bytes so the caller decides where and how to write them.
"""

from __future__ import annotations

import io
import math
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from trainer.monitoring.drift import Score

_COLUMNS = 2
# A categorical panel draws at most this many category bars: with more categories, those with
# the largest shares (served or training) and one "(N others)" bar. PSI and the report use all.
MAX_CATEGORY_BARS = 12
_REFERENCE = "#4c72b0"
_OBSERVED = "#dd8452"


def render_chart(version: str, scores: list[Score]) -> bytes:
    rows = math.ceil(len(scores) / _COLUMNS)
    figure = Figure(figsize=(6.0 * _COLUMNS, 3.4 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(f"{version}: served (observed) vs training (reference) distribution")
    axes = figure.subplots(rows, _COLUMNS, squeeze=False).ravel()
    for ax, item in zip(axes, scores, strict=False):
        labels, reference, observed = panel_bars(item)
        positions = np.arange(len(labels))
        ax.bar(positions - 0.2, reference, width=0.4, color=_REFERENCE, label="reference")
        ax.bar(positions + 0.2, observed, width=0.4, color=_OBSERVED, label="observed")
        ax.set_xticks(positions, labels, rotation=45, ha="right", fontsize=7)
        verdict = "DRIFT" if item.drifted else "ok"
        nulls = f", {item.missing} null" if item.missing else ""
        ax.set_title(
            f"{item.name}: PSI {item.psi:.3f} ({verdict}{nulls})", color=_title_color(item)
        )
        ax.set_ylabel("share of rows")
        ax.legend(fontsize=7)
    for ax in axes[len(scores) :]:
        ax.set_visible(False)
    buffer = io.BytesIO()
    # No Software/date metadata: the same scores always give the same bytes.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def panel_bars(item: Score) -> tuple[list[str], list[float], list[float]]:
    """Labels and reference/observed shares of a panel's bars: numeric bins by their edges;
    at most MAX_CATEGORY_BARS category bars (beyond that, the largest and one for the others),
    then unseen."""
    if item.categories is None:
        return bin_labels(item.edges or []), item.reference, item.observed
    shares = list(zip(item.categories, item.reference[:-1], item.observed[:-1], strict=True))
    if len(shares) > MAX_CATEGORY_BARS:
        ranked = sorted(shares, key=lambda bar: max(bar[1], bar[2]), reverse=True)
        kept = {bar[0] for bar in ranked[: MAX_CATEGORY_BARS - 1]}
        others = [bar for bar in shares if bar[0] not in kept]
        shares = [bar for bar in shares if bar[0] in kept]
        shares.append(
            (
                f"({len(others)} others)",
                sum(bar[1] for bar in others),
                sum(bar[2] for bar in others),
            )
        )
    shares.append(("(unseen)", item.reference[-1], item.observed[-1]))
    return [bar[0] for bar in shares], [bar[1] for bar in shares], [bar[2] for bar in shares]


def bin_labels(edges: list[float]) -> list[str]:
    """Numeric bins ``(-inf, e1], ..., (e_{k-1}, +inf)`` by their inner edges."""
    inner = edges[1:-1]
    if not inner:
        return ["all"]
    labels = [f"<={_short(inner[0])}"]
    labels += [f"{_short(low)}-{_short(high)}" for low, high in pairwise(inner)]
    labels.append(f">{_short(inner[-1])}")
    return labels


def _short(value: float) -> str:
    return f"{value / 1000:.4g}k" if abs(value) >= 10_000 else f"{value:.4g}"


def _title_color(item: Score) -> str:
    return "#c44e52" if item.drifted else "black"
