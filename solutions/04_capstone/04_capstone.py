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
# # 04 · Capstone: one network with all three tools
#
# *Part of the course kit for the lecture "DNN Discussion 2" (speaker: Isaac). It builds on notebook 01
# (norms and weight penalties), 02 (dropout) and 03 (batch normalization).*
#
# The slides end with all three tools inside one network: every hidden layer is normalised, passed
# through the activation and thinned by dropout, and the loss carries a penalty on the weights. In the
# lecture notebooks each tool was trained on its own; here you put them together, the way they are
# used in practice, and you are the one who writes the network.
#
# In this notebook you will
#
# 1. bring along your dropout (notebook 02) and batch-norm (notebook 03) layers;
# 2. write `mlp_loss`: the class scores of a whole multi-layer perceptron, its loss with an L2 penalty
#    on the weights only, and the gradient of that loss for **every** parameter;
# 3. check those gradients against finite differences of the whole network, with dropout switched on;
# 4. train it on real handwritten digits and compare the three tools, alone and together, against the
#    slides' "high variance".
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
from threadpoolctl import threadpool_limits

from grader.notebook import check, check_all, check_implemented  # noqa: F401 (hidden-test cells)
from grader.toolkit import (
    PALETTE,
    load_digits,
    numerical_gradient,
    quick_mode,
    rel_error,
    style,
)

rng = np.random.default_rng(2024)  # a generator for your own experiments

# %% [markdown]
# ## 1. The network on the slides, made precise
#
# The batch-norm slide writes the whole network in one line:
#
# $$ \sigma\Big(\mathrm{BN}\big(W^L \cdots \sigma(\mathrm{BN}(W^2\, \sigma(\mathrm{BN}(W^1 x + b^1))) + b^2) \cdots + b^L\big)\Big). $$
#
# Read as a recipe it has two slips, and the regularization slide adds a third:
#
# * **Where the bias goes.** In $\mathrm{BN}(W^2 h) + b^2$ the bias $b^2$ landed *outside* the batch
#   norm. Every layer is the same: $\mathrm{BN}(W^l h + b^l)$. (Notebook 03 showed that this $b^l$ is
#   redundant, since BN subtracts the batch mean and takes any constant shift with it; we keep it anyway,
#   as the slides do, and you will see its gradient come out as exactly zero.)
# * **The last layer is different.** A classifier's last layer produces raw class scores for the
#   softmax: no batch norm, no $\sigma$, no dropout there. So the outermost $\sigma(\mathrm{BN}(\cdot))$
#   does not belong in the formula.
# * **The penalty is squared, and it is on the weights.** The slide's $\frac{\lambda}{2}\lVert\theta\rVert_2$
#   should read $\frac{\lambda}{2}\lVert\theta\rVert_2^2$ (the square is what makes the gradient simply
#   $\lambda W$), and $\theta$ there means the weight matrices $\{W^1, \dots, W^L\}$ only. Biases, and
#   batch norm's $\gamma$ and $\beta$, are not penalised (question 1 at the end asks why).
#
# Dropout, finally, acts on a layer's *outputs*: we put it right after each hidden activation, so the next
# layer sees a randomly thinned set of inputs. With $h_0 = X$ (shape $(N, D)$, one example per row),
# $\sigma = \mathrm{ReLU}$, and $L$ layers, the network computes for every hidden layer $l = 1, \dots, L-1$
#
# $$ a_l = h_{l-1} W_l + b_l, \qquad z_l = \mathrm{BN}_{\gamma_l, \beta_l}(a_l), \qquad r_l = \max(0, z_l), \qquad h_l = \mathrm{dropout}_p(r_l), $$
#
# then the scores $s = h_{L-1} W_L + b_L$ of shape $(N, C)$, and the objective
#
# $$ J = \underbrace{-\frac{1}{N} \sum_{n=1}^{N} \log \frac{e^{s_{n, y_n}}}{\sum_{k} e^{s_{nk}}}}_{\text{data loss: mean softmax cross-entropy}} \; + \; \underbrace{\frac{\lambda}{2} \sum_{l=1}^{L} \lVert W_l \rVert_F^2}_{\text{L2 penalty, weights only}} . $$
#
# (Rows are examples, so the code writes $h W$ where the slides write $W x$.)
#
# ### Train mode and test mode
#
# Two of the three tools behave differently while training and while evaluating, and the network has to
# tell them which is which:
#
# | | `mode="train"` | `mode="test"` |
# |---|---|---|
# | dropout | drops each unit with probability $p$, scales the rest by $1/(1-p)$ | the identity: every unit connected |
# | batch norm | normalises with the batch's mean and variance, updates the running averages | normalises with the running averages, changes nothing |
# | L2 penalty | part of the loss being minimised | not needed to predict (it is not part of the scores) |
#
# Getting the mode wrong does not crash anything, which is what makes it dangerous: a network evaluated
# in training mode still prints an accuracy, just a noisy one that depends on which examples share a batch.

