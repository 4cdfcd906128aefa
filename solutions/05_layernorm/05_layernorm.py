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
# # 05 · Layer normalization
#
# *Part of the course kit for the lecture "DNN Discussion 2" (speaker: Isaac). Notebook 03 built batch
# normalization and watched it fail with mini-batches of two examples; this notebook builds the layer
# that was invented for exactly that situation.*
#
# Batch normalization (BN) standardizes every feature with statistics taken **over the mini-batch**. That
# is its strength (the statistics of many examples are stable) and its weakness: with two examples per
# batch the statistics are meaningless, an example's output depends on which other examples share its
# batch, and at test time the layer needs running averages that stand in for the batch it no longer
# has. **Layer normalization** (LN; Ba, Kiros & Hinton, 2016) takes the statistics over the **features
# of one example** instead. CS231n's assignment 2 and *Dive into Deep Learning* (section 8.5) both
# teach it next to BN, and it is the normalization inside every Transformer.
#
# In this notebook you will
#
# 1. write the forward pass of layer normalization and see what changes from BN, and what does not;
# 2. write its backward pass (BN's closed form, with one axis exchanged, and one that is not);
# 3. train the same network with BN, with LN and with neither, for mini-batches of 2 to 128 examples,
#    over several data splits and seeds, and measure which differences the run can resolve.
#
# Run the cells from top to bottom. Cells that say `YOUR CODE HERE` are yours; every other cell is given.
#
# A check cell (`check("...")`) shows a table of its cases and ends with the points you earned
# (`0.0` until a case passes); it never stops the notebook, so Run All always reaches the end.

# %% kind="setup"
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from matplotlib.ticker import NullFormatter, PercentFormatter

from grader.notebook import check, check_all, check_implemented  # noqa: F401 (hidden-test cells)
from grader.toolkit import (
    describe_difference,
    evaluate,
    full_mode,
    load_digits,
    needs,
    numerical_gradient_array,
    paired_difference,
    quick_mode,
    rel_error,
    replicates,
    style,
    train_mlp,
)
from grader.toolkit.stats import t975

rng = np.random.default_rng(2025)
quick = quick_mode()  # True under nbgrader's own autograde: shorter runs, same code

# %% [markdown]
# ## 1. One axis makes the difference
#
# As in notebook 03, a hidden layer's pre-activations for a mini-batch form a matrix $x$ of shape
# $(N, D)$: one **row per example**, one **column per feature**. BN takes the mean and variance of each
# *column* (over the $N$ examples, `axis=0`). LN takes them over each *row* (over the $D$ features of
# one example, `axis=1`). For example $i$,
#
# $$ \mu_i = \frac{1}{D} \sum_{j=1}^{D} x_{ij}, \qquad \sigma_i^2 = \frac{1}{D} \sum_{j=1}^{D} (x_{ij} - \mu_i)^2, $$
#
# $$ \hat x_{ij} = \frac{x_{ij} - \mu_i}{\sqrt{\sigma_i^2 + \epsilon}}, \qquad \mathrm{out}_{ij} = \gamma_j\, \hat x_{ij} + \beta_j . $$
#
# So $\mu$ and $\sigma^2$ have shape $(N, 1)$ now (keep the dimension, `keepdims=True`, so that they
# broadcast against the rows), while $\gamma$ and $\beta$ are still **one per feature**, shape $(D,)$,
# exactly as in BN: the learned scale and shift belong to a hidden unit, not to an example.
#
# What follows from the exchanged axis:
#
# * **Per example.** An example's output depends only on that example. Put it in a batch of 128 or
#   alone: the same numbers come out.
# * **No running averages.** BN needed them because at test time there is no batch to take statistics
#   from. LN always has its example, so it keeps nothing between calls: `ln_param` only holds $\epsilon$.
# * **No train/test gap.** Training and test mode are the same computation, so there is no `mode`, and
#   the classic BN bug of notebook 03 (predicting one example at a time in training mode) cannot happen.
# * **The same details as in BN.** The variance is the **biased** one (divide by $D$, `ddof=0`), and
#   $\epsilon$ goes **inside** the square root, with this course's default $\epsilon = 10^{-3}$ when
#   `ln_param` has no `"eps"` (PyTorch's `nn.LayerNorm` uses $10^{-5}$).
#
# What LN gives up is the meaning of a feature's scale *across examples*: it rescales every example on
# its own, so an example whose hidden units are all weakly active looks like one where they are all
# strongly active. (With $D = 1$ it would output $\beta$ for everything; it needs enough features.)

