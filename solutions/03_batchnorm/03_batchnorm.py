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
# # 03 · Batch normalization
#
# *Part of the course kit for the lecture "DNN Discussion 2" (speaker: Isaac). Notebook 01 is about
# norms and weight penalties, 02 about dropout.*
#
# The last part of the slides puts a new layer into every hidden layer of the network. As printed on
# the slide:
#
# $$ \sigma(\mathrm{BN}(W^L \cdots \sigma(\mathrm{BN}(W^2\, \sigma(\mathrm{BN}(W^1 x + b^1))) + b^2) \cdots + b^L)). $$
#
# Read as a recipe, that line has two slips (notebook 04 lists them with a third): the bias $b^2$ landed
# outside the batch norm, where every layer should read $\mathrm{BN}(W^l h + b^l)$; and the last layer,
# which produces the class scores for the softmax, has no batch norm and no $\sigma$. Corrected, the
# network is
#
# $$ W^L\, \sigma(\mathrm{BN}(\cdots \sigma(\mathrm{BN}(W^2\, \sigma(\mathrm{BN}(W^1 x + b^1)) + b^2)) \cdots)) + b^L . $$
#
# The slide makes three claims for the layer: batch normalization **accelerates training**, makes
# training **less sensitive to the initialization**, and **improves regularization**. Here you will
# build the layer yourself and then put all three claims (and a few surprises) to the test on real
# data.
#
# In this notebook you will
#
# 1. write the forward pass of batch normalization, in training mode (batch statistics) and in test
#    mode (running averages);
# 2. draw its computation graph and write the backward pass node by node;
# 3. collapse that backward pass into a short closed form, and time both;
# 4. train a deep-ish network on handwritten digits with and without your layer: speed of training,
#    sensitivity to the initial weights, the distributions inside the network, and what small
#    mini-batches do to it.
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
from matplotlib.ticker import MaxNLocator, NullFormatter, PercentFormatter

from grader.notebook import check, check_all, check_implemented  # noqa: F401 (hidden-test cells)
from grader.toolkit import (
    PALETTE,
    affine_forward,
    describe_difference,
    evaluate,
    full_mode,
    load_digits,
    needs,
    numerical_gradient_array,
    paired_difference,
    plot_curves,
    quick_mode,
    rel_error,
    relu_forward,
    replicates,
    style,
    train_mlp,
)

rng = np.random.default_rng(2024)
quick = quick_mode()  # True under nbgrader's own autograde: shorter runs, same code

# %% [markdown]
# ## 1. The layer in training mode
#
# Take one hidden layer's pre-activations for a mini-batch, $h = W x + b$, and stack them as a matrix
# $x$ of shape $(N, D)$: one **row per example**, one **column per feature** (hidden unit). Batch
# normalization treats every column on its own. For feature $j$ it computes the mean and the variance
# of that feature **over the mini-batch**,
#
# $$ \mu_j = \frac{1}{N} \sum_{i=1}^{N} x_{ij}, \qquad \sigma_j^2 = \frac{1}{N} \sum_{i=1}^{N} (x_{ij} - \mu_j)^2, $$
#
# standardizes the feature and then gives it a learnable scale $\gamma_j$ and shift $\beta_j$:
#
# $$ \hat x_{ij} = \frac{x_{ij} - \mu_j}{\sqrt{\sigma_j^2 + \epsilon}}, \qquad \mathrm{out}_{ij} = \gamma_j\, \hat x_{ij} + \beta_j . $$
#
# A few details matter, and each one is a classic bug:
#
# * the statistics are taken over the **batch**, `axis=0`, so $\mu$, $\sigma^2$, $\gamma$ and $\beta$
#   all have shape $(D,)$. Taking them over `axis=1` (over the features of one example) is a different
#   layer, *layer normalization*;
# * $\sigma_j^2$ divides by $N$: it is the **biased** variance of the batch (NumPy's default, `ddof=0`),
#   not the "sample variance" with $N-1$;
# * $\epsilon$ goes **inside** the square root. It keeps the division safe when a feature hardly varies
#   in the batch, and the slides' usual value is $\epsilon = 0.001$ (PyTorch's default is $10^{-5}$; in
#   this course the default is the slides' $10^{-3}$).
#
# **Two corrections to the slides.** The slides describe BN as a "linear transform to have zero mean and
# unit variance" with $\gamma = 1$, $\beta = 0$ "usually".
#
# 1. $\gamma = 1$ and $\beta = 0$ are only the *starting* values: both are learned by gradient descent
#    like the weights, so the network can give each feature whatever mean and spread suits it (even
#    undo the normalization, with $\gamma_j \approx \sigma_j$ and $\beta_j \approx \mu_j$).
# 2. Zero mean and unit variance describe $\hat x$, and only approximately: per feature, $\hat x$ has
#    mean $0$ and variance $\sigma^2 / (\sigma^2 + \epsilon)$, which is visibly below $1$ when $\sigma^2$ is
#    not much larger than $\epsilon$. The output has mean $\beta$ and standard deviation
#    $|\gamma|\,\sigma / \sqrt{\sigma^2 + \epsilon}$, not $|\gamma|$. And "linear" only holds once the batch
#    is fixed: $\mu$ and $\sigma$ are themselves functions of the inputs, which is exactly what makes the
#    backward pass interesting.
#
# ## 2. The layer at test time
#
# After training we want to classify one image at a time, and the prediction for an image should not
# depend on which other images happen to share its batch. So at test time BN uses fixed statistics:
# **running averages** of the batch statistics, collected while training. After every training batch,
#
# $$ \text{running\_mean} \leftarrow m \cdot \text{running\_mean} + (1-m)\,\mu_B, \qquad
#    \text{running\_var} \leftarrow m \cdot \text{running\_var} + (1-m)\,\sigma_B^2, $$
#
# with **momentum** $m = 0.9$ by default: the old average keeps 90 % of its weight and each new batch
# adds 10 %, so the average forgets old batches geometrically (after $k$ more batches a batch's weight
# has shrunk by $m^k$). They start at mean $0$ and variance $1$. In test mode the layer computes
#
# $$ \mathrm{out} = \gamma\, \frac{x - \text{running\_mean}}{\sqrt{\text{running\_var} + \epsilon}} + \beta , $$
#
# which, for a trained network, is a fixed affine map per feature, and it **only reads** the running
# statistics: evaluating the network must never change them.
#
# The slides give $\epsilon$ ("usually 0.001") but say nothing about momentum or running statistics, so
# this course follows CS231n's assignment for those, with the slides' $\epsilon$:
#
# | convention | this course | CS231n assignment 2 | PyTorch `nn.BatchNorm1d` | Keras `BatchNormalization` |
# |---|---|---|---|---|
# | meaning of momentum | weight of the **old** average: `running = m*running + (1-m)*batch` | like ours | weight of the **new** batch: `running = (1-m)*running + m*batch` | like ours |
# | default momentum | $m = 0.9$ | $0.9$ | $0.1$ (the same average as our $0.9$) | $0.99$ |
# | default $\epsilon$ | $10^{-3}$ (the slides) | $10^{-5}$ | $10^{-5}$ | $10^{-3}$ |
# | variance used to normalize a training batch | biased ($\div N$) | biased ($\div N$) | biased ($\div N$) | biased ($\div N$) |
# | variance averaged into `running_var` | the same biased one | the biased one | the **unbiased** one ($\div (N-1)$) | the biased one |
#
# So PyTorch's `momentum=0.1` is our `momentum=0.9`, and in its `running_var` each batch's
# contribution is larger by the factor $N/(N-1)$. Mixing these conventions up is easy, and the checks
# below can tell each mix-up apart.
#
# ## 3. Why the bias $b$ before BN is redundant
#
# The slides keep the bias: $\mathrm{BN}(W x + b)$. But adding the same $b_j$ to every example shifts the
# batch mean by exactly $b_j$ and leaves the variance alone, so
#
# $$ x_{ij} + b_j - (\mu_j + b_j) = x_{ij} - \mu_j \quad\Longrightarrow\quad \mathrm{BN}(Wx + b) = \mathrm{BN}(Wx). $$
#
# Whatever $b$ is, BN subtracts it again; the shift that $b$ was meant to provide is now the job of
# $\beta$. In practice the bias of a layer followed by BN is simply left out (PyTorch:
# `nn.Linear(..., bias=False)`). Our trainer keeps it for simplicity; you will see below that its
# gradient is zero, so it never moves.