# %% [markdown]
# ## 2. Bring your layers
#
# Paste your `dropout_forward` and `dropout_backward` from notebook 02, and your `batchnorm_forward` and
# `batchnorm_backward` from notebook 03, into the two cells below (the versions that passed their checks;
# your `batchnorm_backward_alt` is just as good, renamed `batchnorm_backward`). Their docstrings repeat the
# contract, so you can compare.
#
# Why paste instead of import? The grader runs every notebook on its own, in a sandbox that has NumPy and
# nothing else: this notebook has to carry all the code it needs. And the kit does not ship its own
# solutions of notebooks 02 and 03, so this is *your* network through and through.

# %% kind="solution"
# reference: dropout_forward


# reference: dropout_backward

# %% kind="solution"
# reference: batchnorm_forward


# reference: batchnorm_backward

# %% [markdown]
# This check runs a few of notebook 02's and 03's cases on what you pasted. If it fails, go back to that
# notebook: its checks explain the problem in much more detail.

# %% kind="check"
check("capstone_layers")

# %% [markdown]
# ## 3. Exercise: the whole network
#
# Implement `mlp_loss`. Its docstring is the complete specification; here is what matters most.
#
# * **Which layers.** The number of layers $L$ is the number of `"W…"` keys in `params`. The network has
#   batch norm exactly when `params` has a key `"gamma1"`, and dropout exactly when `p_drop > 0`.
# * **Call your layers with the mode.** Pass `mode` to every `dropout_forward` call, and set
#   `bn_param["mode"] = mode` in each of the `bn_params` dictionaries you are given (one per hidden
#   layer) before calling `batchnorm_forward` with it. Use those very dictionaries: they carry the running
#   statistics from training to test time.
# * **One generator.** Give every dropout layer the same `rng`. Then a generator made from a fixed seed
#   gives the same masks on every call, which is what makes the gradient check of section 4 possible.
# * **Scores only without labels.** With `y=None`, return the scores $s$ of shape $(N, C)$. With labels,
#   return `(loss, grads)`, where `grads` is a dict with exactly the keys of `params`.
# * **Affine, ReLU and softmax are yours too**, written inline with NumPy: for ReLU the backward pass keeps
#   the gradient where $z > 0$; for the softmax, subtract each row's maximum score before `np.exp`, so that
#   large scores cannot overflow (it cancels in the fraction).
# * **Backward in reverse order**, reusing what the forward pass kept for each layer (its input $h_{l-1}$,
#   the ReLU mask, the dropout and batch-norm caches):
#
# $$ \frac{\partial J}{\partial s} = \frac{P - Y}{N}, \qquad
#    \frac{\partial J}{\partial W_l} = h_{l-1}^\top \frac{\partial J}{\partial a_l} + \lambda W_l, \qquad
#    \frac{\partial J}{\partial b_l} = \sum_{n} \Big(\frac{\partial J}{\partial a_l}\Big)_{n,:}, \qquad
#    \frac{\partial J}{\partial h_{l-1}} = \frac{\partial J}{\partial a_l}\, W_l^\top, $$
#
# where $P$ holds the softmax probabilities and $Y$ the one-hot labels. The penalty adds $\lambda W_l$ to
# the weights' gradients, and nothing to the biases, $\gamma$ or $\beta$.