# %% [markdown]
# ## 2. Exercise: the forward pass
#
# Implement `layernorm_forward`. The docstring is the full specification. Keep in `cache` whatever your
# backward pass will need; the checks never look inside it.
#
# **Stuck?** Open the hints one at a time; each gives a little more away.
#
# <details><summary>Hint 1 — the idea</summary>
#
# Standardize each example (row) with its own mean and standard deviation over its features, then scale
# and shift every feature (column) with $\gamma$ and $\beta$.
# </details>
#
# <details><summary>Hint 2 — the equation</summary>
#
# $\mu_i = \frac{1}{D}\sum_j x_{ij}$, $\sigma_i^2 = \frac{1}{D}\sum_j (x_{ij}-\mu_i)^2$,
# $\hat x = (x-\mu)/\sqrt{\sigma^2+\epsilon}$, $\text{out} = \gamma \hat x + \beta$.
# </details>
#
# <details><summary>Hint 3 — shapes</summary>
#
# Reduce over `axis=1` and keep the dimension: `mu` and `var` have shape (N, 1) and broadcast against
# x of shape (N, D); `gamma` and `beta`, of shape (D,), broadcast along the rows. Read ε from
# `ln_param`, falling back to 1e-3 when the key is missing.
# </details>

# %% kind="solution"
# reference: layernorm_forward

# %% [markdown]
# ### Check your forward pass
#
# Every case uses a random $\gamma$ with mixed signs, $\beta \neq 0$, examples with their own shift and
# scale, and a few *quiet* examples whose features vary about as little as $\sqrt{\epsilon}$ (so a
# misplaced or wrong $\epsilon$ shows). A failed case says what was measured and, when it recognizes a
# typical mistake, names it.

# %% kind="check"
check("ln_forward")

# %% [markdown]
# Now the first claim of section 1, on a batch of four digits' worth of random pre-activations: the
# output for example 1 when it shares a batch with three others, and when it is alone. The same for a
# batch-norm layer (written here in two lines, with batch statistics, as in training mode).

# %% kind="experiment"
with needs(layernorm_forward="section 2"):
    x_demo = rng.normal(2.0, 3.0, size=(4, 6))
    gamma_demo, beta_demo = rng.uniform(0.5, 2.0, 6), rng.uniform(-1.0, 1.0, 6)

    def batchnorm_train(x):
        """Batch norm with the batch's own statistics (training mode), gamma and beta as above."""
        return gamma_demo * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-3) + beta_demo

    ln_batch = np.asarray(layernorm_forward(x_demo, gamma_demo, beta_demo, {})[0])
    ln_alone = np.asarray(layernorm_forward(x_demo[:1], gamma_demo, beta_demo, {})[0])
    bn_batch, bn_pair = batchnorm_train(x_demo), batchnorm_train(x_demo[:2])
    display(
        Markdown(
            "| example 1, first three features | in a batch of 4 | in a batch of 2 | alone |\n|---|---|---|---|\n"
            f"| layer norm | {np.array2string(ln_batch[0, :3], precision=3)} | "
            f"{np.array2string(np.asarray(layernorm_forward(x_demo[:2], gamma_demo, beta_demo, {})[0])[0, :3], precision=3)} | "
            f"{np.array2string(ln_alone[0, :3], precision=3)} |\n"
            f"| batch norm (train mode) | {np.array2string(bn_batch[0, :3], precision=3)} | "
            f"{np.array2string(bn_pair[0, :3], precision=3)} | "
            f"{np.array2string(batchnorm_train(x_demo[:1])[0, :3], precision=3)} (= β) |\n\n"
            f"Layer norm gives example 1 the same output in every batch (largest difference "
            f"{np.abs(ln_batch[0] - ln_alone[0]).max():.1e}). Batch norm's output for the same example "
            "changes with its company, and alone it is just β: the information is gone."
        )
    )