# %% [markdown]
# ## 4. Exercise: the forward pass
#
# Implement `batchnorm_forward`. The docstring is the full specification. Tips:
#
# * read `eps` and `momentum` from `bn_param` with the defaults $10^{-3}$ and $0.9$
#   (`bn_param.get("eps", 1e-3)`), and start the running statistics at zeros and ones if they are
#   missing;
# * in training mode, store the updated running statistics **back into `bn_param`**: rebinding a local
#   variable does not change the dictionary;
# * in test mode, use the running statistics and leave `bn_param` exactly as it was;
# * keep in `cache` whatever your backward passes will need (the nodes of the computation graph of
#   section 5 are a good choice). The checks never look inside your cache.

# %% [markdown]
# **Stuck?** Open the hints one at a time; each gives a little more away.
#
# <details><summary>Hint 1 — the idea</summary>
#
# In train mode, standardize each feature (column) with the statistics of this mini-batch, then
# scale and shift; update the running averages. In test mode use the running averages and change
# nothing.
# </details>
#
# <details><summary>Hint 2 — the equation</summary>
#
# $\mu = \frac{1}{N}\sum_n x_n$, $\sigma^2 = \frac{1}{N}\sum_n (x_n-\mu)^2$, $\hat x = (x-\mu)/\sqrt{\sigma^2+\epsilon}$ and $\text{out} = \gamma \hat x + \beta$.
# Running statistics, with $m$ the momentum: $r \leftarrow m\,r + (1-m)\,b$ for the batch's $b$.
# </details>
#
# <details><summary>Hint 3 — shapes</summary>
#
# Reduce over `axis=0` (examples): `mu` and `var` have shape (D,) and broadcast against x of
# shape (N, D). Read ε, the momentum and the running statistics from `bn_param`, falling back to
# the docstring's defaults for a missing key, and store the updated running statistics back into
# that same dictionary, in train mode only.
# </details>

# %% kind="solution"
# reference: batchnorm_forward

# %% [markdown]
# ### Check your forward pass
#
# These cells run the grader's checks on your function. Every case uses a random $\gamma \neq 1$,
# $\beta \neq 0$, inputs that are shifted and scaled, and a few features whose variance is about as
# small as $\epsilon$ (so a misplaced or wrong $\epsilon$ shows). A failed case says what was measured
# and, when it recognizes a typical mistake, names it.

# %% kind="check"
check("bn_forward_train")

# %% kind="check"
check("bn_forward_defaults")

# %% kind="check"
check("bn_running_stats")

# %% kind="check"
check("bn_test_mode")

# %% [markdown]
# Let us look at the statement of section 1 on a batch with one ordinary feature and one *quiet*
# feature, whose batch variance is about as small as $\epsilon$.

# %% kind="experiment"
with needs(batchnorm_forward="section 4"):
    x_demo = np.column_stack(
        [5.0 + 3.0 * rng.standard_normal(64), 0.2 + 0.03 * rng.standard_normal(64)]
    )
    gamma_demo, beta_demo = np.array([1.5, 1.5]), np.array([0.5, -1.0])
    out_demo, _ = batchnorm_forward(x_demo, gamma_demo, beta_demo, {"mode": "train"})
    sigma_demo = x_demo.std(axis=0)
    predicted = np.abs(gamma_demo) * sigma_demo / np.sqrt(sigma_demo**2 + 1e-3)
    rows = [
        f"| {name} | {sigma_demo[j]:.3g} | {out_demo[:, j].mean():+.4f} (β = {beta_demo[j]:+.1f}) | "
        f"{out_demo[:, j].std():.4f} | {predicted[j]:.4f} |"
        for j, name in enumerate(["ordinary", "quiet"])
    ]
    display(
        Markdown(
            "| feature | batch σ | mean of out | std of out | \\|γ\\| σ / √(σ² + ε) |\n|---|---|---|---|---|\n"
            + "\n".join(rows)
            + f"\n\nBoth features get mean β. The ordinary feature's spread is |γ| = {gamma_demo[0]:g} "
            f"to four digits, but the quiet one only reaches **{out_demo[:, 1].std():.2f}**: with σ² = "
            f"{sigma_demo[1] ** 2:.1e} next to ε = 1e-3, dividing by √(σ² + ε) does not blow the feature up to "
            "unit variance. That is ε's job: without it, a feature that barely varies (or a batch of one) would "
            "be divided by almost zero."
        )
    )

# %% [markdown]
# ## 5. The computation graph
#
# To differentiate BN we split the forward pass into small steps (nodes) whose derivatives are easy,
# then walk back through them with the chain rule. Here are the nodes, per feature; the backward
# column is what you write, **from the bottom row up**. A row with "+=" is a node whose value is
# used twice: $x$ feeds both $\mu$ and $x_c$, and $x_c$ feeds both $\sigma^2$ and $\hat x$, so their
# gradients are the *sum* over both uses. A quantity of shape $(D,)$ that was broadcast over the $N$
# rows collects its gradient by **summing over the rows**.
#
# | # | node | shape | forward | local derivatives | backward (run bottom-up) |
# |---|---|---|---|---|---|
# | 1 | $\mu$ | $(D,)$ | $\mu = \frac{1}{N}\sum_i x_i$ | $\partial\mu/\partial x_i = 1/N$ | `dx += dmu / N` |
# | 2 | $x_c$ | $(N,D)$ | $x_c = x - \mu$ | $\partial x_c/\partial x = 1$, $\partial x_c/\partial\mu = -1$ | `dx = dxc`, `dmu = -sum(dxc, axis=0)` |
# | 3 | $\sigma^2$ | $(D,)$ | $\sigma^2 = \frac{1}{N}\sum_i x_{c,i}^2$ | $\partial\sigma^2/\partial x_{c,i} = 2x_{c,i}/N$ | `dxc += 2 * xc * dvar / N` |
# | 4 | $s$ | $(D,)$ | $s = \sqrt{\sigma^2+\epsilon}$ | $\partial s/\partial\sigma^2 = 1/(2s)$ | `dvar = ds / (2 * s)` |
# | 5 | $r$ | $(D,)$ | $r = 1/s$ | $\partial r/\partial s = -1/s^2$ | `ds = -dr / s**2` |
# | 6 | $\hat x$ | $(N,D)$ | $\hat x = x_c \cdot r$ | $\partial\hat x/\partial x_c = r$, $\partial\hat x/\partial r = x_c$ | `dxc = dxhat * r`, `dr = sum(dxhat * xc, axis=0)` |
# | 7 | out | $(N,D)$ | $\gamma\hat x + \beta$ | $\partial/\partial\hat x = \gamma$, $\partial/\partial\gamma = \hat x$, $\partial/\partial\beta = 1$ | `dxhat = dout * gamma`, `dgamma = sum(dout * xhat, axis=0)`, `dbeta = sum(dout, axis=0)` |
#
# The drawing below is the same graph: arrows carry values forward, and every arrow that leaves a node
# twice is a place where the backward pass adds two gradients.

