"""Plots for the experiments, readable by color-blind readers and in grayscale print.

Colors are the Okabe–Ito palette; every curve also gets its own line style and marker, so the
lines stay distinguishable without color. Only matplotlib's object API is used (pass an
``Axes``); nothing here calls ``plt.show()`` or touches global state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.ticker import PercentFormatter

#: Okabe & Ito (2008), "Color Universal Design", by name.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: The order in which curves get colors: strong contrasts first, pale yellow last.
PALETTE: tuple[str, ...] = tuple(
    OKABE_ITO[name]
    for name in (
        "blue",
        "vermillion",
        "bluish_green",
        "reddish_purple",
        "orange",
        "sky_blue",
        "black",
        "yellow",
    )
)

LINESTYLES: tuple[Any, ...] = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)))
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")

_METRIC_LABELS = {
    "train_acc": "training accuracy",
    "val_acc": "validation accuracy",
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "iter_loss": "mini-batch loss",
}


def style(i: int, n_points: int | None = None) -> dict[str, Any]:
    """Color, line style and marker of the ``i``-th curve.

    Colors cycle through :data:`PALETTE` (8), line styles through :data:`LINESTYLES` (6) and
    markers through :data:`MARKERS` (8); the first 8 curves differ in all three, and any two of
    the first 24 differ in color or line style.

    Parameters
    ----------
    i : int
        Index of the curve, 0-based.
    n_points : int, optional
        Number of points on the curve; when given, ``markevery`` is set so that about 8 markers
        are drawn instead of one per point.

    Returns
    -------
    dict
        Keyword arguments for ``Axes.plot``: ``color``, ``linestyle``, ``marker`` (and
        ``markevery``).
    """
    kw: dict[str, Any] = {
        "color": PALETTE[i % len(PALETTE)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
        "marker": MARKERS[i % len(MARKERS)],
        "markersize": 4,
    }
    if n_points is not None:
        # offset the markers of different curves so they do not sit on top of each other
        step = max(1, n_points // 8)
        kw["markevery"] = (min(i * max(1, step // 4), max(0, n_points - 1)) % step, step)
    return kw


def _series(history, metric: str) -> tuple[np.ndarray, np.ndarray]:
    values = getattr(history, metric, None)
    if values is None or not isinstance(values, list):
        raise ValueError(
            f"unknown metric {metric!r}; use one of {', '.join(sorted(_METRIC_LABELS))}"
        )
    y = np.asarray(values, dtype=np.float64)
    if metric == "iter_loss":
        x = np.arange(1, len(y) + 1)
    else:
        epochs = getattr(history, "epochs", None) or []
        x = np.asarray(epochs if len(epochs) == len(y) else range(1, len(y) + 1))
    return x, y


def _format_axes(ax, metric: str, ylabel: str | None, title: str | None) -> None:
    ax.set_xlabel("iteration" if metric == "iter_loss" else "epoch")
    ax.set_ylabel(ylabel or _METRIC_LABELS.get(metric, metric))
    if metric.endswith("_acc"):
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    if metric.endswith("loss"):
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)


def _label_ends(ax, lines) -> None:
    """Write each line's label at its right end, in its color (direct labeling).

    Labels whose ends are close are pushed apart vertically so that they do not overlap.
    """
    ax.autoscale_view()
    ends = []
    for line in lines:
        x, y = line.get_xdata(), line.get_ydata()
        finite = np.isfinite(np.asarray(y, dtype=np.float64))
        if finite.any():
            j = np.flatnonzero(finite)[-1]
            ends.append((line, x[j], y[j], ax.transData.transform((x[j], y[j]))[1]))
    if not ends:
        return
    fontsize = matplotlib.rcParams["font.size"] * 0.85
    gap = 1.2 * fontsize * ax.figure.dpi / 72  # in pixels
    ends.sort(key=lambda e: e[3])
    placed = [ends[0][3]]
    for e in ends[1:]:
        placed.append(max(e[3], placed[-1] + gap))
    # center the block of labels on the line ends again
    shift = (np.mean([e[3] for e in ends]) - np.mean(placed)) if len(ends) > 1 else 0.0
    for (line, x, y, pix), new in zip(ends, placed, strict=True):
        ax.annotate(
            str(line.get_label()),
            (x, y),
            xytext=(4, (new + shift - pix) * 72 / ax.figure.dpi),
            textcoords="offset points",
            color=line.get_color(),
            va="center",
            ha="left",
            fontsize=fontsize,
            annotation_clip=False,
        )


def plot_curves(
    ax,
    histories: Mapping[str, Any],
    metric: str = "val_acc",
    *,
    labels: str = "legend",
    ylabel: str | None = None,
    title: str | None = None,
):
    """Plot one metric of several training runs on one axes.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    histories : dict of str to History or to a list of History
        Label -> run. A list (e.g. one run per seed) is drawn as its mean with a shaded band
        from the minimum to the maximum, which shows whether a difference is larger than the
        seed-to-seed noise.
    metric : str
        ``"val_acc"``, ``"train_acc"``, ``"val_loss"``, ``"train_loss"`` (per epoch) or
        ``"iter_loss"`` (per iteration). Losses use a log scale, accuracies a percent axis.
    labels : {"legend", "direct"}
        A legend, or each label written at the right end of its line.
    ylabel, title : str, optional

    Returns
    -------
    list of matplotlib.lines.Line2D
        One line per entry of ``histories``, labeled with its key.
    """
    if labels not in ("legend", "direct"):
        raise ValueError(f'labels must be "legend" or "direct", got {labels!r}')
    lines = []
    for i, (label, runs) in enumerate(histories.items()):
        runs = list(runs) if isinstance(runs, Sequence) else [runs]
        if not runs:
            raise ValueError(f"no runs for {label!r}")
        series = [_series(h, metric) for h in runs]
        n = min(len(y) for _, y in series)
        x = series[0][0][:n]
        ys = np.stack([y[:n] for _, y in series])
        (line,) = ax.plot(x, ys.mean(axis=0), label=str(label), **style(i, n))
        if len(runs) > 1:
            ax.fill_between(
                x, ys.min(axis=0), ys.max(axis=0), color=line.get_color(), alpha=0.15, lw=0
            )
        lines.append(line)
    _format_axes(ax, metric, ylabel, title)
    if labels == "legend":
        ax.legend(frameon=False)
    else:
        _label_ends(ax, lines)
    return lines


def plot_train_val(
    ax,
    history,
    label: str = "",
    *,
    metric: str = "acc",
    i: int = 0,
    ylabel: str | None = None,
    title: str | None = None,
    legend: bool = True,
):
    """Training and validation curves of one run: solid training, dashed validation.

    Both curves share the color ``style(i)["color"]``, so several runs can be drawn on one
    axes by giving each its own ``i``; the gap between a pair of curves is the generalization
    gap.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    history : History
    label : str
        Prefix of the line labels: ``"{label} train"`` and ``"{label} val"``.
    metric : {"acc", "loss"}
    i : int
        Color index (see :func:`style`).
    ylabel, title : str, optional
    legend : bool
        Draw a legend.

    Returns
    -------
    (train_line, val_line) : tuple of matplotlib.lines.Line2D
    """
    if metric not in ("acc", "loss"):
        raise ValueError(f'metric must be "acc" or "loss", got {metric!r}')
    color = PALETTE[i % len(PALETTE)]
    prefix = f"{label} " if label else ""
    out = []
    for split, linestyle, marker in (("train", "-", "o"), ("val", "--", "s")):
        x, y = _series(history, f"{split}_{metric}")
        (line,) = ax.plot(
            x,
            y,
            color=color,
            linestyle=linestyle,
            marker=marker,
            markersize=4,
            markevery=max(1, len(y) // 8),
            label=f"{prefix}{split}",
        )
        out.append(line)
    _format_axes(ax, f"val_{metric}", ylabel or metric.replace("acc", "accuracy"), title)
    if legend:
        ax.legend(frameon=False)
    return tuple(out)