# %% [markdown]
# ## 3. Exercise: the backward pass
#
# LN's computation graph is BN's (notebook 03, section 5) with the statistics taken along the rows:
# every node keeps its local derivative, and only the sums that belong to $\mu$ and $\sigma^2$ now run
# over the features of one example. With $g = \gamma\,\mathrm{dout}$ the gradient reaching $\hat x$,
# BN's closed form becomes
#
# $$ \frac{\partial L}{\partial x_{ij}} = \frac{1}{\sqrt{\sigma_i^2 + \epsilon}} \left( g_{ij} - \frac{1}{D}\sum_k g_{ik} - \hat x_{ij}\, \frac{1}{D} \sum_k g_{ik}\, \hat x_{ik} \right): $$
#
# the second term is the path through the mean $\mu_i$, the third the path through the variance
# $\sigma_i^2$. The parameters did **not** change axis: $\gamma_j$ and $\beta_j$ are shared by all $N$
# examples, so, as in BN,
#
# $$ \frac{\partial L}{\partial \gamma_j} = \sum_{i=1}^{N} \mathrm{dout}_{ij}\, \hat x_{ij}, \qquad \frac{\partial L}{\partial \beta_j} = \sum_{i=1}^{N} \mathrm{dout}_{ij} . $$
#
# Copying BN's backward and changing *every* `axis=0` to `axis=1` is therefore a mistake: it is right
# for the two row means of $dx$ and wrong for $d\gamma$ and $d\beta$.
#
# <details><summary>Hint 1 — the idea</summary>
#
# Reuse what you cached: $\hat x$, $1/\sqrt{\sigma^2+\epsilon}$ and $\gamma$. Compute $g$, then its row
# mean and the row mean of $g \hat x$.
# </details>
#
# <details><summary>Hint 2 — shapes</summary>
#
# The two row means have shape (N, 1) (`keepdims=True`); $d\gamma$ and $d\beta$ have shape (D,), sums
# over `axis=0`.
# </details>

# %% kind="solution"
# reference: layernorm_backward

# %% [markdown]
# ### Check your backward pass
#
# The check calls your own `layernorm_forward`, then your `layernorm_backward` on the cache it returned,
# and compares $dx$, $d\gamma$, $d\beta$ with the reference. One case is square ($N = D$), so that a sum
# over the wrong axis still has the right shape and can be recognized. **Errors carried forward:** if your
# forward pass has a catalogued mistake (it costs the forward's points above), a backward pass that is
# exactly right *for your forward* keeps its points here, and the message says so.

# %% kind="check"
check("ln_backward")

# %% [markdown]
# The check compares with the reference; here is the independent evidence, finite differences of your own
# forward pass ($dx$, $d\gamma$, $d\beta$ of $L = \sum \mathrm{out} \cdot \mathrm{dout}$):

# %% kind="experiment"
with needs(layernorm_forward="section 2", layernorm_backward="section 3"):
    x_fd, dout_fd = rng.normal(1.0, 2.0, (5, 7)), rng.standard_normal((5, 7))
    gamma_fd, beta_fd = rng.normal(size=7), rng.normal(size=7)
    dx, dgamma, dbeta = layernorm_backward(
        dout_fd, layernorm_forward(x_fd, gamma_fd, beta_fd, {"eps": 1e-3})[1]
    )
    errors = {
        "dx": rel_error(
            dx,
            numerical_gradient_array(
                lambda v: layernorm_forward(v, gamma_fd, beta_fd, {"eps": 1e-3})[0],
                x_fd.copy(),
                dout_fd,
            ),
        ),
        "dgamma": rel_error(
            dgamma,
            numerical_gradient_array(
                lambda v: layernorm_forward(x_fd, v, beta_fd, {"eps": 1e-3})[0],
                gamma_fd.copy(),
                dout_fd,
            ),
        ),
        "dbeta": rel_error(
            dbeta,
            numerical_gradient_array(
                lambda v: layernorm_forward(x_fd, gamma_fd, v, {"eps": 1e-3})[0],
                beta_fd.copy(),
                dout_fd,
            ),
        ),
    }
    display(
        Markdown(
            "Relative error against centred finite differences: "
            + ", ".join(f"{name} **{err:.1e}**" for name, err in errors.items())
            + " (below about 1e-7 means the gradient is right; round-off of the finite differences "
            "limits how small it gets)."
        )
    )

# %% [markdown]
# ### Hidden checks
#
# The grader also runs both functions on inputs you have not seen (other shapes and $\epsilon$ values).
# Nothing to do here: if the visible checks pass, these should too.

# %% kind="check"
check("ln_hidden_forward")

# %% kind="check"
check("ln_hidden_backward")