# %% [markdown]
# **Stuck?** Open the hints one at a time; each gives a little more away.
#
# <details><summary>Hint 1 — the idea</summary>
#
# Write the forward pass as a loop over the hidden layers that appends one tuple per layer to a list of
# caches: everything the backward step of that layer will need. After the loop, the last affine layer gives
# the scores. The backward pass is a second loop over the same list, from the last hidden layer to the first,
# undoing the four steps in reverse order: dropout, ReLU, batch norm, affine.
# </details>
#
# <details><summary>Hint 2 — the equations</summary>
#
# Loss: with $s^*_n = \max_k s_{nk}$, $\log p_{nk} = s_{nk} - s^*_n - \log \sum_j e^{s_{nj} - s^*_n}$ and
# $J = -\frac{1}{N}\sum_n \log p_{n, y_n} + \frac{\lambda}{2}\sum_l \lVert W_l \rVert_F^2$. Backward, for
# $l = L-1, \dots, 1$, starting from $\delta = \partial J / \partial h_l$ (which the layer above hands down):
#
# $$ \frac{\partial J}{\partial r_l} = \frac{m_l \odot \delta}{1-p}, \qquad
#    \frac{\partial J}{\partial z_l} = \frac{\partial J}{\partial r_l} \odot \mathbb{1}[z_l > 0], \qquad
#    \Big(\frac{\partial J}{\partial a_l}, \frac{\partial J}{\partial \gamma_l}, \frac{\partial J}{\partial \beta_l}\Big)
#    = \mathrm{BN\,backward}\Big(\frac{\partial J}{\partial z_l}\Big), $$
#
# where $m_l$ is that layer's dropout mask (the first step is your `dropout_backward`, the last your
# `batchnorm_backward`), then $\partial J/\partial W_l$, $\partial J/\partial b_l$ and $\partial J/\partial h_{l-1}$ as in the
# formulas above. The output layer starts it all with $\partial J/\partial W_L = h_{L-1}^\top (P - Y)/N + \lambda W_L$
# and $\partial J / \partial h_{L-1} = \frac{P - Y}{N} W_L^\top$.
# </details>
#
# <details><summary>Hint 3 — shapes</summary>
#
# With widths $d_0 = D, d_1, \dots, d_L = C$: $h_{l-1}$ is $(N, d_{l-1})$, $W_l$ is $(d_{l-1}, d_l)$, and
# $a_l$, $z_l$, $r_l$, $h_l$ are all $(N, d_l)$; $b_l$, $\gamma_l$, $\beta_l$ and their gradients are
# $(d_l,)$. A sketch of one hidden layer, forward: `a = h @ W + b` (N, d_l);
# `z, bn_cache = batchnorm_forward(a, gamma, beta, bn_param)`; `r = np.maximum(z, 0)`;
# `h, drop_cache = dropout_forward(r, p_drop, mode, rng)`. Backward: `dr = dropout_backward(dh, drop_cache)`;
# `dz = dr * (z > 0)`; `da, dgamma, dbeta = batchnorm_backward(dz, bn_cache)`;
# `dW = h_prev.T @ da + lam * W` ($(d_{l-1}, d_l)$ like $W_l$); `db = da.sum(axis=0)` ($(d_l,)$);
# `dh = da @ W.T` ($(N, d_{l-1})$ like $h_{l-1}$). `dscores` is $(N, C)$. The layer index in the keys starts
# at 1 (`"W1"`), list indices at 0.
# </details>

# %% kind="solution"
# reference: mlp_loss

# %% [markdown]
# ### Check your network
#
# The first check looks at the scores: in test mode (dropout off, batch norm with the running statistics
# you pass in, nothing depending on the rest of the batch) and in train mode. The next two compare the loss
# and every gradient with the expected ones, with dropout off so that nothing is random.

# %% kind="check"
check("capstone_scores")

# %% kind="check"
check("capstone_loss")

# %% kind="check"
check("capstone_gradients")

# %% [markdown]
# ## 4. A gradient check of the whole network, dropout included
#
# The checks above kept dropout off, because your dropout may draw its masks differently from anyone
# else's. But there is a check that needs no one else's masks: your own loss. The derivative of $J$ with
# respect to one parameter $\theta_i$ is approximately
#
# $$ \frac{\partial J}{\partial \theta_i} \approx \frac{J(\theta + h e_i) - J(\theta - h e_i)}{2h}, $$
#
# and that must agree with your `grads`. Dropout makes $J$ random, but with a generator made from the
# **same seed** for every evaluation, every call draws the same masks, and $J$ becomes an ordinary function
# of the parameters. The cell below does this for every entry of every parameter of a small network with
# batch norm ($\gamma \ne 1$), dropout ($p = 0.3$) and the penalty ($\lambda = 0.1$), using
# `numerical_gradient` from the toolkit. A relative error below $10^{-7}$ means the two agree to about as
# many digits as finite differences can give.