# %% kind="experiment"
fig, ax = plt.subplots(figsize=(10, 3.1), constrained_layout=True)
nodes = {
    "x": (0.0, 1.0),
    "μ": (1.3, 0.0),
    "x_c": (2.6, 1.0),
    "σ²": (3.9, 0.0),
    "s = √(σ²+ε)": (5.5, 0.0),
    "r = 1/s": (7.1, 0.0),
    "x̂": (7.1, 1.0),
    "out": (8.8, 1.0),
    "γ, β": (8.8, 0.0),
}
boxes = {
    name: ax.text(
        px,
        py,
        name,
        ha="center",
        va="center",
        fontsize=11,
        bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": PALETTE[0], "lw": 1.5},
    )
    for name, (px, py) in nodes.items()
}
edges = [
    ("x", "μ"),
    ("x", "x_c"),
    ("μ", "x_c"),
    ("x_c", "σ²"),
    ("σ²", "s = √(σ²+ε)"),
    ("s = √(σ²+ε)", "r = 1/s"),
    ("x_c", "x̂"),
    ("r = 1/s", "x̂"),
    ("x̂", "out"),
    ("γ, β", "out"),
]
for a, b in edges:
    twice = a in ("x", "x_c")  # these values feed two nodes: their gradients add up
    ax.annotate(
        "",
        xy=nodes[b],
        xytext=nodes[a],
        arrowprops={
            "arrowstyle": "-|>",
            "color": PALETTE[1] if twice else "0.3",
            "lw": 2.0 if twice else 1.2,
            "linestyle": "--" if twice else "-",
            "patchA": boxes[a].get_bbox_patch(),
            "patchB": boxes[b].get_bbox_patch(),
            "shrinkA": 3,
            "shrinkB": 3,
        },
    )
ax.text(
    0.0,
    -0.55,
    "dashed arrows: a value used twice (its gradient is the sum of both paths)",
    color=PALETTE[1],
    fontsize=9,
)
ax.set(xlim=(-0.6, 9.4), ylim=(-0.75, 1.45))
ax.axis("off")
plt.show()

# %% [markdown]
# ## 6. Exercise: the staged backward pass
#
# Implement `batchnorm_backward` by following the table from row 7 up to row 1, one node at a time. In
# test mode (see the docstring) $\mu$ and $\sigma^2$ are the running statistics, constants, and only the
# direct path remains; the trainer never calls the backward pass in test mode, but it is a good way to
# see which paths exist only in training.

# %% [markdown]
# **Stuck?** Open the hints one at a time; each gives a little more away.
#
# <details><summary>Hint 1 — the idea</summary>
#
# Walk the graph backwards, one node at a time, applying the chain rule at each node. x
# reaches the output through three paths: directly, through μ, and through σ².
# </details>
#
# <details><summary>Hint 2 — the equation</summary>
#
# $\partial\beta = \sum_n \text{dout}$, $\partial\gamma = \sum_n \text{dout}\odot\hat x$ and $\partial\hat x = \gamma\,\text{dout}$; then back through $1/\sqrt{\sigma^2+\epsilon}$, $\sigma^2$ and $\mu$,
# adding up every contribution to $\partial x$.
# </details>
#
# <details><summary>Hint 3 — shapes</summary>
#
# Every sum over the batch is `axis=0` and gives shape (D,); a (D,) gradient flows back to an
# (N, D) one by broadcasting: the gradient of a mean reaches each of the $N$ rows divided by $N$.
# </details>

# %% kind="solution"
# reference: batchnorm_backward

# %% kind="check"
check("bn_backward")

# %% [markdown]
# ### A gradient check, and the redundant bias
#
# Finite differences on *your* forward pass give an independent answer: the numerical gradient of
# $\sum \mathrm{out} \odot \mathrm{dout}$ for a random `dout` (ones would hide mistakes, because
# several terms of the gradient sum to zero against a constant).
#
# The same batch also shows section 3 in numbers. The gradient of the bias $b$ in $\mathrm{BN}(Wx + b)$
# is the column sum of your `dx`; and shifting every row by the same vector leaves your output unchanged.

# %% kind="experiment"
with needs(batchnorm_forward="section 4", batchnorm_backward="section 6"):
    x_check = 5.0 + 3.0 * rng.standard_normal((6, 4))
    x_check[:, 3] = 0.1 + 0.03 * rng.standard_normal(6)  # one quiet feature
    gamma_check = rng.uniform(0.5, 2.0, 4) * np.array([1, -1, 1, -1])
    beta_check = rng.uniform(-1.0, 1.0, 4)
    dout_check = rng.standard_normal((6, 4))

    def forward_out(x, gamma, beta):
        return batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": 1e-3})[0]

    _, cache_check = batchnorm_forward(
        x_check, gamma_check, beta_check, {"mode": "train", "eps": 1e-3}
    )
    dx_mine, dgamma_mine, dbeta_mine = batchnorm_backward(dout_check, cache_check)
    numeric = {
        "dx": numerical_gradient_array(
            lambda z: forward_out(z, gamma_check, beta_check), x_check.copy(), dout_check
        ),
        "dgamma": numerical_gradient_array(
            lambda g: forward_out(x_check, g, beta_check), gamma_check.copy(), dout_check
        ),
        "dbeta": numerical_gradient_array(
            lambda b: forward_out(x_check, gamma_check, b), beta_check.copy(), dout_check
        ),
    }
    errors = {
        name: rel_error(mine, numeric[name])
        for name, mine in zip(numeric, (dx_mine, dgamma_mine, dbeta_mine), strict=True)
    }
    shift = rng.normal(size=4) * 10
    moved = np.abs(
        forward_out(x_check + shift, gamma_check, beta_check)
        - forward_out(x_check, gamma_check, beta_check)
    ).max()
    display(
        Markdown(
            "Relative error, your backward pass vs finite differences (below 1e-7 is right): "
            + ", ".join(f"{k} **{v:.1e}**" for k, v in errors.items())
            + f".\n\nGradient reaching the bias $b$ (column sums of your dx): largest "
            f"**{np.abs(np.sum(dx_mine, axis=0)).max():.1e}**, next to a typical |dx| of "
            f"{np.abs(dx_mine).mean():.2f}. Shifting every example by the same random vector (entries of "
            f"size ~10) changes your output by at most **{moved:.1e}**: BN cancels the bias, so it gets no gradient."
        )
    )

# %% [markdown]
# ## 7. Exercise: the closed form
#
# Collapse the staged chain rule on paper. With $\mathrm{d}\hat x = \gamma\,\mathrm{dout}$, rows 6 to 3
# give $\mathrm{d}\sigma^2 = -\frac{1}{2 s^3}\sum_k \mathrm{d}\hat x_k\, x_{c,k}$ and
#
# $$ \mathrm{d}x_{c,i} = \frac{1}{s}\Big(\mathrm{d}\hat x_i - \hat x_i\,\frac{1}{N}\sum_k \mathrm{d}\hat x_k\, \hat x_k\Big); $$
#
# rows 2 and 1 remove the mean of that over the batch (and $\sum_i \hat x_i = 0$ kills one more term):
#
# $$ \mathrm{d}x_i = \frac{1}{s}\Big(\mathrm{d}\hat x_i - \frac{1}{N}\sum_k \mathrm{d}\hat x_k - \hat x_i\, \frac{1}{N}\sum_k \mathrm{d}\hat x_k\,\hat x_k\Big)
#   = \frac{\gamma}{N s}\Big(N\,\mathrm{dout}_i - \mathrm{d}\beta - \hat x_i\, \mathrm{d}\gamma\Big). $$
#
# Read it as: take the direct gradient $\gamma\,\mathrm{dout}/s$ and remove two things from it, its
# average over the batch (the **mean path**: moving all examples together moves $\mu$ along and
# changes nothing) and its component along $\hat x$ (the **variance path**: stretching all examples
# away from the mean changes $\sigma$ along and changes nothing either). "Component" is exact only as
# $\epsilon \to 0$: the term removed is $\hat x \cdot \frac1N \sum_k \mathrm{d}\hat x_k \hat x_k$, while the
# projection onto $\hat x$ would divide by $\lVert \hat x\rVert^2 = N\sigma^2/(\sigma^2+\epsilon)$ instead of $N$.
# Note that the formula reuses $\mathrm{d}\beta$ and $\mathrm{d}\gamma$, which you compute anyway.
# Implement `batchnorm_backward_alt` with it.