# %% [markdown]
# ## 4. Experiment: BN, LN or neither, from batches of 2 to 128
#
# A network like notebook 03's: 64 pixels → three hidden layers of 100 ReLU units → 10 classes, trained
# for 5 epochs with SGD and momentum on 300 digits, validated on 500, tested on the remaining 997. Every hidden
# layer is affine → [norm] → ReLU, with your LN, with BN, or with no normalization. The trainer takes any
# layer pair with BN's signature, and LN's signature is compatible: LN ignores the `mode` and running
# statistics the trainer puts into its parameter dictionary.
#
# Where does BN come from, without notebook 03? From your LN: batch norm of $x$ is layer norm of its
# **transpose** $x^\top$ (whose rows are the features), followed by BN's per-feature $\gamma$ and $\beta$.
# The cell below builds BN that way, with the running averages of notebook 03 for test mode, and uses
# your `layernorm_backward` for its gradient too.
#
# The rules of the earlier notebooks hold: each repetition is a different **data split and seed**,
# settings are chosen on the **validation** images, results are reported on the **test** images, and
# methods are compared by **paired** differences (same split and seed) with their standard error. The
# learning rate grows with the batch size (smaller batches take more, noisier steps); the default run
# uses the rule below, and `FULL=1` also tries half and twice each rate and keeps, per method and batch
# size, the one with the best mean validation accuracy.

# %% kind="experiment"
with needs(layernorm_forward="section 2", layernorm_backward="section 3"):

    def batchnorm_forward(x, gamma, beta, bn_param):
        """Batch norm (notebook 03's contract) built from layernorm_forward on the transpose."""
        eps, m = bn_param.get("eps", 1e-3), bn_param.get("momentum", 0.9)
        if bn_param["mode"] == "test":
            xhat = (x - bn_param["running_mean"]) / np.sqrt(bn_param["running_var"] + eps)
            return gamma * xhat + beta, None
        bn_param["running_mean"] = m * bn_param["running_mean"] + (1 - m) * x.mean(axis=0)
        bn_param["running_var"] = m * bn_param["running_var"] + (1 - m) * x.var(axis=0)
        n = x.shape[0]
        xhat_t, cache = layernorm_forward(x.T, np.ones(n), np.zeros(n), {"eps": eps})
        xhat = np.asarray(xhat_t).T
        return gamma * xhat + beta, (cache, xhat, gamma)

    def batchnorm_backward(dout, cache):
        """Its gradient: the layer-norm backward of the transpose, then BN's dgamma and dbeta."""
        ln_cache, xhat, gamma = cache
        dx_t, _, _ = layernorm_backward((dout * gamma).T, ln_cache)
        return np.asarray(dx_t).T, (dout * xhat).sum(axis=0), dout.sum(axis=0)

    # FULL=1: five repetitions, more batch sizes, the learning rate chosen on validation
    FULL = full_mode()
    reps = replicates(1 if quick else (5 if FULL else 3))  # (data split, seed) pairs
    splits = {split: load_digits(n_train=300, n_val=500, seed=split) for split, _ in reps}
    HIDDEN, EPOCHS = [100] * 3, 5
    RULE = {2: 0.005, 4: 0.01, 8: 0.02, 32: 0.05, 128: 0.1}  # learning rate by batch size
    batch_sizes = [2, 128] if quick else ([2, 4, 8, 32, 128] if FULL else [2, 8, 32, 128])
    factors = (0.5, 1.0, 2.0) if FULL else (1.0,)
    methods = {
        "none": None,
        "batch norm": (batchnorm_forward, batchnorm_backward),
        "layer norm": (layernorm_forward, layernorm_backward),
    }

    started = time.perf_counter()
    val, test = {}, {}  # (method, batch size, factor, split) -> accuracy
    for name, layer in methods.items():
        for n_batch in batch_sizes:
            for factor in factors:
                for split, seed in reps:
                    h = train_mlp(
                        splits[split],
                        HIDDEN,
                        epochs=EPOCHS,
                        batch_size=n_batch,
                        lr=RULE[n_batch] * factor,
                        seed=seed,
                        batchnorm=layer,
                        progress=False,
                        eval_every=EPOCHS,
                    )
                    key = name, n_batch, factor, split
                    val[key] = h.final()["val_acc"]
                    kw = {} if layer is None else {"batchnorm_forward": layer[0]}
                    test[key] = evaluate(h, splits[split].X_test, splits[split].y_test, **kw)[1]
    seconds = time.perf_counter() - started

    chosen = {  # per method and batch size: the factor with the best mean validation accuracy
        (name, b): max(factors, key=lambda f: np.mean([val[name, b, f, s] for s, _ in reps]))
        for name in methods
        for b in batch_sizes
    }
    acc = {  # test accuracy at the chosen learning rate, one value per repetition
        (name, b): np.array([test[name, b, chosen[name, b], s] for s, _ in reps])
        for name in methods
        for b in batch_sizes
    }

    fig, ax = plt.subplots(figsize=(7.5, 3.8), constrained_layout=True)
    for i, name in enumerate(methods):
        kw = style(i)
        values = np.array([acc[name, b] for b in batch_sizes])
        ax.plot(
            batch_sizes,
            values.mean(axis=1),
            label=name,
            color=kw["color"],
            linestyle=kw["linestyle"],
            marker=kw["marker"],
            linewidth=2,
        )
        for r in range(values.shape[1]):  # every repetition as a small dot
            ax.plot(batch_sizes, values[:, r], linestyle="none", marker=".", color=kw["color"])
    ax.set_xscale("log")
    ax.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(
        xlabel="mini-batch size N",
        ylabel="test accuracy",
        title=f"after {EPOCHS} epochs: mean (line) and each of {len(reps)} repetition(s) (dots)",
        ylim=(0, 1),
    )
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False)
    plt.show()

