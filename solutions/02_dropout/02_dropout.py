# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: kind,grade_id,points,-all
#     formats: py:percent
#     notebook_metadata_filter: -all
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Dropout
#
# *Part of the course kit for the lecture "DNN Discussion 2" (speaker: Isaac). Notebook 01 is about
# norms and weight penalties, 03 about batch normalization.*
#
# A network with many parameters and few training examples can learn its training set by heart and
# still do poorly on new data: the slides call this **high variance**. Dropout is a strikingly simple
# remedy: while training, switch off a random part of the network at every step, so no unit can rely
# on any particular other unit being there.
#
# In this notebook you will
#
# 1. write the forward pass of **inverted dropout** (train and test mode),
# 2. write its backward pass,
# 3. check both, here and with the grader,
# 4. train a small network on real handwritten digits and measure what dropout does to the gap
#    between training and validation accuracy.
#
# Run the cells from top to bottom. Cells that say `YOUR CODE HERE` are yours; every other cell is given.
#
# A check cell (`check("...")`) shows a table of its cases and ends with the points you earned
# (`0.0` until a case passes); it never stops the notebook, so Run All always reaches the end.

# %% kind="setup"
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from grader.notebook import check, check_all, check_implemented
from grader.toolkit import (
    load_digits,
    numerical_gradient_array,
    plot_train_val,
    quick_mode,
    rel_error,
    train_mlp,
)

rng = np.random.default_rng(2024)

# %% [markdown]
# ## 1. What the slides say
#
# * **When training**, each neuron is dropped with probability $P\%$: its output is set to zero for
#   this step, as if it were removed from the network together with all its connections.
# * **Each mini-batch resamples** the dropped neurons: every training step trains a different
#   "thinned" network, and all these thinned networks share their weights.
# * **When testing**, all neurons are connected.
#
# We write $p$ for the slides' $P\%$ as a fraction, and call it `p_drop` in code: **the probability of
# dropping a unit**. PyTorch's `nn.Dropout(p)` uses the same meaning. Careful when you read other
# material: the original dropout paper (Srivastava et al., 2014) and CS231n's assignment use $p$ for the
# probability of *keeping* a unit. Mixing the two up is the most common dropout bug.
#
# ### The mask
#
# For an input $x$ of shape $(N, D)$ (rows are examples) we draw a mask $m$ of the same shape, one
# independent coin per unit *and per example*:
#
# $$ m_{ij} \sim \text{Bernoulli}(1-p), \qquad m_{ij} = \begin{cases} 1 & \text{keep (probability } 1-p) \\ 0 & \text{drop (probability } p)\end{cases} $$
#
# ### Why the kept units are scaled
#
# If we only multiplied by the mask, the expected output of a unit during training would be
#
# $$ \mathbb{E}[m_{ij}\,x_{ij}] = (1-p)\,x_{ij}, $$
#
# but at test time, with every neuron connected, it would be $x_{ij}$: the next layer would see inputs
# that are on average $1/(1-p)$ times larger than anything it was trained on. There are two ways to
# make training and testing agree:
#
# * **The original convention** (Srivastava et al.): train with $m \odot x$, and at test time multiply
#   the outputs (equivalently, the outgoing weights) by $1-p$.
# * **Inverted dropout** (what everyone uses today, including PyTorch): divide by $1-p$ *during
#   training*, and leave test time alone:
#
# $$ \text{out}_{ij} = \frac{m_{ij}\,x_{ij}}{1-p}, \qquad \mathbb{E}[\text{out}_{ij}] = \frac{(1-p)\,x_{ij}}{1-p} = x_{ij}. $$
#
# With inverted dropout the test-time network is exactly the network you wrote down, with nothing to
# remember: `mode="test"` is the identity.

# %% [markdown]
# ## 2. Exercise: the forward pass
#
# Implement `dropout_forward`. The docstring is the full specification. A few tips:
#
# * draw the mask from the generator you are given, e.g. `rng.random(x.shape)`, and compare it with
#   `p_drop` (any correct way of drawing a Bernoulli mask passes: the checks look at statistics, not at
#   particular random numbers);
# * keep what the backward pass will need in `cache`;
# * return a new array, do not change `x` in place.