# %% [markdown]
# **Stuck?** Open the hints one at a time; each gives a little more away.
#
# <details><summary>Hint 1 — the idea</summary>
#
# Collapse the staged computation into one expression in $\hat x$ and dout: the mean and
# variance paths become two correction terms.
# </details>
#
# <details><summary>Hint 2 — the equation</summary>
#
# $$\partial x = \frac{\gamma}{N\sqrt{\sigma^2+\epsilon}}\left(N\,\text{dout} - \sum_n \text{dout} - \hat x \sum_n \text{dout}\odot\hat x\right)$$
# </details>
#
# <details><summary>Hint 3 — shapes</summary>
#
# The two sums are (D,) and broadcast over the (N, D) terms; `dgamma` and `dbeta` are the same
# as in the staged version.
# </details>

# %% kind="solution"
# reference: batchnorm_backward_alt

# %% kind="check"
check("bn_backward_alt")

# %% kind="check"
check("bn_alt_matches_staged")

# %% [markdown]
# ### Hidden checks
#
# The grader also runs your three functions on inputs you have not seen (other shapes, other $\epsilon$
# and momentum values), and compares one backward pass with finite differences. Nothing to do here: if
# the visible checks pass, these should too.

# %% kind="check"
check("bn_hidden_forward")

# %% kind="check"
check("bn_hidden_backward")

# %% [markdown]
# ### How much faster is the closed form?
#
# The staged version walks over the whole $(N, D)$ array about ten times and allocates a temporary each
# time; the closed form needs about half as many passes. We time both of *your* functions on the same
# cache, alternating them so that both see the same machine load, and compare medians. (The script
# `scripts/bench_batchnorm_backward.py` does the same on a $(4096, 1024)$ batch.)

# %% kind="experiment"
with needs(
    batchnorm_forward="section 4",
    batchnorm_backward="section 6",
    batchnorm_backward_alt="section 7",
):
    n_speed, d_speed, repeats = (512, 256, 5) if quick else (1024, 512, 15)
    x_speed = 5.0 + 3.0 * rng.standard_normal((n_speed, d_speed))
    dout_speed = rng.standard_normal((n_speed, d_speed))
    _, cache_speed = batchnorm_forward(
        x_speed, rng.uniform(0.5, 2, d_speed), rng.normal(size=d_speed), {"mode": "train"}
    )
    timings = {"staged": [], "closed form": []}
    for _ in range(repeats + 1):  # the first round warms up and is dropped
        for name, backward in (
            ("staged", batchnorm_backward),
            ("closed form", batchnorm_backward_alt),
        ):
            start = time.perf_counter()
            backward(dout_speed, cache_speed)
            timings[name].append(time.perf_counter() - start)
    median = {name: 1e3 * np.median(t[1:]) for name, t in timings.items()}
    speedup = median["staged"] / median["closed form"]
    # each round's ratio compares two calls made moments apart: robust to a machine that is busy
    paired = np.median(np.array(timings["staged"][1:]) / np.array(timings["closed form"][1:]))
    display(
        Markdown(
            f"On a ({n_speed}, {d_speed}) batch, median of {repeats} runs: staged **{median['staged']:.2f} ms**, "
            f"closed form **{median['closed form']:.2f} ms**: the closed form is **{speedup:.2f}×** as fast "
            f"(median of the per-round ratios: {paired:.2f}×). "
            "In a real network the backward pass of every BN layer runs at every step, so this adds up; the "
            "staged version stays useful as the readable, checkable derivation."
        )
    )

# %% [markdown]
# ## 8. Experiments on real data
#
# We use the handwritten digits that ship with scikit-learn (1,797 images of 8×8 pixels, from the UCI
# *Optical Recognition of Handwritten Digits* data set), 500 images for training, 500 for
# validation and the remaining 797 as a held-out test split. The network is deliberately deep-ish for such small inputs: **5 hidden layers of 100
# units**, ReLU, SGD with momentum 0.9, mini-batches of 50. The trainer takes *your* `batchnorm_forward`
# and `batchnorm_backward` and puts BN between every affine layer and its ReLU, as on the slides;
# accuracies are measured in test mode (running statistics).
#
# ### Claim 1: batch normalization accelerates training
#
# Same network, same initial weights (He initialization), same mini-batches and the same learning rate
# (0.05), with and without BN, for 5 epochs (50 steps). Each setting is trained in several
# **repetitions**, each with its own data split and seed (three by default, five with `FULL=1`), and
# compared repetition by repetition.

# %% kind="experiment"
with needs(batchnorm_forward="section 4", batchnorm_backward="section 6"):
    FULL = full_mode()  # FULL=1: five repetitions and the finer sweeps (about 2.5 minutes)
    reps = replicates(1 if quick else (5 if FULL else 3))  # (data split, seed) pairs
    splits = {split: load_digits(n_train=500, n_val=500, seed=split) for split, _ in reps}
    first = reps[0][0]
    data = splits[first]
    HIDDEN = [100] * 5
    EPOCHS = 5
    LR = 0.05
    if quick:
        lrs = [LR]
    elif FULL:
        lrs = [0.02, LR, 0.1, 0.2]
    else:
        lrs = [LR, 0.2]
    bn_layer = (batchnorm_forward, batchnorm_backward)
    runs = {}  # (with BN, learning rate, split) -> History
    for lr in lrs:
        for split, seed in reps:
            for use_bn in (False, True):
                runs[use_bn, lr, split] = train_mlp(
                    splits[split],
                    HIDDEN,
                    epochs=EPOCHS,
                    lr=lr,
                    seed=seed,
                    batchnorm=bn_layer if use_bn else None,
                    progress=False,
                    eval_every=1 if lr == LR else EPOCHS,
                )

    _test_accs = {}

    def test_acc(history, split):
        """Accuracy on the split's held-out test images, in test mode (measured once per run)."""
        if id(history) not in _test_accs:
            kw = {"batchnorm_forward": batchnorm_forward} if history.bn_params else {}
            _test_accs[id(history)] = (
                history,  # kept, so that its id is never reused
                evaluate(history, splits[split].X_test, splits[split].y_test, **kw)[1],
            )
        return _test_accs[id(history)][1]

    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(12, 3.8), constrained_layout=True)
    curves = {
        "without BN": [runs[False, LR, s] for s, _ in reps],
        "with BN": [runs[True, LR, s] for s, _ in reps],
    }
    plot_curves(
        ax_loss, curves, "iter_loss", labels="direct", title="mini-batch loss (mean, band: min–max)"
    )
    plot_curves(ax_val, curves, "val_acc", title="validation accuracy per epoch")
    ax_val.xaxis.set_major_locator(MaxNLocator(integer=True))
    plt.show()

    def window_loss(history, last=10):
        """Mean mini-batch loss over the last `last` iterations (one curve is noisy)."""
        return float(np.mean(history.iter_loss[-last:]))

    loss_plain = np.array([window_loss(runs[False, LR, s]) for s, _ in reps])
    loss_bn = np.array([window_loss(runs[True, LR, s]) for s, _ in reps])
    test_plain = np.array([test_acc(runs[False, LR, s], s) for s, _ in reps])
    test_bn = np.array([test_acc(runs[True, LR, s], s) for s, _ in reps])
    reach = {}
    for use_bn in (False, True):
        steps = []
        for s, _ in reps:
            smooth = np.convolve(runs[use_bn, LR, s].iter_loss, np.ones(5) / 5, mode="valid")
            below = np.flatnonzero(smooth < 0.5)
            steps.append(below[0] + 5 if below.size else np.inf)
        reach[use_bn] = np.median(steps)
    n_steps = len(runs[True, LR, first].iter_loss)
    loss_change = describe_difference(
        paired_difference(loss_bn, loss_plain), scale=1.0, unit="", digits=3
    )
    display(
        Markdown(
            f"Over {len(reps)} repetition(s) (data split and seed), the mini-batch loss averaged over "
            f"the last 10 of the {n_steps} steps is **{loss_plain.mean():.3f}** without BN and "
            f"**{loss_bn.mean():.3f}** with BN (BN against no BN, paired: "
            f"{loss_change}). "
            f"The smoothed loss first drops below 0.5 after a median of **{reach[False]:.0f}** steps "
            f"without BN and **{reach[True]:.0f}** with BN. Test accuracy after {EPOCHS} epochs: "
            f"**{test_plain.mean():.1%}** without and **{test_bn.mean():.1%}** with BN "
            f"({describe_difference(paired_difference(test_bn, test_plain))})."
        )
    )