# %% [markdown]
# The same results as numbers: the mean test accuracy of each method, and the two comparisons that
# matter, each paired over the repetitions. The plot shows each paired difference with its 95 %
# interval: an interval that crosses the zero line is within noise.

# %% kind="experiment"
with needs(layernorm_forward="section 2", layernorm_backward="section 3"):
    rows, verdicts = [], {}
    for b in batch_sizes:
        d_bn = paired_difference(acc["layer norm", b], acc["batch norm", b])
        d_none = paired_difference(acc["layer norm", b], acc["none", b])
        verdicts[b] = d_bn, d_none
        lrs = " / ".join(f"{RULE[b] * chosen[name, b]:g}" for name in methods)
        rows.append(
            f"| {b} | {lrs} | "
            + " | ".join(f"{acc[name, b].mean():.1%}" for name in methods)
            + f" | {describe_difference(d_bn)} | {describe_difference(d_none)} |"
        )
    fig, ax = plt.subplots(figsize=(7.5, 3.4), constrained_layout=True)
    for i, (label, which) in enumerate([("LN − BN", 0), ("LN − none", 1)]):
        kw = style(i + 1)
        d = [verdicts[b][which] for b in batch_sizes]
        half = [t975(x["n"]) * x["se"] if np.isfinite(x["se"]) else 0.0 for x in d]
        ax.errorbar(
            np.array(batch_sizes) * (0.93 if which == 0 else 1.07),  # side by side
            [100 * x["mean"] for x in d],
            yerr=100 * np.array(half),
            label=label,
            color=kw["color"],
            marker=kw["marker"],
            linestyle="none",
            capsize=4,
        )
    ax.axhline(0.0, color="0.5", lw=1)
    ax.set_xscale("log")
    ax.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(
        xlabel="mini-batch size N",
        ylabel="test accuracy difference (points)",
        title="paired differences: mean and 95 % interval (Student's t)",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False)
    plt.show()

    resolved_bn = [b for b in batch_sizes if verdicts[b][0]["resolved"]]
    unresolved_none = [b for b in batch_sizes if not verdicts[b][1]["resolved"]]
    small, large = batch_sizes[0], batch_sizes[-1]
    display(
        Markdown(
            f"{len(reps)} repetition(s), {EPOCHS} epochs, {len(val)} "
            f"training runs in {seconds:.1f} s; learning rates "
            + (
                "chosen on validation from ½×, 1× and 2× the rule"
                if len(factors) > 1
                else "from the rule"
            )
            + ".\n\n| N | learning rate (none / BN / LN) | none | batch norm | layer norm | LN − BN (test) | LN − none (test) |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            f"At N = {small}, batch norm reaches **{acc['batch norm', small].mean():.1%}** and layer norm "
            f"**{acc['layer norm', small].mean():.1%}**: "
            + (
                "the gap is resolved by this run. "
                if verdicts[small][0]["resolved"]
                else "this run does not resolve the gap. "
            )
            + "LN − BN is resolved at N = "
            + (
                ", ".join(
                    f"{b} ({'LN' if verdicts[b][0]['mean'] > 0 else 'BN'} higher)"
                    for b in resolved_bn
                )
                or "no batch size"
            )
            + f"; at N = {large} it is {describe_difference(verdicts[large][0])}. "
            + "LN against no normalization is not resolved at N = "
            + (", ".join(map(str, unresolved_none)) or "no batch size")
            + " (within noise, or too few repetitions to judge)."
            + (
                " So in this run LN's clearest gain is that it does not break when the batch is "
                "small, as BN does; with large batches the two are close."
                if verdicts[small][0]["resolved"]
                and verdicts[small][0]["mean"] > 0
                and not (verdicts[large][0]["resolved"] and abs(verdicts[large][0]["mean"]) > 0.02)
                else ""
            )
        )
    )