# %% [markdown]
# **Stuck?** Open the hints one at a time; each gives a little more away.
#
# <details><summary>Hint 1 — the idea</summary>
#
# In test mode there is nothing to do. In training mode you need one random number per entry of `x`,
# a rule that turns it into "keep" (probability $1-p$) or "drop" (probability $p$), and the factor
# $1/(1-p)$ for the kept entries.
# </details>
#
# <details><summary>Hint 2 — the equation</summary>
#
# $u_{ij} \sim \mathcal{U}[0, 1)$, $m_{ij} = [u_{ij} \ge p]$, $\text{out} = x \odot m / (1-p)$. The backward
# pass will need $m$ and $1/(1-p)$, and it must know the mode.
# </details>
#
# <details><summary>Hint 3 — shapes</summary>
#
# `rng.random(x.shape)` has shape (N, D), like `x`; comparing it with `p_drop` gives a boolean (N, D)
# mask; `x * mask / (1 - p_drop)` broadcasts nothing and is (N, D). A tuple such as
# `(mask, scale, mode)` is a fine cache.
# </details>

# %% kind="solution"
# reference: dropout_forward

# %% [markdown]
# ### Check your forward pass
#
# These cells run the same checks the grader runs, on your function. A failed case tells you what
# was measured and, when it recognises a typical mistake, what it looks like. Statistical checks are
# built so that a correct answer fails them with probability below $10^{-9}$: if you fail one, the
# bug is real.

# %% kind="check"
check("dropout_test_mode")

# %% kind="check"
check("dropout_train_forward")

# %% [markdown]
# Let us also look at the claim that the expectation is kept. Below, one input row is pushed through
# dropout many times; the average output approaches the input, while a single pass is very noisy.

# %% kind="experiment"
x_row = rng.uniform(0.5, 2.0, size=(1, 8))
p_demo = 0.3
draws = np.concatenate([dropout_forward(x_row, p_demo, "train", rng)[0] for _ in range(20_000)])
display(
    Markdown(
        f"Input: `{np.round(x_row[0], 3)}`  \n"
        f"One training pass: `{np.round(draws[0], 3)}`  \n"
        f"Average of {len(draws):,} passes: `{np.round(draws.mean(axis=0), 3)}`  \n"
        f"Largest gap between average and input: **{np.abs(draws.mean(axis=0) - x_row[0]).max():.3f}** "
        f"(it shrinks like $1/\\sqrt{{n}}$ with the number of passes $n$)."
    )
)

# %% [markdown]
# ## 3. Exercise: the backward pass
#
# In training mode the forward pass multiplies every input by a number that does not depend on $x$:
# $m_{ij}/(1-p)$. The chain rule therefore gives
#
# $$ \frac{\partial L}{\partial x_{ij}} = \frac{m_{ij}}{1-p}\,\frac{\partial L}{\partial\,\text{out}_{ij}}, $$
#
# so the gradient flows back through the units that were kept, scaled by the same factor, and is
# zero for the units that were dropped (they did not influence the loss). In test mode the forward
# pass was the identity, so `dx = dout`. The mask must be the one used in the forward pass: that is
# what the cache is for.

# %% [markdown]
# <details><summary>Hint 1 — the idea</summary>
#
# Each output entry is its input times a constant that the forward pass chose. What is the derivative
# of $c \cdot x$ with respect to $x$?
# </details>
#
# <details><summary>Hint 2 — the equation</summary>
#
# $\partial L / \partial x = \text{dout} \odot m / (1-p)$ in training mode, and `dout` itself in test mode.
# </details>
#
# <details><summary>Hint 3 — shapes</summary>
#
# `dout` and the mask are both (N, D): one element-wise product and one division, no sums, no
# transposes. Read the mask and the mode back from `cache`.
# </details>

# %% kind="solution"
# reference: dropout_backward

# %% kind="check"
check("dropout_backward")

# %% kind="check"
check("dropout_fresh_mask")

# %% [markdown]
# ### A gradient check with a fixed mask
#
# A finite-difference check needs a *deterministic* function, but dropout draws a new mask at every
# call. The trick: give every call a new generator made from the **same seed**, so every call draws the
# same mask. Then `dropout_forward` is an ordinary function of `x`, and its numerical gradient must
# match your `dropout_backward`.

# %% kind="experiment"
x_check = 5.0 + 3.0 * rng.standard_normal((6, 9))  # shifted and scaled input
dout_check = rng.standard_normal((6, 9))  # a random upstream gradient (ones would hide mistakes)
p_check = 0.3


def forward_with_fixed_mask(x):
    return dropout_forward(x, p_check, "train", np.random.default_rng(7))[0]


