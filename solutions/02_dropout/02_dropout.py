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
from matplotlib.ticker import PercentFormatter

from grader.notebook import check, check_all, check_implemented
from grader.toolkit import (
    affine_forward,
    describe_difference,
    evaluate,
    full_mode,
    load_digits,
    mean_se,
    needs,
    numerical_gradient_array,
    paired_difference,
    quick_mode,
    rel_error,
    relu_forward,
    replicates,
    softmax_cross_entropy,
    style,
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
# * all randomness comes from the generator `rng` you are given (any correct way of drawing a
#   Bernoulli mask passes: the checks look at statistics, not at particular random numbers);
# * `cache` is yours to design: only your own `dropout_backward` reads it, and no check looks inside;
# * in both modes return a new array and leave `x` as it was (in test mode, a copy with the same
#   values); a `p_drop` outside $[0, 1)$ or an unknown mode is an error (see the docstring's *Raises*).

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
# The uniform numbers, the mask and the output all have the shape (N, D) of `x`: one coin per unit
# *and* per example, so nothing is shared along an axis and nothing is summed. The factor $1/(1-p)$ is a
# single number. The cache holds three things: the (N, D) mask, that factor and the mode.
# </details>

# %% kind="solution"
# reference: dropout_forward

# %% [markdown]
# ### Check your forward pass
#
# These cells run the same checks the grader runs, on your function. A failed case tells you what
# was measured and, when it recognizes a typical mistake, what it looks like. Statistical checks are
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
with needs(dropout_forward="section 2"):
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
with needs(dropout_forward="section 2", dropout_backward="section 3"):
    x_check = 5.0 + 3.0 * rng.standard_normal((6, 9))  # shifted and scaled input
    dout_check = rng.standard_normal(
        (6, 9)
    )  # a random upstream gradient (ones would hide mistakes)
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
with needs(dropout_forward="section 2"):
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
# on only **200** images and keep 500 for validation and the remaining 1,097 as a held-out test split,
# with a network that is far too large for so little data: 64 → 256 → 256 → 10, ReLU, trained with SGD
# and momentum (learning rate 0.02, for every rate). The trainer takes *your* `dropout_forward` and `dropout_backward` as arguments and puts
# dropout after every hidden ReLU.
#
# Effects of one or two points of accuracy are within the noise of a single run, so every rate is
# trained in several **repetitions**, each with its own data split *and* seed (initial weights,
# mini-batch order, masks): two in the default run, five with `FULL=1`. Rates are compared repetition
# by repetition (a paired comparison), the best rate is chosen on validation, and only the chosen one is
# reported on the test split. Accuracies are the mean of the last three evaluations (every 5 epochs),
# which is steadier than the last one alone.

# %% kind="experiment"
with needs(dropout_forward="section 2", dropout_backward="section 3"):
    quick = quick_mode()  # True under nbgrader's own autograde: shorter runs, same code
    FULL = full_mode()  # FULL=1: five repetitions, longer training (about 2 minutes)
    epochs = 30 if quick else (150 if FULL else 80)
    reps = replicates(1 if quick else (5 if FULL else 2))  # (data split, seed) pairs
    rates = [0.0, 0.4] if quick else [0.0, 0.2, 0.4, 0.6, 0.8]
    LAST = 3
    LR = 0.02  # small enough for p_drop = 0.8, which scales the kept units by 5 in every layer
    splits = {split: load_digits(n_train=200, n_val=500, seed=split) for split, _ in reps}

    runs = {}
    for p in rates:
        for split, seed in reps:
            layer = (dropout_forward, dropout_backward, p) if p > 0 else None
            runs[p, split] = train_mlp(
                splits[split],
                [256, 256],
                epochs=epochs,
                lr=LR,
                seed=seed,
                dropout=layer,
                progress=False,
                eval_every=5,
            )

    def measured(p, key):
        """One metric per repetition, averaged over the last evaluations."""
        return np.array([runs[p, split].final(last=LAST)[key] for split, _ in reps])

    def test_acc(p):
        """Accuracy on each repetition's test split (test mode), at the end of training."""
        return np.array(
            [evaluate(runs[p, s], splits[s].X_test, splits[s].y_test)[1] for s, _ in reps]
        )

    rows = []
    for p in rates:
        train_mean = measured(p, "train_acc").mean()
        val_mean, val_se = mean_se(measured(p, "val_acc"))
        se_text = f" ± {val_se:.1%}" if len(reps) > 1 else ""
        rows.append(
            f"| {p:.1f} | {train_mean:.1%} | {measured(p, 'train_loss').mean():.2g} | "
            f"{val_mean:.1%}{se_text} | {train_mean - val_mean:.1%} |"
        )
    display(
        Markdown(
            f"Accuracies over {len(reps)} repetition(s), mean of the last {LAST} evaluations "
            "(± standard error of the mean). Training accuracy and loss are measured in test mode.\n\n"
            "| p_drop | train | training loss | validation | gap (train − validation) |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows)
        )
    )

# %% kind="experiment"
with needs(dropout_forward="section 2", dropout_backward="section 3"):
    fig, (ax_train, ax_val, ax_reps) = plt.subplots(
        1, 3, figsize=(14, 3.8), constrained_layout=True
    )
    first = reps[0][0]
    for i, p in enumerate(rates):
        h = runs[p, first]
        kw = style(i, len(h.epochs))
        # training accuracy sits at 100 % for every rate: its loss tells the runs apart
        ax_train.plot(h.epochs, h.train_loss, label=f"p_drop={p}", **kw)
        ax_val.plot(h.epochs, h.val_acc, label=f"p_drop={p}", **kw)
    ax_train.set(
        yscale="log",
        title=f"training loss, test mode (split {first})",
        xlabel="epoch",
        ylabel="loss (log scale)",
    )
    ax_val.set(title=f"validation accuracy (split {first})", xlabel="epoch")
    ax_val.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    low = min(runs[p, first].val_acc[len(runs[p, first].val_acc) // 3] for p in rates)
    ax_val.set_ylim(max(0.0, low - 0.03), 1.0)
    ax_train.legend(frameon=False, fontsize="small")

    tests = {p: test_acc(p) for p in rates}
    for r_index in range(len(reps)):  # one grey line per repetition: paired
        ax_reps.plot(
            rates,
            [tests[p][r_index] for p in rates],
            color="0.75",
            marker="o",
            zorder=1,
            label="one repetition" if r_index == 0 else None,
        )
    ax_reps.plot(
        rates,
        [tests[p].mean() for p in rates],
        color="black",
        marker="s",
        linewidth=2,
        label="mean",
        zorder=2,
    )
    ax_reps.set(title="test accuracy at the end", xlabel="p_drop", xticks=rates)
    ax_reps.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax_reps.legend(frameon=False)
    plt.show()

# %% kind="experiment"
with needs(dropout_forward="section 2", dropout_backward="section 3"):
    val_means = {p: measured(p, "val_acc").mean() for p in rates}
    chosen = max(rates[1:], key=val_means.get)  # chosen on validation ...
    d = paired_difference(tests[chosen], tests[0.0])  # ... reported on test
    d_val = paired_difference(measured(chosen, "val_acc"), measured(0.0, "val_acc"))
    largest = rates[-1]
    d_largest = paired_difference(tests[largest], tests[chosen])
    base_train = measured(0.0, "train_acc").mean()
    display(
        Markdown(
            f"Without dropout the network fits its 200 training images to **{base_train:.1%}** but "
            f"reaches only **{val_means[0.0]:.1%}** on the validation images: the high variance of "
            f"the slides. The best rate on validation is **p_drop = {chosen}** "
            f"({val_means[chosen]:.1%}; {describe_difference(d_val)} against no dropout, on the "
            "split it was chosen on, so optimistic).\n\n"
            f"On the held-out test images, p_drop = {chosen} scores **{tests[chosen].mean():.1%}** "
            f"against {tests[0.0].mean():.1%} without dropout: **{describe_difference(d)}**.\n\n"
            f"Does a larger rate keep helping? At p_drop = {largest} the test accuracy is "
            f"{tests[largest].mean():.1%} ({describe_difference(d_largest)} against "
            f"p_drop = {chosen}), training accuracy {measured(largest, 'train_acc').mean():.1%} "
            f"and training loss {measured(largest, 'train_loss').mean():.2g} "
            f"(without dropout: {measured(0.0, 'train_loss').mean():.2g}).\n\n"
            "Training accuracy is measured in test mode (all neurons connected)."
            + (
                ""
                if d["resolved"]
                else " This run does not resolve the effect of dropout on the test split: "
                + (
                    "even with five repetitions it is within noise."
                    if FULL
                    else f"the default run has only {len(reps)} repetitions. Run the notebook "
                    "with `FULL=1` (five repetitions, longer training), or read the walkthrough, "
                    "which is built from that run."
                )
            )
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
# every hidden layer's input at test time is on average $1/(1-p)$ times too large. In a ReLU network
# that mostly rescales the logits: ReLU is positively homogeneous ($\max(0, cz) = c\max(0, z)$ for
# $c > 0$), so without biases the scores would be multiplied by a constant and the predicted class
# would not change at all; only the biases, which are not scaled, shift the balance a little. So the
# accuracy barely moves, but the logits are too large: the softmax becomes over-confident, and the loss
# (and any use of the probabilities, i.e. calibration) suffers. Section 7 measures both on your network.
# Inverted dropout moves this factor into training, so the test-time network needs no change.
# ### END SOLUTION

# %% [markdown]
# **Question 2.** Your `dropout_forward` draws a new mask at every call. What would happen to training
# if it drew one mask at the start and reused it for every mini-batch?

# %% [markdown] kind="answer" grade_id="q2_fixed_mask" points=1
# ### BEGIN SOLUTION
# With a fixed mask, the same units would be dropped in every step: training would simply fit a
# smaller network (the units that are always dropped never learn, and the rest can co-adapt as much as
# they like). The regularizing effect comes from training a different thinned network at every step
# with shared weights, which forces each unit to be useful in many contexts. At test time the full,
# weight-scaled network stands in for the average of all these thinned networks; that is only an
# approximation (exact for a single linear layer, and for one softmax layer it gives the normalized
# geometric mean of the thinned networks' predictions), and it also ignores that a unit's input varies
# more during training (with the masks) than at test time: a train/test variance mismatch. With a fixed
# mask none of this averaging happens, and at test time the network would see units switched on that
# it never trained with.
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
# large a rate removes so much capacity at each step that the network underfits. Quote the run: the
# summary of section 5 gives the test accuracy at the largest rate against the best one, and the
# training loss at that rate against the loss without dropout, with the paired difference and whether
# the run resolved it. The best rate is in between, and it depends on the network's size, the amount of
# data and how long one trains (large rates need more epochs).
# ### END SOLUTION

# %% [markdown]
# ## 7. Measured: forgetting the test-time factor
#
# This is question 1 measured (answer it first). A network trained with inverted dropout and weights
# $W$ is the same as one trained *without* the scaling and weights $W/(1-p)$ in every layer after a
# dropout. Forgetting that network's test-time factor $1-p$ is therefore the same as evaluating ours
# with every hidden activation multiplied by $1/(1-p)$. Below, the networks of section 5 are evaluated
# both ways on the test split.

# %% kind="experiment"
with needs(dropout_forward="section 2", dropout_backward="section 3"):

    def test_scores(history, X, factor):
        """Class scores in test mode, every hidden activation multiplied by `factor`."""
        params = history.params
        n_layers = sum(key.startswith("W") for key in params)
        h = X
        for i in range(1, n_layers):
            h = factor * relu_forward(affine_forward(h, params[f"W{i}"], params[f"b{i}"])[0])[0]
        return affine_forward(h, params[f"W{n_layers}"], params[f"b{n_layers}"])[0]

    rows = []
    for p in rates[1:]:
        right, wrong = [], []
        with np.errstate(over="ignore", invalid="ignore"):  # a broken network may overflow
            for split, _ in reps:
                X, y = splits[split].X_test, splits[split].y_test
                for factor, out in ((1.0, right), (1.0 / (1.0 - p), wrong)):
                    scores = test_scores(runs[p, split], X, factor)
                    loss, _ = softmax_cross_entropy(scores, y)
                    top = np.exp(scores - scores.max(axis=1, keepdims=True))
                    top = (top / top.sum(axis=1, keepdims=True)).max(axis=1)
                    out.append((np.mean(scores.argmax(axis=1) == y), loss, top.mean()))
        right, wrong = np.mean(right, axis=0), np.mean(wrong, axis=0)
        rows.append(
            f"| {p} | {right[0]:.1%} → {wrong[0]:.1%} | {right[1]:.3f} → {wrong[1]:.3f} | "
            f"{right[2]:.1%} → {wrong[2]:.1%} |"
        )
    display(
        Markdown(
            f"Test split, mean over {len(reps)} repetition(s); each cell reads *right factor → "
            "forgotten factor*.\n\n"
            "| p_drop | accuracy | loss | mean confidence (largest probability) |\n"
            "|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            "The accuracy hardly moves, while the loss and the confidence change: the forgotten "
            "factor mostly rescales the logits (question 1)."
        )
    )

# %% [markdown]
# ## 8. Before you submit
#
# Run every public check at once. From a terminal you can do the same with
# `python -m grader check 02_dropout.ipynb`.

# %% kind="experiment"
check_all("02_dropout")