# %% [markdown]
# ## 5. Questions
#
# Answer in a few sentences in the cells below; these are graded by hand.
#
# **Question 1.** Batch norm needs running averages and a `mode`; layer norm needs neither. Explain why,
# and say what a BN network and an LN network each compute when they classify a single image at test time.

# %% [markdown] kind="answer" grade_id="q1_no_running_stats" points=1
# ### BEGIN SOLUTION
# BN's statistics are taken over the batch; at test time there may be a single image, and its prediction
# must not depend on other images, so BN replaces the batch statistics by fixed running averages collected
# during training, which requires a separate test mode. LN's statistics are taken over the features of the
# example itself, which exist whatever the batch: training and test are the same computation, and nothing
# needs to be remembered between calls. For a single test image, the BN network normalizes every hidden
# unit with the running mean and variance of that unit (a fixed affine map per unit); the LN network
# normalizes the image's hidden vector with its own mean and variance over the units, exactly as it did in
# training.
# ### END SOLUTION

# %% [markdown]
# **Question 2.** Your backward pass takes the row means of $g$ and $g\hat x$ over `axis=1`, but sums
# $d\gamma$ and $d\beta$ over `axis=0`. Why the different axes? What does an example whose $D$ features
# are all equal produce in the forward pass, and what gradient $dx$ does it receive?

# %% [markdown] kind="answer" grade_id="q2_axes_and_constant_rows" points=1
# ### BEGIN SOLUTION
# The statistics $\mu_i, \sigma_i^2$ belong to one example and depend on that example's features, so the
# gradient through them is a sum over the features (axis 1). The parameters $\gamma_j, \beta_j$ belong to
# one feature and are shared by all examples (broadcast over the rows), so their gradients collect every
# example's contribution: a sum over axis 0, shape (D,). An example with all features equal has $x - \mu =
# 0$ and $\sigma^2 = 0$, so $\hat x = 0$ (thanks to $\epsilon$ no division by zero) and the output is
# $\beta$; its $dx = (g - \bar g)/\sqrt{\epsilon}$: only the part of $g$ that would make the features
# differ gets through, and it is amplified by $1/\sqrt\epsilon \approx 32$.
# ### END SOLUTION

# %% [markdown]
# **Question 3.** Read the table of section 4. At which batch sizes does the choice between BN and LN
# matter in this run, and which differences are within noise? Would you conclude from it that LN is
# "better" than BN in general?

# %% [markdown] kind="answer" grade_id="q3_read_the_experiment" points=1
# ### BEGIN SOLUTION
# A good answer quotes the run's numbers: at N = 2 batch norm collapses (far below its accuracy at larger
# batches) while layer norm is about as good as at any batch size, a gap resolved by the paired differences;
# at the large batch sizes the LN − BN difference is small and the run says whether it is resolved or
# within noise, and LN against no normalization is mostly within noise. The conclusion is narrow: for
# small batches LN is the safe choice, because it does not depend on the batch; for large batches this
# small experiment (one data set, a shallow network, 5 epochs, a few repetitions) cannot rank them, and
# BN's claimed benefits (larger learning rates, regularizing batch noise) are not what it tests.
# ### END SOLUTION

# %% [markdown]
# ## 6. Before you submit
#
# Run every public check at once. From a terminal you can do the same with
# `python -m grader check 05_layernorm.ipynb`.

# %% kind="experiment"
check_all("05_layernorm")