# %% [markdown]
# ### Claim 1, continued: how large a learning rate?
#
# The original paper's main claim (Ioffe & Szegedy, 2015) is that BN lets a network train with much
# **larger learning rates**, which is where most of its speed-up comes from. Above, both networks used
# 0.05. Below, the same comparison for several learning rates, after the same 5 epochs. Two things to
# keep in mind when reading "accelerates": it is measured **per step**, and a step with BN costs more
# than a step without it (the cell measures how much, on this machine).

# %% kind="experiment"
with needs(batchnorm_forward="section 4", batchnorm_backward="section 6"):
    rows, diverged = [], {}
    for lr in lrs:
        cells = []
        for use_bn in (False, True):
            histories = [runs[use_bn, lr, s] for s, _ in reps]
            diverged[use_bn, lr] = sum(h.diverged for h in histories)
            accs = [test_acc(h, s) for h, (s, _) in zip(histories, reps, strict=True)]
            cells.append(f"{np.mean(accs):.1%} ({diverged[use_bn, lr]} of {len(reps)} diverged)")
        d = paired_difference(
            [test_acc(runs[True, lr, s], s) for s, _ in reps],
            [test_acc(runs[False, lr, s], s) for s, _ in reps],
        )
        rows.append(f"| {lr:g} | {cells[0]} | {cells[1]} | {describe_difference(d)} |")

    def seconds_per_step(use_bn):
        """Training time per step (evaluation included), over the runs measured once at the end."""
        histories = [runs[use_bn, lr, s] for lr in lrs if lr != LR for s, _ in reps]
        histories = histories or [runs[use_bn, LR, s] for s, _ in reps]
        return np.median([h.seconds / len(h.iter_loss) for h in histories])

    cost = seconds_per_step(True) / seconds_per_step(False)
    display(
        Markdown(
            f"Test accuracy after {EPOCHS} epochs, mean over {len(reps)} repetition(s) (a diverged run "
            "counts every prediction as wrong):\n\n"
            "| learning rate | without BN | with BN | BN − no BN (test, paired) |\n"
            "|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            f"One training step with BN took **{cost:.1f}×** as long as one without it here (median "
            f"over the runs; {seconds_per_step(True) * 1e3:.1f} ms with BN, "
            f"{seconds_per_step(False) * 1e3:.1f} ms without, on a machine that may be busy). So BN's gain per "
            "step has to be set against its cost per step: per second of compute it is smaller, and "
            "it is largest where BN allows a learning rate at which the plain network fails."
        )
    )

# %% [markdown]
# ### Claim 2: less sensitive to the initialization
#
# Now every weight starts as $\mathcal{N}(0, s^2)$ with one scale $s$ for all layers, swept over three
# orders of magnitude. Without BN, a scale that is too small makes the signal shrink by a constant
# factor in every layer (and the gradients with it), and one that is too large makes it explode. With
# BN every layer re-standardizes its inputs, so the scale of the weights before it should hardly
# matter (within a limit we will meet below).

# %% kind="experiment"
with needs(batchnorm_forward="section 4", batchnorm_backward="section 6"):
    if quick:
        scales = [1e-3, 1e-1, 1.0]
    elif FULL:
        scales = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]
    else:
        scales = [1e-3, 1e-2, 1e-1, 1.0]
    sweep_reps = reps if FULL else reps[:2]
    sweep, diverged = {}, {}
    for s in scales:
        for use_bn in (False, True):
            histories = [
                train_mlp(
                    splits[split],
                    HIDDEN,
                    epochs=EPOCHS,
                    lr=LR,
                    weight_scale=s,
                    seed=seed,
                    batchnorm=bn_layer if use_bn else None,
                    progress=False,
                    eval_every=EPOCHS,
                )
                for split, seed in sweep_reps
            ]
            sweep[use_bn, s] = [h.final()["val_acc"] for h in histories]
            diverged[use_bn, s] = sum(h.diverged for h in histories)

    fig, ax = plt.subplots(figsize=(7.5, 3.8), constrained_layout=True)
    for i, use_bn in enumerate((False, True)):
        values = np.array([sweep[use_bn, s] for s in scales])
        kw = style(i)
        ax.plot(
            scales,
            values.mean(axis=1),
            label="with BN" if use_bn else "without BN",
            color=kw["color"],
            linestyle=kw["linestyle"],
            marker=kw["marker"],
            linewidth=2,
        )
        if len(sweep_reps) > 1:
            ax.fill_between(
                scales, values.min(axis=1), values.max(axis=1), color=kw["color"], alpha=0.15
            )
    ax.axhline(0.1, color="0.6", lw=1, linestyle=":")
    ax.text(3e-3, 0.03, "chance (10 classes)", color="0.4", fontsize=9)
    ax.set(
        xscale="log",
        xlabel="initial weight scale s (all layers)",
        ylabel="validation accuracy",
        title=f"after {EPOCHS} epochs, mean over {len(sweep_reps)} seed(s), band: min–max",
        ylim=(0, 1),
    )
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False)
    plt.show()

    good = {
        use_bn: [s for s in scales if np.mean(sweep[use_bn, s]) >= 0.85] for use_bn in (False, True)
    }
    display(
        Markdown(
            "Scales that reach at least 85 % validation accuracy: without BN "
            f"**{', '.join(f'{s:g}' for s in good[False]) or 'none'}**; with BN "
            f"**{', '.join(f'{s:g}' for s in good[True]) or 'none'}** (of {', '.join(f'{s:g}' for s in scales)}). "
            f"At s = {scales[0]:g} even BN fails ({np.mean(sweep[True, scales[0]]):.0%} after {EPOCHS} "
            "epochs); the next experiment shows why. Without BN, the large scales make the loss overflow: "
            f"{sum(diverged[False, s] for s in scales)} of the {len(scales) * len(sweep_reps)} runs "
            f"without BN diverged (with BN: {sum(diverged[True, s] for s in scales)}), and a diverged "
            "network counts every prediction as wrong, hence the points below chance."
        )
    )

# %% [markdown]
# ### Inside the network: distributions layer by layer
#
# Why does the initial scale matter so much without BN? Push 500 validation images through freshly
# initialized networks (scales $s = 0.03$ and $s = 0.001$, and He initialization) and look at the
# input of every ReLU. Then do the same for the networks trained in claim 1.