# %% kind="experiment"
gc = np.random.default_rng(0)
dims_gc = [5, 6, 5, 4]  # D = 5 inputs, hidden widths 6 and 5, C = 4 classes
X_gc = 5.0 + 3.0 * gc.standard_normal((8, dims_gc[0]))  # N = 8, shifted and scaled
y_gc = gc.integers(0, dims_gc[-1], size=8)
params_gc = {}
for layer in range(1, len(dims_gc)):
    fan_in, fan_out = dims_gc[layer - 1], dims_gc[layer]
    params_gc[f"W{layer}"] = gc.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
    params_gc[f"b{layer}"] = gc.uniform(-1.0, 1.0, fan_out)
    if layer < len(dims_gc) - 1:
        params_gc[f"gamma{layer}"] = gc.uniform(0.5, 2.0, fan_out) * gc.choice([-1.0, 1.0], fan_out)
        params_gc[f"beta{layer}"] = gc.uniform(-1.0, 1.0, fan_out)
bn_gc = [{"mode": "train"} for _ in dims_gc[1:-1]]
MASK_SEED = 7


def loss_fixed_masks(_=None):
    """J at the current params_gc, with the same dropout masks at every call."""
    return mlp_loss(
        params_gc,
        X_gc,
        y_gc,
        p_drop=0.3,
        lam=0.1,
        bn_params=bn_gc,
        rng=np.random.default_rng(MASK_SEED),
    )[0]


_, grads_gc = mlp_loss(
    params_gc,
    X_gc,
    y_gc,
    p_drop=0.3,
    lam=0.1,
    bn_params=bn_gc,
    rng=np.random.default_rng(MASK_SEED),
)
rows, worst = [], 0.0
for key, value in params_gc.items():
    # numerical_gradient changes params_gc[key] in place, entry by entry, and restores it
    numeric = numerical_gradient(loss_fixed_masks, value)
    if np.abs(numeric).max() < 1e-8:  # a gradient that is exactly 0: compare absolute values
        verdict = f"zero: largest \\|numeric\\| {np.abs(numeric).max():.0e}, \\|yours\\| {np.abs(grads_gc[key]).max():.0e}"
    else:
        error = rel_error(grads_gc[key], numeric)
        worst = max(worst, error)
        verdict = f"{error:.1e}"
    rows.append(f"| `{key}` | {value.shape} | {np.abs(grads_gc[key]).max():.3f} | {verdict} |")

# the same comparison for W1 when every call draws new masks (no fixed seed)
numeric_random = numerical_gradient(
    lambda _: mlp_loss(params_gc, X_gc, y_gc, p_drop=0.3, lam=0.1, bn_params=bn_gc)[0],
    params_gc["W1"],
)
display(
    Markdown(
        "| parameter | shape | largest \\|gradient\\| | relative error (yours vs finite differences) |\n"
        "|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"Largest relative error over the non-zero gradients: **{worst:.1e}**. "
        "The biases `b1` and `b2` come right before batch norm, which subtracts every constant shift "
        "again: their true gradient is exactly zero, and both sides only show round-off there (a relative "
        "error between two round-off values would mean nothing, so the table compares their sizes).\n\n"
        "Without the fixed seed, every evaluation of $J$ draws new masks and finite differences measure "
        f"noise: the relative error for `W1` becomes **{rel_error(grads_gc['W1'], numeric_random):.1e}**."
    )
)

# %% [markdown]
# The grader runs its own version of this check on your function: along a random direction $v$ in each
# parameter array it compares $\sum_i (\partial J/\partial\theta_i)\, v_i$ from your `grads` with
# $\big(J(\theta + h v) - J(\theta - h v)\big)/2h$ from your loss, always with generators made from one
# seed. (Its networks are built so that no ReLU input ever crosses zero: a finite difference across the kink
# of a ReLU is not a derivative. In the cell above that can happen too, if rarely; a single large error
# from one entry is usually such a kink.)

