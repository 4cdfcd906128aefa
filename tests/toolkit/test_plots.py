"""Tests of grader.toolkit.plots (Agg backend, object API only)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from grader.toolkit import PALETTE, History, plot_curves, plot_train_val, style  # noqa: E402
from grader.toolkit.plots import OKABE_ITO  # noqa: E402


def fake_history(offset=0.0, n=30, diverged=False):
    t = np.arange(1, n + 1)
    curve = list(0.9 - 0.5 * np.exp(-t / 5) + offset)
    return History(
        train_loss=list(np.exp(-t / 5) + 0.01),
        train_acc=list(np.minimum(1.0, np.array(curve) + 0.08)),
        val_loss=list(np.exp(-t / 5) + 0.3),
        val_acc=curve,
        iter_loss=list(np.exp(-np.arange(4 * n) / 20) + 0.01),
        params={},
        bn_params=[],
        seconds=0.1,
        epochs=list(t),
        diverged=diverged,
    )


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


@pytest.fixture(autouse=True)
def no_show(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("plt.show() must never be called")

    monkeypatch.setattr(plt, "show", fail)


def test_palette_is_okabe_ito():
    assert len(PALETTE) == 8 and set(PALETTE) == set(OKABE_ITO.values())
    assert OKABE_ITO["vermillion"] == "#D55E00" and OKABE_ITO["bluish_green"] == "#009E73"
    assert PALETTE[-1] == OKABE_ITO["yellow"]  # the palest colour is used last


def test_first_curves_differ_in_colour_linestyle_and_marker():
    styles = [style(i) for i in range(6)]
    for key in ("color", "linestyle", "marker"):
        values = [str(s[key]) for s in styles]
        assert len(set(values)) == 6, key
    pairs = {(s["color"], str(s["linestyle"])) for s in (style(i) for i in range(24))}
    assert len(pairs) == 24
    assert "markevery" in style(2, n_points=150)


def test_plot_curves_with_legend(ax):
    hs = {"no reg.": fake_history(), "L2": fake_history(0.03), "dropout": fake_history(0.02)}
    lines = plot_curves(ax, hs, "val_acc")
    assert [line.get_label() for line in ax.get_lines()] == list(hs)
    assert lines == ax.get_lines()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(hs)
    colors = [to_hex(line.get_color()) for line in lines]
    assert colors == [p.lower() for p in PALETTE[:3]]
    assert len({line.get_linestyle() for line in lines}) == 3
    assert np.allclose(lines[1].get_ydata(), hs["L2"].val_acc)
    assert ax.get_xlabel() == "epoch" and "accuracy" in ax.get_ylabel()


def test_plot_curves_direct_labels(ax):
    hs = {"p=0.3": fake_history(), "p=0.5": fake_history(-0.02)}
    plot_curves(ax, hs, "val_loss", labels="direct", title="dropout")
    assert ax.get_legend() is None
    assert {t.get_text() for t in ax.texts} == set(hs)
    assert ax.get_yscale() == "log" and ax.get_title() == "dropout"


def test_plot_curves_iterations_and_seed_bands(ax):
    seeds = [fake_history(0.01 * s) for s in range(3)]
    lines = plot_curves(ax, {"BN": seeds, "no BN": fake_history()}, "iter_loss")
    assert ax.get_xlabel() == "iteration"
    assert len(lines[0].get_xdata()) == 120
    assert len(ax.collections) == 1  # one min-max band, for the entry with several seeds
    assert np.allclose(
        plot_curves(ax, {"mean": seeds}, "val_acc")[0].get_ydata(),
        np.mean([h.val_acc for h in seeds], axis=0),
    )


def test_plot_train_val(ax):
    train, val = plot_train_val(ax, fake_history(), "L2", i=2)
    assert train.get_label() == "L2 train" and val.get_label() == "L2 val"
    assert train.get_color() == val.get_color() == PALETTE[2]
    assert train.get_linestyle() == "-" and val.get_linestyle() == "--"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"L2 train", "L2 val"}
    train, val = plot_train_val(ax, fake_history(), metric="loss", legend=False)
    assert train.get_label() == "train" and ax.get_yscale() == "log"


def test_diverged_run_with_non_finite_values_still_plots(ax):
    h = fake_history(n=3, diverged=True)
    h.val_loss[-1] = float("nan")
    plot_curves(ax, {"lr=10": h}, "val_loss", labels="direct")
    ax.figure.canvas.draw()


def test_bad_arguments(ax):
    with pytest.raises(ValueError, match="unknown metric"):
        plot_curves(ax, {"a": fake_history()}, "val_accuracy")
    with pytest.raises(ValueError, match="labels"):
        plot_curves(ax, {"a": fake_history()}, labels="inline")
    with pytest.raises(ValueError, match="metric"):
        plot_train_val(ax, fake_history(), metric="val_acc")