# %% kind="experiment"
with needs(batchnorm_forward="section 4", batchnorm_backward="section 6"):

    def relu_inputs(params, X, bn_params=None, mode="test"):
        """The input of every hidden ReLU (after BN when the network has it), layer by layer."""
        n_layers = sum(k.startswith("W") for k in params)
        h, seen = X, []
        for i in range(1, n_layers):
            h, _ = affine_forward(h, params[f"W{i}"], params[f"b{i}"])
            if bn_params is not None:
                # a copy: evaluating must not disturb the running statistics of a trained network
                p = {
                    k: v.copy() if isinstance(v, np.ndarray) else v
                    for k, v in bn_params[i - 1].items()
                }
                p["mode"] = mode
                h = np.asarray(batchnorm_forward(h, params[f"gamma{i}"], params[f"beta{i}"], p)[0])
            seen.append(h)
            h, _ = relu_forward(h)
        return seen

    def fresh_network(scale, seed=0):
        """Initial weights as the trainer makes them (scale None: He initialization)."""
        init = np.random.default_rng(seed)
        dims = [64, *HIDDEN, 10]
        params = {}
        for i in range(1, len(dims)):
            s = np.sqrt(2.0 / dims[i - 1]) if scale is None else scale
            params[f"W{i}"] = s * init.standard_normal((dims[i - 1], dims[i]))
            params[f"b{i}"] = np.zeros(dims[i])
            params[f"gamma{i}"], params[f"beta{i}"] = np.ones(dims[i]), np.zeros(dims[i])
        return params

    bn_fresh = [{"mode": "train"} for _ in HIDDEN]
    at_init = {
        "s = 0.03, without BN": relu_inputs(fresh_network(0.03), data.X_val),
        "s = 0.03, with BN": relu_inputs(fresh_network(0.03), data.X_val, bn_fresh, mode="train"),
        "He, without BN": relu_inputs(fresh_network(None), data.X_val),
        "s = 0.001, with BN": relu_inputs(fresh_network(0.001), data.X_val, bn_fresh, mode="train"),
    }
    tiny_var = (data.X_val @ fresh_network(0.001)["W1"]).var(axis=0).mean()
    rows = [
        f"| {name} | " + " | ".join(f"{h.std():.2g}" for h in layers) + " |"
        for name, layers in at_init.items()
    ]
    display(
        Markdown(
            "Standard deviation of the ReLU inputs at initialization, per layer:\n\n| network | "
            + " | ".join(f"layer {i + 1}" for i in range(len(HIDDEN)))
            + " |\n|---|"
            + "---|" * len(HIDDEN)
            + "\n"
            + "\n".join(rows)
        )
    )

    trained = {
        "without BN": relu_inputs(runs[False, LR, first].params, data.X_val),
        "with BN": relu_inputs(
            runs[True, LR, first].params, data.X_val, runs[True, LR, first].bn_params
        ),
    }
    fig, axes = plt.subplots(
        1, len(HIDDEN), figsize=(13, 3.2), constrained_layout=True, sharey=True
    )
    for layer, ax in enumerate(axes):
        spreads = []
        for i, (name, layers) in enumerate(trained.items()):
            values = layers[layer].ravel()
            spreads.append(f"{values.std():.2f}")
            kw = style(i)
            ax.hist(
                values,
                bins=np.linspace(-8, 8, 65),
                density=True,
                histtype="step",
                linewidth=1.8,
                color=kw["color"],
                linestyle=kw["linestyle"],
                label=name,
            )
        ax.set_title(f"hidden layer {layer + 1}\nstd {' / '.join(spreads)}", fontsize=10)
        ax.set_xlabel("ReLU input")
    axes[0].set_ylabel("density")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(
        f"after training (claim 1, split {first}): validation images in test mode; "
        "std: without BN / with BN"
    )
    plt.show()

    stds = {name: [h.std() for h in layers] for name, layers in trained.items()}
    display(
        Markdown(
            f"At a scale of 0.03 the signal without BN shrinks by a factor of about "
            f"{at_init['s = 0.03, without BN'][0].std() / at_init['s = 0.03, without BN'][1].std():.0f} per "
            f"layer, down to a standard deviation of {at_init['s = 0.03, without BN'][-1].std():.1e} in the last "
            "hidden layer: the output layer sees almost nothing, and the gradients that flow back are "
            "scaled down the same way. With BN every layer starts at a standard deviation close to 1 instead. "
            "He initialization was designed to keep the scale constant without BN, which is why the plain network "
            "trains at all in claim 1.\n\nBN has a limit, though, and it is ε. At s = 0.001 the first layer's "
            f"pre-activations have a variance of only {tiny_var:.1e}, far below ε = 1e-3, so "
            "√(σ² + ε) ≈ √ε: BN divides by far more than σ and shrinks the signal instead of standardizing it "
            "(the quiet feature of section 4, now in every unit). The signal fades layer after layer even with "
            "BN (standard deviation "
            f"{at_init['s = 0.001, with BN'][-1].std():.1e} in layer {len(HIDDEN)}), which is why BN failed at "
            "s = 0.001 in the sweep.\n\nAfter training, the spread of the ReLU inputs without BN varies from "
            f"{min(stds['without BN']):.2f} to {max(stds['without BN']):.2f} across the layers, and with BN from "
            f"{min(stds['with BN']):.2f} to {max(stds['with BN']):.2f}: BN keeps every layer's input in a range "
            "set by the learned γ and β, instead of one that depends on all the weights below it."
        )
    )

# %% [markdown]
# ### Claim 3: does BN regularize?
#
# In training mode each example is normalized with the statistics of the batch it happens to land in,
# so its hidden features get a little random shift and scale at every step: noise, a little like
# dropout. To see whether that noise regularizes, it has to be separated from everything else BN does.
# **Ghost batches** do that. We go back to the high-variance setting of notebooks 01 and 02 (200
# training images, 64 → 128 → 128 → 10) and train with *full-batch* gradient descent: every step uses
# all 200 images, so the gradient itself has no sampling noise. BN then normalizes either the whole
# batch at once (ghost batch of 200: the statistics are the same at every step, no batch noise at all)
# or each of 20 random chunks of 10 separately (ghost batches of 10: much batch noise, same gradient
# steps otherwise). The network without BN is the reference.