# %% kind="check"
check("capstone_gradcheck_dropout")

# %% [markdown]
# ### Hidden checks
#
# The grader also runs your `mlp_loss` on networks you have not seen: other depths, widths and batch sizes,
# penalties and dropout rates. There is nothing to do here; if the visible checks pass, these should too.

# %% kind="check"
check("capstone_hidden_forward")

# %% kind="check"
check("capstone_hidden_backward")

# %% [markdown]
# ## 5. Study: the three tools against high variance, alone and together
#
# Now the network trains. As in notebook 02 we provoke the slides' **high variance** on purpose: only
# **200** training images of handwritten digits (scikit-learn's copy of the UCI *Optical Recognition of
# Handwritten Digits* data, 8×8 pixels) and 500 for validation, with a network far larger than 200 images call for:
# 64 → 128 → 128 → 10. Five settings, each trained with the same recipe (mini-batch SGD with momentum
# 0.9, learning rate 0.05, batches of 50, 100 epochs, He initialisation):
#
# | setting | $\lambda$ | `p_drop` | batch norm |
# |---|---|---|---|
# | baseline | 0 | 0 | no |
# | L2 | 0.01 | 0 | no |
# | dropout | 0 | 0.2 | no |
# | batch norm | 0 | 0 | yes |
# | all three | 0.01 | 0.2 | yes |
#
# The loop below is all the training code there is: *your* `mlp_loss` gives the loss and the gradients, and
# one line per parameter takes the momentum step. Accuracies are measured in test mode. Each setting is
# trained with five seeds; a seed fixes the initial weights, the order of the mini-batches and the dropout
# masks, and the same seed is used for every setting, so the settings can be compared **seed by seed**
# (a paired comparison: the differences between settings vary much less than the runs themselves).


# %% kind="experiment"
def accuracy(params, X, y, bn_params, p_drop):
    """Fraction of correct predictions, in test mode."""
    scores = mlp_loss(params, X, mode="test", p_drop=p_drop, bn_params=bn_params)
    return float(np.mean(scores.argmax(axis=1) == y))


def train(data, hidden, *, lam=0.0, p_drop=0.0, bn=False, epochs=100, seed=0, eval_every=5):
    """Mini-batch SGD with momentum on mlp_loss; returns final accuracies and learning curves."""
    lr, momentum, batch_size = 0.05, 0.9, 50
    init = np.random.default_rng(seed)  # initial weights, then the mini-batch order
    masks = np.random.default_rng(seed + 1)  # every dropout mask of the run
    dims = [data.X_train.shape[1], *hidden, data.classes]
    params, bn_params = {}, []
    for layer in range(1, len(dims)):
        fan_in, fan_out = dims[layer - 1], dims[layer]
        params[f"W{layer}"] = np.sqrt(2.0 / fan_in) * init.standard_normal((fan_in, fan_out))
        params[f"b{layer}"] = np.zeros(fan_out)
        if bn and layer < len(dims) - 1:
            params[f"gamma{layer}"], params[f"beta{layer}"] = np.ones(fan_out), np.zeros(fan_out)
            bn_params.append(
                {
                    "mode": "train",
                    "eps": 1e-3,
                    "momentum": 0.9,
                    "running_mean": np.zeros(fan_out),
                    "running_var": np.ones(fan_out),
                }
            )
    bn_params = bn_params or None
    velocity = {key: np.zeros_like(value) for key, value in params.items()}
    curve, epoch_loss = [], []
    n = len(data.y_train)
    for epoch in range(1, epochs + 1):
        order = init.permutation(n)
        losses = []
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            loss, grads = mlp_loss(
                params,
                data.X_train[batch],
                data.y_train[batch],
                p_drop=p_drop,
                lam=lam,
                mode="train",
                bn_params=bn_params,
                rng=masks,
            )
            for key in params:
                velocity[key] = momentum * velocity[key] - lr * grads[key]
                params[key] += velocity[key]
            losses.append(loss)
        epoch_loss.append(np.mean(losses))  # the objective J in train mode, averaged over the epoch
        if epoch % eval_every == 0 or epoch == epochs:
            train_acc = accuracy(params, data.X_train, data.y_train, bn_params, p_drop)
            val_acc = accuracy(params, data.X_val, data.y_val, bn_params, p_drop)
            curve.append((epoch, train_acc, val_acc))
    return {
        "train_acc": curve[-1][1],
        "val_acc": curve[-1][2],
        "curve": np.array(curve),
        "epoch_loss": np.array(epoch_loss),
        "penalty": 0.5 * lam * sum(np.sum(v**2) for k, v in params.items() if k.startswith("W")),
    }