_, cache_check = dropout_forward(x_check, p_check, "train", np.random.default_rng(7))
dx_analytic = dropout_backward(dout_check, cache_check)
dx_numeric = numerical_gradient_array(forward_with_fixed_mask, x_check, dout_check)
display(
    Markdown(
        f"Relative error between your backward pass and finite differences: **{rel_error(dx_analytic, dx_numeric):.1e}** (below 1e-7 is right)."
    )
)

# %% [markdown]
# ### Hidden checks
#
# The grader also runs your functions on inputs you have not seen (other shapes and other dropout
# rates). There is nothing to do here; if the visible checks pass, these should too.

# %% kind="check"
check("dropout_hidden_forward")

# %% kind="check"
check("dropout_hidden_backward")

# %% [markdown]
# ## 4. A new mask at every mini-batch
#
# The slides stress that each mini-batch resamples the dropped neurons. Here are the masks your
# `dropout_forward` draws for the same four examples in three consecutive training steps (white =
# kept, black = dropped). Each step trains a different thinned network.

# %% kind="experiment"
fig, axes = plt.subplots(1, 3, figsize=(9, 2.2), constrained_layout=True)
for step, ax in enumerate(axes):
    out_step, _ = dropout_forward(np.ones((4, 24)), 0.3, "train", rng)
    ax.imshow(out_step != 0, cmap="gray", vmin=0, vmax=1, aspect="auto")
    ax.set_title(f"mini-batch {step + 1}")
    ax.set_xlabel("unit")
    ax.set_yticks(range(4), [f"example {i + 1}" for i in range(4)])
plt.show()

# %% [markdown]
# ## 5. Experiment: dropout against high variance, on real data
#
# We use the handwritten digits that ship with scikit-learn (1,797 images of 8×8 pixels, from the UCI
# *Optical Recognition of Handwritten Digits* data set). To provoke the slides' "high variance" we train
# on only **200** images and keep 500 for validation, with a network that is far too large for that:
# 64 → 256 → 256 → 10, ReLU, trained with SGD and momentum. The trainer takes *your* `dropout_forward`
# and `dropout_backward` as arguments and puts dropout after every hidden ReLU.
#
# Effects of one or two points of accuracy are within the noise of a single run, so every setting is
# trained with several seeds (different initialisations, mini-batch orders and masks).

# %% kind="experiment"
data = load_digits(n_train=200, n_val=500, seed=0)
quick = quick_mode()  # True under nbgrader's own autograde: shorter runs, same code
epochs = 30 if quick else 150
seeds = [0] if quick else [0, 1, 2, 3, 4]
rates = [0.0, 0.2, 0.4]

runs = {}
for p in rates:
    for seed in seeds:
        layer = (dropout_forward, dropout_backward, p) if p > 0 else None
        runs[p, seed] = train_mlp(
            data, [256, 256], epochs=epochs, seed=seed, dropout=layer, progress=False, eval_every=5
        )

final = {
    p: np.array([[runs[p, s].final()[k] for k in ("train_acc", "val_acc")] for s in seeds])
    for p in rates
}


def mean_and_error(values):
    """Mean and its standard error over the seeds."""
    return values.mean(), values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0


rows = []
for p in rates:
    (train_mean, _), (val_mean, val_se) = (
        mean_and_error(final[p][:, 0]),
        mean_and_error(final[p][:, 1]),
    )
    rows.append(
        f"| {p:.1f} | {train_mean:.1%} | {val_mean:.1%} ± {val_se:.1%} | {train_mean - val_mean:.1%} |"
    )
display(
    Markdown(
        f"Final accuracies over {len(seeds)} seed(s): mean ± standard error of the mean.\n\n"
        "| p_drop | train | validation | gap (train − validation) |\n|---|---|---|---|\n"
        + "\n".join(rows)
    )
)

# %% kind="experiment"
fig, (ax_curves, ax_seeds) = plt.subplots(1, 2, figsize=(12, 3.8), constrained_layout=True)
for i, p in enumerate(rates):
    plot_train_val(ax_curves, runs[p, seeds[0]], label=f"p_drop={p}", i=i, legend=False)
ax_curves.set(
    title=f"learning curves (seed {seeds[0]}): solid train, dashed validation", xlabel="epoch"
)
ax_curves.legend(frameon=False, ncols=len(rates), fontsize="small", loc="lower right")