# %% kind="experiment"
with needs(batchnorm_forward="section 4", batchnorm_backward="section 6"):

    def ghost_batchnorm(size):
        """BN layer functions that normalize each chunk of `size` rows of a batch on its own."""

        def forward(x, gamma, beta, bn_param):
            outs, caches = [], []
            for start in range(0, len(x), size):
                out, cache = batchnorm_forward(x[start : start + size], gamma, beta, bn_param)
                outs.append(np.asarray(out))
                caches.append((len(outs[-1]), cache))
            return np.concatenate(outs), caches

        def backward(dout, caches):
            dxs, dgamma, dbeta, start = [], 0.0, 0.0, 0
            for n, cache in caches:
                dx, dg, db = batchnorm_backward(dout[start : start + n], cache)
                dxs.append(dx)
                dgamma, dbeta, start = dgamma + dg, dbeta + db, start + n
            return np.concatenate(dxs), dgamma, dbeta

        return forward, backward

    reg_reps = reps if FULL else reps[:2]
    reg_epochs = 20 if quick else (300 if FULL else 100)  # one full-batch step per epoch
    small = {split: load_digits(n_train=200, n_val=500, seed=split) for split, _ in reg_reps}
    ghost_settings = {"no BN": None, "BN, ghost batch 200": 200, "BN, ghost batch 10": 10}
    reg = {}
    for name, size in ghost_settings.items():
        for split, seed in reg_reps:
            h = train_mlp(
                small[split],
                [128, 128],
                epochs=reg_epochs,
                batch_size=200,
                lr=0.1,
                seed=seed,
                batchnorm=None if size is None else ghost_batchnorm(size),
                progress=False,
                eval_every=10,
            )
            kw = {} if size is None else {"batchnorm_forward": batchnorm_forward}
            reg[name, split] = (
                h.final(last=3)["train_acc"],
                evaluate(h, small[split].X_test, small[split].y_test, **kw)[1],
            )

    def test_of(name):
        return np.array([reg[name, split][1] for split, _ in reg_reps])

    noise = paired_difference(test_of("BN, ghost batch 10"), test_of("BN, ghost batch 200"))
    no_noise = paired_difference(test_of("BN, ghost batch 200"), test_of("no BN"))
    rows = "\n".join(
        f"| {name} | {np.mean([reg[name, s][0] for s, _ in reg_reps]):.1%} | "
        f"{test_of(name).mean():.1%} |"
        for name in ghost_settings
    )
    display(
        Markdown(
            f"Full-batch training, {reg_epochs} steps, {len(reg_reps)} repetition(s):\n\n"
            "| setting | train | test (1,097 images) |\n|---|---|---|\n" + rows + "\n\n"
            f"* **Batch noise** (ghost batches of 10 against one ghost batch of 200, same gradient "
            f"steps): {describe_difference(noise)}.\n"
            f"* **BN without batch noise** (ghost batch of 200 against no BN): "
            f"{describe_difference(no_noise)}.\n\n"
            "Every setting fits its 200 training images, so a difference on the test images is a "
            "difference in how the fit generalizes. The first line is the slides' regularization "
            "claim in its cleanest form; the second is whatever else BN changes (the conditioning of "
            "the optimization, the effective step size). "
            + (
                "Both are resolved by this run."
                if noise["resolved"] and no_noise["resolved"]
                else "What this run does not resolve, it cannot claim"
                + (
                    "; even five repetitions leave it within noise."
                    if FULL
                    else f": the default run has {len(reg_reps)} repetitions of {reg_epochs} steps, "
                    "`FULL=1` runs five of 300 (the walkthrough is built from that run)."
                )
            )
        )
    )

# %% [markdown]
# ### Small batches: where BN struggles
#
# BN's statistics come from the mini-batch, so they are only as good as the batch is large. With $N$
# examples, $\mu_B$ and $\sigma_B^2$ are noisy estimates, and for very small $N$ they are degenerate: with
# $N = 2$ every feature of $\hat x$ is $\pm\sqrt{\sigma^2/(\sigma^2+\epsilon)} \approx \pm 1$ (only which of
# the two examples is larger survives), and with $N = 1$ it is $0$. We train the network of claim 1 with
# smaller batches for the same 5 epochs. Smaller batches mean more, noisier steps, so the learning rate
# is scaled with the batch size ($0.05 \cdot N/50$: 0.002 at $N = 2$); the network without BN shows
# that this alone is harmless. (Whether another learning rate rescues $N = 2$ is tested below, in the
# `FULL=1` run.)

# %% kind="experiment"
with needs(batchnorm_forward="section 4", batchnorm_backward="section 6"):
    if quick:
        batch_sizes = [2, 50]
    elif FULL:
        batch_sizes = [2, 4, 8, 16, 50]
    else:
        batch_sizes = [2, 50]
    bs_reps = reps if FULL else reps[:2]
    by_batch, nets = {}, {}
    for n_batch in batch_sizes:
        for use_bn in (False, True):
            for split, seed in bs_reps:
                if n_batch == 50:  # the runs of claim 1
                    h = runs[use_bn, LR, split]
                else:
                    h = train_mlp(
                        splits[split],
                        HIDDEN,
                        epochs=EPOCHS,
                        batch_size=n_batch,
                        lr=LR * n_batch / 50,
                        seed=seed,
                        batchnorm=bn_layer if use_bn else None,
                        progress=False,
                        eval_every=EPOCHS,
                    )
                nets[use_bn, n_batch, split] = h
                by_batch[use_bn, n_batch, split] = test_acc(h, split)

    fig, ax = plt.subplots(figsize=(7.5, 3.6), constrained_layout=True)
    for i, use_bn in enumerate((False, True)):
        kw = style(i)
        values = np.array([[by_batch[use_bn, b, s] for s, _ in bs_reps] for b in batch_sizes])
        ax.plot(
            batch_sizes,
            values.mean(axis=1),
            label="with BN" if use_bn else "without BN",
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
        xlabel="mini-batch size N (learning rate 0.05·N/50)",
        ylabel="test accuracy",
        title=f"after {EPOCHS} epochs, mean (line) and each of {len(bs_reps)} repetition(s) (dots)",
        ylim=(0, 1),
    )
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False)
    plt.show()

# %% [markdown]
# Where does the network with $N = 2$ fail: in training, or only at test time, because the running
# averages describe a distribution the network never saw? Three measurements of the BN networks trained
# with the smallest batches tell them apart: accuracy on the **training** images in train mode (batches
# of $N$, as during training); test accuracy with the running averages; and test accuracy after
# **recomputing the population statistics**: one pass over the whole training set, layer by layer, that
# replaces every running mean and variance by the exact statistics of the trained network.

# %% kind="experiment"
with needs(batchnorm_forward="section 4", batchnorm_backward="section 6"):

    def scores_of(params, X, bn_params, mode="test"):
        """Class scores of a trained BN network (train mode: X is one batch)."""
        n_layers = sum(k.startswith("W") for k in params)
        h = relu_forward(relu_inputs(params, X, bn_params, mode=mode)[-1])[0]
        return affine_forward(h, params[f"W{n_layers}"], params[f"b{n_layers}"])[0]

    def population_statistics(params, X, bn_params):
        """Running statistics replaced by the exact statistics of X, layer by layer."""
        fixed = [dict(p) for p in bn_params]
        h, n_layers = X, sum(k.startswith("W") for k in params)
        for i in range(1, n_layers):
            a = h @ params[f"W{i}"] + params[f"b{i}"]
            fixed[i - 1]["running_mean"], fixed[i - 1]["running_var"] = (
                a.mean(axis=0),
                a.var(axis=0),
            )
            p = {**fixed[i - 1], "mode": "test"}
            h = np.maximum(batchnorm_forward(a, params[f"gamma{i}"], params[f"beta{i}"], p)[0], 0.0)
        return fixed

    n_small = batch_sizes[0]
    diagnosis = []
    for split, _ in bs_reps:
        net = nets[True, n_small, split]
        X, y = splits[split].X_train, splits[split].y_train
        train_mode = np.mean(
            [
                scores_of(net.params, X[i : i + n_small], net.bn_params, mode="train").argmax(
                    axis=1
                )
                == y[i : i + n_small]
                for i in range(0, len(y) - n_small + 1, n_small)
            ]
        )
        recomputed = population_statistics(net.params, X, net.bn_params)
        Xt, yt = splits[split].X_test, splits[split].y_test
        with np.errstate(all="ignore"):
            fresh = np.mean(scores_of(net.params, Xt, recomputed).argmax(axis=1) == yt)
        diagnosis.append((train_mode, by_batch[True, n_small, split], fresh))
    diagnosis = np.array(diagnosis).mean(axis=0)

    lr_note = ""
    if FULL:  # does another learning rate rescue the smallest batches?
        tried = {}
        for lr in (0.002, 0.01, 0.05):
            tried[lr] = np.mean(
                [
                    test_acc(
                        train_mlp(
                            splits[split],
                            HIDDEN,
                            epochs=EPOCHS,
                            batch_size=n_small,
                            lr=lr,
                            seed=seed,
                            batchnorm=bn_layer,
                            progress=False,
                            eval_every=EPOCHS,
                        ),
                        split,
                    )
                    for split, seed in bs_reps[:2]
                ]
            )
        lr_note = (
            f" Other learning rates at N = {n_small}, test accuracy: "
            + ", ".join(f"{lr:g} → {acc:.0%}" for lr, acc in tried.items())
            + "."
        )
    else:
        lr_note = (
            f" This default run tried only the learning rate {LR * n_small / 50:g} at "
            f"N = {n_small}; `FULL=1` also tries 0.01 and 0.05."
        )

    net = runs[True, LR, first]  # the claim-1 network, batches of 50
    images, truth = data.X_val[:8], data.y_val[:8]

    def predict_one_by_one(images, mode):
        return [
            int(scores_of(net.params, image[None, :], net.bn_params, mode).argmax())
            for image in images
        ]

    test_pred, train_pred = predict_one_by_one(images, "test"), predict_one_by_one(images, "train")
    mean_bs = {
        (use_bn, b): np.mean([by_batch[use_bn, b, s] for s, _ in bs_reps])
        for use_bn in (False, True)
        for b in batch_sizes
    }
    display(
        Markdown(
            f"BN networks trained with batches of {n_small}, mean over {len(bs_reps)} repetition(s): "
            f"accuracy on their training images in train mode (batches of {n_small}) "
            f"**{diagnosis[0]:.0%}**; test accuracy with the running averages **{diagnosis[1]:.0%}**, "
            f"with recomputed population statistics **{diagnosis[2]:.0%}** (without BN, batches of "
            f"{n_small}: {mean_bs[False, n_small]:.0%}; with BN and batches of {batch_sizes[-1]}: "
            f"{mean_bs[True, batch_sizes[-1]]:.0%})."
            + lr_note
            + "\n\n"
            + (
                "So the failure is in **training**: even on its own training images, in the mode it "
                "was trained in, the network is poor, and better test-time statistics do not repair "
                "it. With two examples per batch the features the next layer sees are nearly "
                "meaningless (±1), and so are the gradients through them."
                if diagnosis[0] < 0.5 and diagnosis[2] < 0.5
                else "The training-mode accuracy and the recomputed statistics above show where the "
                "failure lies in this run: compare the three numbers."
            )
            + " Layer normalization (statistics over the features of each example) and "
            "group normalization were invented for exactly this situation.\n\n"
            "The same degeneracy explains a classic deployment bug: running a BN network in "
            "**training mode** to predict one example at a time. The network of claim 1 (batches of "
            "50) classifies eight validation images one by one:\n\n"
            "| | "
            + " | ".join(f"image {i + 1}" for i in range(8))
            + " |\n|---|"
            + "---|" * 8
            + "\n"
            "| true digit | " + " | ".join(map(str, truth)) + " |\n"
            "| test mode | " + " | ".join(map(str, test_pred)) + " |\n"
            "| train mode, batch of one | " + " | ".join(map(str, train_pred)) + " |\n\n"
            "In train mode with a batch of one image, every feature of $\\hat x$ is exactly 0, so "
            "every BN layer outputs β whatever the image: the network predicts the same digit for "
            "every input."
        )
    )