data = load_digits(n_train=200, n_val=500, seed=0)
quick = quick_mode()  # True under nbgrader's own autograde: shorter runs, same code
epochs = 20 if quick else 100
seeds = [0] if quick else [0, 1, 2, 3, 4]
settings = {
    "baseline": {},
    "L2": {"lam": 0.01},
    "dropout": {"p_drop": 0.2},
    "batch norm": {"bn": True},
    "all three": {"lam": 0.01, "p_drop": 0.2, "bn": True},
}
runs = {}
with threadpool_limits(limits=1, user_api="blas"):  # small matrices: one BLAS thread is fastest
    for name, setting in settings.items():
        for seed in seeds:
            runs[name, seed] = train(data, [128, 128], epochs=epochs, seed=seed, **setting)

final = {
    name: np.array([[runs[name, s]["train_acc"], runs[name, s]["val_acc"]] for s in seeds])
    for name in settings
}


def mean_and_error(values):
    """Mean and its standard error over the seeds."""
    values = np.asarray(values)
    return values.mean(), values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0


base_val = final["baseline"][:, 1]
rows = []
for name in settings:
    train_mean, _ = mean_and_error(final[name][:, 0])
    val_mean, val_se = mean_and_error(final[name][:, 1])
    if name == "baseline":
        paired = "—"
    else:
        change, change_se = mean_and_error(final[name][:, 1] - base_val)
        wins = int(np.sum(final[name][:, 1] > base_val))
        paired = f"{change:+.1%} ± {change_se:.1%} (higher in {wins} of {len(seeds)})"
    rows.append(
        f"| {name} | {train_mean:.1%} | {val_mean:.1%} ± {val_se:.1%} | {train_mean - val_mean:.1%} | {paired} |"
    )
