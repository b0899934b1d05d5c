"""The drift chart: reference vs observed shares per bin, one panel per feature and prediction
(numeric bins labelled by their edges, categorical ones by category plus an "(unseen)" bin).

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
    from trainer.drift import Score

_COLUMNS = 2
_REFERENCE = "#4c72b0"
_OBSERVED = "#dd8452"


def render_chart(version: str, scores: list[Score]) -> bytes:
    rows = math.ceil(len(scores) / _COLUMNS)
    figure = Figure(figsize=(6.0 * _COLUMNS, 3.4 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(f"{version}: served (observed) vs training (reference) distribution")
    axes = figure.subplots(rows, _COLUMNS, squeeze=False).ravel()
    for ax, item in zip(axes, scores, strict=False):
        positions = np.arange(len(item.reference))
        ax.bar(positions - 0.2, item.reference, width=0.4, color=_REFERENCE, label="reference")
        ax.bar(positions + 0.2, item.observed, width=0.4, color=_OBSERVED, label="observed")
        ax.set_xticks(positions, bin_labels(item), rotation=45, ha="right", fontsize=7)
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


def bin_labels(item: Score) -> list[str]:
    """Numeric bins by their edges; categorical bins by category, then the unseen bin."""
    if item.categories is not None:
        return [*item.categories, "(unseen)"]
    inner = (item.edges or [])[1:-1]
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