# %% [markdown]
# ## 9. Questions
#
# Answer in a few sentences in the cells below; these are graded by hand.
#
# **Question 1.** Your trainer keeps the bias $b$ in $\mathrm{BN}(Wx + b)$. Show that $b$ cannot change the
# network's output, and explain what gradient it receives. Would the same be true of the bias of the
# *last* layer, which has no BN after it?

# %% [markdown] kind="answer" grade_id="q1_redundant_bias" points=1
# ### BEGIN SOLUTION
# Adding $b_j$ to every example adds $b_j$ to the batch mean $\mu_j$ and leaves the variance unchanged, so
# $x_{ij} + b_j - (\mu_j + b_j) = x_{ij} - \mu_j$: $\hat x$, and therefore the output, does not depend on
# $b$ in training mode. Its gradient is $\sum_i \mathrm{d}x_i$, and the BN backward pass removes the batch
# mean of the gradient (the mean path), so the column sums of $\mathrm{d}x$ are 0 (up to round-off): $b$
# never moves and is wasted memory; $\beta$ does its job. (Nor does $b$ shift the output in test mode: the
# running mean was averaged from batches that already contained $b$, so $x + b - \text{running\_mean}$
# cancels it there too.) The last layer's bias is not followed by BN, so it matters there and must
# be kept.
# ### END SOLUTION

# %% [markdown]
# **Question 2.** You trained a network with this notebook's conventions and want to copy one BN layer
# into PyTorch's `nn.BatchNorm1d` for inference. What do you pass for `momentum` and `eps`? Can you
# copy `running_mean` and `running_var` as they are? What would change if you then kept training in
# PyTorch?

# %% [markdown] kind="answer" grade_id="q2_pytorch_port" points=1
# ### BEGIN SOLUTION
# `eps=1e-3` (PyTorch's default 1e-5 would change the output, most for features with a small running
# variance) and `momentum=0.1`, which is $1 - 0.9$: PyTorch's momentum is the weight of the new batch.
# For inference both statistics can be copied as they are: in eval mode PyTorch normalizes with
# `running_var` whatever estimator produced it, so the outputs agree exactly. Only further training would
# differ: PyTorch would average the unbiased batch variances into `running_var`, each contribution larger
# by the factor $N/(N-1)$ than ours (in training mode itself both normalize with the biased batch
# variance, so the training outputs and gradients are the same).
# ### END SOLUTION

# %% [markdown]
# **Question 3.** What is $\hat x$ for a batch of $N = 1$, and for $N = 2$? Use this to explain why very
# small mini-batches hurt a network with BN, and why predicting one example at a time in training mode
# is a bug.

# %% [markdown] kind="answer" grade_id="q3_tiny_batches" points=1
# ### BEGIN SOLUTION
# With $N = 1$, $\mu = x$ and $\sigma^2 = 0$, so $\hat x = 0/\sqrt{\epsilon} = 0$ and the layer outputs
# $\beta$ for any input: all information is gone, and a network evaluated in training mode one example at a
# time gives every example the same prediction. With $N = 2$, $x_1 - \mu = -(x_2 - \mu) = (x_1 - x_2)/2$ and
# $\sigma = |x_1 - x_2|/2$, so $\hat x = \pm \sigma/\sqrt{\sigma^2+\epsilon} \approx \pm 1$: only the order of
# the two examples survives, not their values. More generally, small batches give noisy estimates of
# $\mu$ and $\sigma$, so the features the next layer receives change from batch to batch. The measurement
# in section 8 shows where $N = 2$ fails: already in training (poor accuracy on the training images in
# train mode), not only through running averages that mismatch the test-time inputs, since recomputing
# the population statistics does not repair it. Larger batches, or normalizations that do not use the
# batch (layer or group normalization), avoid this.
# ### END SOLUTION

# %% [markdown]
# **Question 4.** The slides also claim that BN regularizes. Where can a regularizing effect come from in
# training mode, and why does it disappear at test time? How would you expect it to depend on the batch
# size?

# %% [markdown] kind="answer" grade_id="q4_bn_regularizes" points=1
# ### BEGIN SOLUTION
# In training mode an example's output depends on the other examples drawn into its mini-batch, through
# $\mu_B$ and $\sigma_B$. Since the batches are random, every example gets a slightly different shift and
# scale at every step: noise injected into the hidden units, a little like dropout, which makes it harder
# to fit individual training examples exactly. At test time the running averages replace the batch
# statistics, so the layer is deterministic and the noise is gone (as with dropout's test mode). The noise
# shrinks roughly like $1/\sqrt{N}$ with the batch size, so the effect is strongest for small batches and
# fades for large ones (and very small batches make the noise so strong that it hurts, as seen above).
# Claim 3 in section 8 isolates exactly this noise with ghost batches; a good answer quotes its verdict
# (resolved or within noise in this run) rather than assuming the effect.
# ### END SOLUTION

# %% [markdown]
# ## 10. Before you submit
#
# Run every public check at once. From a terminal you can do the same with
# `python -m grader check 03_batchnorm.ipynb`.

# %% kind="experiment"
check_all("03_batchnorm")