display(
    Markdown(
        f"Final accuracies over {len(seeds)} seed(s), mean ± standard error of the mean; the last column "
        "compares each setting with the baseline seed by seed.\n\n"
        "| setting | train | validation | gap | validation vs baseline |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
)

# %% kind="experiment"
names = list(settings)
fig, (ax_curve, ax_seeds) = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
lowest = 1.0
for i, name in enumerate(names):
    curve = runs[name, seeds[0]]["curve"]
    ax_curve.plot(curve[:, 0], curve[:, 2], label=name, **style(i, len(curve)))
    lowest = min(lowest, curve[:, 2].min())
curve = runs["baseline", seeds[0]]["curve"]
ax_curve.plot(
    curve[:, 0], curve[:, 1], color="0.35", linestyle=(0, (1, 1)), label="baseline, training"
)
ax_curve.set(
    title=f"learning curves (seed {seeds[0]})",
    xlabel="epoch",
    ylabel="accuracy",
    ylim=(lowest - 0.06, 1.005),
)
ax_curve.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
ax_curve.legend(frameon=False, fontsize="small", ncols=3, loc="lower right")

positions = np.arange(len(names))
for s_index in range(len(seeds)):  # one grey line per seed: the comparison is paired
    ax_seeds.plot(
        positions,
        [final[name][s_index, 1] for name in names],
        color="0.75",
        marker="o",
        zorder=1,
        label="one seed" if s_index == 0 else None,
    )
ax_seeds.errorbar(
    positions,
    [final[name][:, 1].mean() for name in names],
    yerr=[mean_and_error(final[name][:, 1])[1] for name in names],
    color=PALETTE[0],
    marker="s",
    capsize=4,
    linewidth=2,
    label="mean ± standard error",
    zorder=2,
)
ax_seeds.set(
    title=f"final validation accuracy, {len(seeds)} seed(s)",
    xticks=positions,
    xticklabels=names,
    ylabel="validation accuracy",
)
ax_seeds.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
ax_seeds.legend(frameon=False, loc="lower right")
plt.show()

# %% kind="experiment"
gaps = {name: final[name][:, 0].mean() - final[name][:, 1].mean() for name in names}
best = max(names[1:], key=lambda name: final[name][:, 1].mean())
single_best = max(names[1:4], key=lambda name: final[name][:, 1].mean())
combined_vs_best, combined_vs_best_se = mean_and_error(
    final["all three"][:, 1] - final[single_best][:, 1]
)
display(
    Markdown(
        f"The baseline fits its 200 training images to **{final['baseline'][:, 0].mean():.1%}** but reaches "
        f"only **{base_val.mean():.1%}** on the validation images, a gap of **{gaps['baseline']:.1%}**: the "
        "high variance of the slides. Every setting still fits the training set almost perfectly "
        f"(lowest mean training accuracy: {min(final[name][:, 0].mean() for name in names):.1%}), so what "
        "changes is how well the fit carries over to new images. The best single tool here is "
        f"**{single_best}** (validation {final[single_best][:, 1].mean():.1%}, gap {gaps[single_best]:.1%}). "
        + (
            f"All three together reach {final['all three'][:, 1].mean():.1%} "
            f"({combined_vs_best:+.1%} ± {combined_vs_best_se:.1%} against {single_best} alone, seed by "
            "seed): the effects do not add up. Each strength was picked for its tool alone; together "
            "they regularise more than each one did, and would have to be tuned again as a combination."
            if best != "all three"
            else f"All three together do best, {final['all three'][:, 1].mean():.1%}, but by less than "
            "the sum of the single effects: the tools partly do the same job."
        )
        + "\n\n"
        f"Keep the spread in mind: the baseline's validation accuracy varies by {base_val.std(ddof=1) if len(base_val) > 1 else 0:.1%} "
        "(standard deviation) from seed to seed, the size of several of the differences in the table. "
        "That is why the comparison is made seed by seed and over several seeds; with five seeds, a "
        "difference smaller than about two standard errors is not a result."
    )
)

# %% [markdown]
# ### What each tool does to training itself
#
# Accuracy hides how differently the five networks train. Below is the objective each one minimises,
# $J$ in train mode (data loss plus the penalty, with dropout's masks and batch norm's batch statistics),
# averaged over every epoch, for the first seed.

# %% kind="experiment"
fig, ax = plt.subplots(figsize=(8, 3.8), constrained_layout=True)
for i, name in enumerate(names):
    epoch_loss = runs[name, seeds[0]]["epoch_loss"]
    ax.plot(np.arange(1, len(epoch_loss) + 1), epoch_loss, label=name, **style(i, len(epoch_loss)))
ax.set(
    yscale="log",
    xlabel="epoch",
    ylabel="training objective J (train mode)",
    title=f"the objective being minimised (seed {seeds[0]}, mean per epoch)",
)
ax.legend(frameon=False, fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
plt.show()

last = {name: runs[name, seeds[0]]["epoch_loss"][-10:].mean() for name in names}
display(
    Markdown(
        "Averaged over the last ten epochs, the baseline's objective is down to "
        f"**{last['baseline']:.2g}**: it has "
        "memorised its 200 images. Dropout keeps it about "
        f"{last['dropout'] / last['baseline']:.0f} times higher (**{last['dropout']:.2g}**), and "
        "noisy: every step trains a different thinned network, which never fits as well as the whole "
        f"one. Batch norm's objective (**{last['batch norm']:.2g}**) is noisy too: each example is "
        "normalised with the statistics of whichever batch it lands in, a noise of its own (one reason "
        f"batch norm regularises a little). With L2 the objective stays far higher (**{last['L2']:.2g}**, "
        f"of which the penalty at the end is {runs['L2', seeds[0]]['penalty']:.2g}): the network now pays for "
        f"large weights, and all three together end at **{last['all three']:.2g}**. A higher training "
        "objective is not a worse network: the validation accuracies above are what counts."
    )
)


# %% [markdown]
# ## 6. Questions
#
# Answer in a few sentences in the cells below; these are graded by hand.
#
# **Question 1.** The penalty in `mlp_loss` covers the weight matrices only. Why are the biases left out,
# and why batch norm's $\gamma$ and $\beta$?

# %% [markdown] kind="answer" grade_id="q1_what_to_penalise" points=1
# ### BEGIN SOLUTION
# The penalty is there to limit how strongly the output can react to the inputs, and that is set by the
# weights: a large weight amplifies small changes of an input. A bias only shifts a unit, the same for every
# example; it does not make the network more sensitive to its inputs, there are few biases (no real capacity
# to overfit with), and pulling them towards 0 would only push every unit's threshold towards the origin,
# which can cost fit without reducing variance. $\gamma$ and $\beta$ are batch norm's own scale and shift of
# each normalised unit: $\beta$ plays the role of the (redundant) bias, and shrinking $\gamma$ towards 0 would
# fight the normalisation (it would scale the unit's output towards zero instead of letting the network
# choose its spread). In practice (PyTorch's `weight_decay`, Keras's regularisers) they are excluded for the
# same reasons.
# ### END SOLUTION

# %% [markdown]
# **Question 2.** Your gradient check in section 4 called the loss with a generator made from the same seed
# every time. Why is that necessary, and what does such a check *not* tell you about your dropout?

# %% [markdown] kind="answer" grade_id="q2_fixed_seed_check" points=1
# ### BEGIN SOLUTION
# Finite differences compare $J(\theta + h e_i)$ with $J(\theta - h e_i)$; if the two calls used different
# masks, their difference would be dominated by the change of mask, not by the change of $\theta_i$ (the
# section's last line shows the error it makes). With one seed every call draws the same masks, so $J$ is
# a deterministic function and its derivative is what the backward pass must compute. The check therefore
# only tests that the backward pass matches the forward pass *for one fixed mask*. It cannot tell whether the
# masks themselves are right: whether a unit is dropped with probability $p$ (and not $1-p$), whether every
# example and every call gets a new mask, or whether test mode switches dropout off. Those need the
# statistical checks of notebook 02 and the test-mode checks of this one.
# ### END SOLUTION

# %% [markdown]
# **Question 3.** In a layer with batch norm, $\mathrm{BN}(h\,(cW)) = \mathrm{BN}(h W)$ for any $c > 0$
# (up to $\epsilon$): the layer's output does not depend on the scale of its weights. What, then, can the L2
# penalty on such a $W$ still do?

# %% [markdown] kind="answer" grade_id="q3_l2_with_bn" points=1
# ### BEGIN SOLUTION
# It cannot make the function simpler: shrinking $W$ leaves the layer's output (and the data loss) unchanged,
# so the penalty on a weight matrix followed by batch norm does not limit what the network computes. What it
# changes is the optimisation. Because the output is scale-invariant, the gradient with respect to $W$ is
# orthogonal to $W$ and shrinks like $1/\lVert W\rVert$; the penalty keeps $\lVert W\rVert$ small, so the same
# learning rate makes larger *relative* steps (a larger effective learning rate) and training does not slow
# down as the weights grow. The regularising effect in such networks comes from that noisier, faster
# optimisation, from batch norm's own batch noise, and from the penalty on the layers without batch norm
# (here the output layer), not from a smaller function class.
# ### END SOLUTION

# %% [markdown]
# **Question 4.** Look at your table and plot in section 5. Which tool closed the gap between training and
# validation accuracy most, and why might "all three" not be the best? If you had one more hour of compute,
# what would you try next?

# %% [markdown] kind="answer" grade_id="q4_read_the_study" points=1
# ### BEGIN SOLUTION
# A good answer quotes the measured numbers (they depend on the run), for example: all settings reach about
# 100 % training accuracy, and the penalty or dropout raise validation accuracy by one to a few points over
# the baseline, more than the spread between seeds; batch norm alone helps less here (it mainly speeds up
# training, and its regularising batch noise is small with batches of 50). The combination is not the sum of
# its parts: each strength ($\lambda = 0.01$, $p = 0.2$) was chosen for the tool alone, together they
# regularise more strongly, and with batch norm the penalty on the hidden weights acts differently (question 3).
# Next steps: tune $\lambda$ and $p$ for the combination on the validation set (a small grid, several seeds),
# train longer or with a learning-rate schedule, and finally report the chosen setting once on the untouched
# test split, since the validation set has now been used to choose.
# ### END SOLUTION

# %% [markdown]
# ## 7. Before you submit
#
# Run every public check at once. From a terminal you can do the same with
# `python -m grader check 04_capstone.ipynb`.

# %% kind="experiment"
check_all("04_capstone")