for s_index in range(len(seeds)):  # one grey line per seed: the comparison is paired
    ax_seeds.plot(rates, [final[p][s_index, 1] for p in rates], color="0.75", marker="o", zorder=1)
ax_seeds.errorbar(
    rates,
    [final[p][:, 1].mean() for p in rates],
    yerr=[mean_and_error(final[p][:, 1])[1] for p in rates],
    color="black",
    marker="s",
    capsize=4,
    linewidth=2,
    label="mean ± standard error",
    zorder=2,
)
ax_seeds.set(
    title=f"final validation accuracy, {len(seeds)} seed(s)", xlabel="p_drop", xticks=rates
)
ax_seeds.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0, decimals=1))
ax_seeds.legend(frameon=False)
plt.show()

# %% kind="experiment"
base = final[0.0][:, 1]
lines = []
for p in rates[1:]:
    change = (
        final[p][:, 1] - base
    )  # paired: the same seed gives the same data order and initialisation
    better = int(np.sum(change > 0))
    lines.append(
        f"* `p_drop = {p}`: validation accuracy changed by **{change.mean():+.1%}** on average, "
        f"and was higher in **{better} of {len(seeds)}** seeds."
    )
display(
    Markdown(
        f"Without dropout the network fits its 200 training images to **{final[0.0][:, 0].mean():.1%}** but "
        f"reaches only **{base.mean():.1%}** on the validation images: the high variance of the slides. "
        "Compared seed by seed with that baseline:\n\n" + "\n".join(lines) + "\n\n"
        "Training accuracy is measured in test mode (all neurons connected). Notice the size of the effect "
        f"next to the spread between seeds (standard deviation of the baseline: {base.std(ddof=1) if len(base) > 1 else 0:.1%}): "
        "a single run could not tell them apart, which is why every setting is trained with several seeds and "
        "compared seed by seed."
    )
)

# %% [markdown]
# ## 6. Questions
#
# Answer in a few sentences in the cells below; these are graded by hand.
#
# **Question 1.** Suppose you used dropout *without* the $1/(1-p)$ scaling during training. What exactly
# would you have to change at test time, and why? What goes wrong if you forget?

# %% [markdown] kind="answer" grade_id="q1_test_time_scaling" points=1
# ### BEGIN SOLUTION
# Without scaling, a unit's expected training output is $(1-p)x$, but at test time (all units kept) it
# is $x$. To make the next layer see the same scale it was trained on, multiply the activations (or the
# outgoing weights) by $1-p$ at test time: the original convention of Srivastava et al. If you forget,
# every layer's input at test time is $1/(1-p)$ times too large on average, the errors compound through
# the layers, and the predictions degrade. Inverted dropout moves this factor into training, so the
# test-time network needs no change.
# ### END SOLUTION

# %% [markdown]
# **Question 2.** Your `dropout_forward` draws a new mask at every call. What would happen to training
# if it drew one mask at the start and reused it for every mini-batch?

# %% [markdown] kind="answer" grade_id="q2_fixed_mask" points=1
# ### BEGIN SOLUTION
# With a fixed mask, the same units would be dropped in every step: training would simply fit a
# smaller network (the units that are always dropped never learn, and the rest can co-adapt as much as
# they like). The regularising effect comes from training a different thinned network at every step
# with shared weights, which forces each unit to be useful in many contexts and averages the thinned
# networks at test time. At test time the fixed-mask network would also see units switched on that it
# never trained with.
# ### END SOLUTION

# %% [markdown]
# **Question 3.** In the experiment, the training accuracy with dropout (measured in test mode) is still
# close to 100 %, although every training step used a network with part of its units switched off. Why?
# Would you expect an ever larger `p_drop` to keep helping?

# %% [markdown] kind="answer" grade_id="q3_rate_tradeoff" points=1
# ### BEGIN SOLUTION
# During training each step uses a random thinned network, which fits the batch worse than the full
# network, so the training loss is higher and noisier. Evaluated in test mode (all units, no noise), the
# full network still fits the small training set well. Dropout trades some fit for less variance; too
# large a rate removes so much capacity at each step that the network underfits (it can barely learn
# the training set, and validation accuracy drops again), so the best rate is in between, and the
# right value depends on the network's size and the amount of data.
# ### END SOLUTION

# %% [markdown]
# ## 7. Before you submit
#
# Run every public check at once. From a terminal you can do the same with
# `python -m grader check 02_dropout.ipynb`.

# %% kind="experiment"
check_all("02_dropout")
