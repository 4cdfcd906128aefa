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
# The slides present the three tools one at a time. In practice they are combined in one network:
# every hidden layer is normalized, passed through the activation and thinned by dropout, and the loss
# carries a penalty on the weights. In the lecture notebooks each tool was trained on its own; here you
# put them together, and you are the one who writes the network.
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
    describe_difference,
    full_mode,
    load_digits,
    mean_se,
    needs,
    numerical_gradient,
    paired_difference,
    quick_mode,
    rel_error,
    replicates,
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
#   batch norm's $\gamma$ and $\beta$, are not penalized (question 1 at the end asks why).
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
# | batch norm | normalizes with the batch's mean and variance, updates the running averages | normalizes with the running averages, changes nothing |
# | L2 penalty | part of the loss being minimized | not needed to predict (it is not part of the scores) |
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
# $(d_l,)$. Every gradient has the shape of the quantity it belongs to. So $\partial J/\partial W_l$,
# $(d_{l-1}, d_l)$, can only come from the transposed layer input, $(d_{l-1}, N)$, times
# $\partial J/\partial a_l$, $(N, d_l)$; $\partial J/\partial b_l$ and the batch-norm gradients are sums over
# the $N$ rows; $\partial J/\partial h_{l-1}$, $(N, d_{l-1})$, is $\partial J/\partial a_l$ times the
# transposed $W_l$. The ReLU's backward is an element-wise mask of shape $(N, d_l)$, and
# $\partial J/\partial s$ is $(N, C)$. The keys count layers from 1 (`"W1"`), a Python list from 0: the
# cache of layer $l$ sits at index $l-1$.
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
with needs(
    dropout_forward="section 2",
    dropout_backward="section 2",
    batchnorm_forward="section 2",
    batchnorm_backward="section 2",
    mlp_loss="section 3",
):
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
            params_gc[f"gamma{layer}"] = gc.uniform(0.5, 2.0, fan_out) * gc.choice(
                [-1.0, 1.0], fan_out
            )
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
# Handwritten Digits* data, 8×8 pixels), 500 for validation and the remaining 1,097 as a held-out test
# split, with a network far larger than 200 images call for: 64 → 128 → 128 → 10. Five settings, each
# trained with the same recipe (mini-batch SGD with momentum 0.9, learning rate 0.05, batches of 50,
# He initialization; 100 epochs, 200 with `FULL=1`):
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
# trained in several **repetitions** (three by default, five with `FULL=1`); repetition $k$ uses data split
# $k$ and seed $k$ (initial weights, order of the mini-batches, dropout masks), the same for every setting,
# so the settings can be compared **repetition by repetition** (a paired comparison: the differences
# between settings vary much less than the runs themselves). The strengths $\lambda = 0.01$ and
# $p = 0.2$ are fixed in advance, not tuned here, so the test split can report every setting.


# %% kind="experiment"
with needs(
    dropout_forward="section 2",
    dropout_backward="section 2",
    batchnorm_forward="section 2",
    batchnorm_backward="section 2",
    mlp_loss="section 3",
):

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
                params[f"gamma{layer}"], params[f"beta{layer}"] = (
                    np.ones(fan_out),
                    np.zeros(fan_out),
                )
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
            epoch_loss.append(
                np.mean(losses)
            )  # the objective J in train mode, averaged over the epoch
            if epoch % eval_every == 0 or epoch == epochs:
                train_acc = accuracy(params, data.X_train, data.y_train, bn_params, p_drop)
                val_acc = accuracy(params, data.X_val, data.y_val, bn_params, p_drop)
                curve.append((epoch, train_acc, val_acc))
        curve = np.array(curve)
        return {
            "train_acc": curve[-LAST:, 1].mean(),  # the mean of the last evaluations
            "val_acc": curve[-LAST:, 2].mean(),
            "test_acc": accuracy(params, data.X_test, data.y_test, bn_params, p_drop),
            "curve": curve,
            "epoch_loss": np.array(epoch_loss),
            "penalty": 0.5
            * lam
            * sum(np.sum(v**2) for k, v in params.items() if k.startswith("W")),
            "params": params,
            "bn_params": bn_params,
        }

    quick = quick_mode()  # True under nbgrader's own autograde: shorter runs, same code
    FULL = full_mode()  # FULL=1: five repetitions of 200 epochs (about 2 minutes)
    epochs = 20 if quick else (200 if FULL else 100)
    reps = replicates(1 if quick else (5 if FULL else 3))  # (data split, seed) pairs
    LAST = 3  # accuracies: the mean of the last 3 evaluations (every 5 epochs)
    splits = {split: load_digits(n_train=200, n_val=500, seed=split) for split, _ in reps}
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
            for split, seed in reps:
                runs[name, split] = train(
                    splits[split], [128, 128], epochs=epochs, seed=seed, **setting
                )

    def per_rep(name, key):
        """One value per repetition (train_acc, val_acc or test_acc)."""
        return np.array([runs[name, split][key] for split, _ in reps])

    names = list(settings)
    rows = []
    for name in names:
        train_mean = per_rep(name, "train_acc").mean()
        val_mean = per_rep(name, "val_acc").mean()
        test_mean, test_se = mean_se(per_rep(name, "test_acc"))
        versus = (
            "—"
            if name == "baseline"
            else describe_difference(
                paired_difference(per_rep(name, "test_acc"), per_rep("baseline", "test_acc"))
            )
        )
        se_text = f" ± {test_se:.1%}" if len(reps) > 1 else ""
        rows.append(
            f"| {name} | {train_mean:.1%} | {val_mean:.1%} | {test_mean:.1%}{se_text} | "
            f"{train_mean - val_mean:.1%} | {versus} |"
        )
    display(
        Markdown(
            f"Accuracies over {len(reps)} repetition(s) (each its own data split and seed); train and "
            f"validation are the mean of the last {LAST} evaluations, test (mean ± standard error) is "
            "measured once at the end on the 1,097 held-out images. The last column compares each "
            "setting with the baseline on the test split, repetition by repetition.\n\n"
            "| setting | train | validation | test | gap (train − validation) | test vs baseline |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(rows)
        )
    )

# %% kind="experiment"
with needs(
    dropout_forward="section 2",
    dropout_backward="section 2",
    batchnorm_forward="section 2",
    batchnorm_backward="section 2",
    mlp_loss="section 3",
):
    fig, (ax_curve, ax_reps) = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    first = reps[0][0]
    lowest = 1.0
    for i, name in enumerate(names):
        curve = runs[name, first]["curve"]
        ax_curve.plot(curve[:, 0], curve[:, 2], label=name, **style(i, len(curve)))
        lowest = min(lowest, curve[len(curve) // 4 :, 2].min())
    curve = runs["baseline", first]["curve"]
    ax_curve.plot(
        curve[:, 0], curve[:, 1], color="0.35", linestyle=(0, (1, 1)), label="baseline, training"
    )
    ax_curve.set(
        title=f"validation accuracy (split {first})",
        xlabel="epoch",
        ylabel="accuracy",
        ylim=(lowest - 0.03, 1.005),
    )
    ax_curve.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax_curve.legend(frameon=False, fontsize="small", ncols=3, loc="lower right")

    positions = np.arange(len(names))
    for r_index in range(len(reps)):  # one grey line per repetition: the comparison is paired
        ax_reps.plot(
            positions,
            [per_rep(name, "test_acc")[r_index] for name in names],
            color="0.75",
            marker="o",
            zorder=1,
            label="one repetition" if r_index == 0 else None,
        )
    ax_reps.plot(
        positions,
        [per_rep(name, "test_acc").mean() for name in names],
        color=PALETTE[0],
        marker="s",
        linewidth=2,
        label="mean",
        zorder=2,
    )
    ax_reps.set(
        title=f"test accuracy, {len(reps)} repetition(s)",
        xticks=positions,
        xticklabels=names,
        ylabel="test accuracy",
    )
    ax_reps.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax_reps.legend(frameon=False, loc="lower right")
    plt.show()

# %% kind="experiment"
with needs(
    dropout_forward="section 2",
    dropout_backward="section 2",
    batchnorm_forward="section 2",
    batchnorm_backward="section 2",
    mlp_loss="section 3",
):
    test = {name: per_rep(name, "test_acc") for name in names}
    versus_base = {
        name: paired_difference(test[name], test["baseline"])
        for name in names
        if name != "baseline"
    }
    helped = [name for name, d in versus_base.items() if d["resolved"] and d["mean"] > 0]
    single = ["L2", "dropout", "batch norm"]
    best_single = max(single, key=lambda name: per_rep(name, "val_acc").mean())  # on validation
    combined = paired_difference(test["all three"], test[best_single])
    moving = {  # is validation accuracy still rising over the last quarter of training?
        name: np.mean(
            [
                runs[name, split]["curve"][-1, 2]
                - runs[name, split]["curve"][3 * len(runs[name, split]["curve"]) // 4, 2]
                for split, _ in reps
            ]
        )
        for name in names
    }
    still_rising = [name for name in names if moving[name] > 0.005]
    display(
        Markdown(
            f"The baseline fits its 200 training images to "
            f"**{per_rep('baseline', 'train_acc').mean():.1%}** but reaches only "
            f"**{per_rep('baseline', 'val_acc').mean():.1%}** on the validation images: the high "
            "variance of the slides. Every setting still fits the training set almost perfectly "
            f"(lowest mean training accuracy: {min(per_rep(n, 'train_acc').mean() for n in names):.1%}), "
            "so what changes is how well the fit carries over to new images.\n\n"
            + "".join(
                f"* **{name}** against the baseline, on the test split: {describe_difference(d)}.\n"
                for name, d in versus_base.items()
            )
            + "\n"
            + (
                f"Resolved improvements: **{', '.join(helped)}**. "
                if helped
                else "None of the improvements is resolved by this run. "
            )
            + f"The best single tool on validation is **{best_single}**; all three together, "
            f"against it on the test split: {describe_difference(combined)}. "
            + (
                "So in this run the combination is no better than its best part: each strength was "
                "chosen for its tool alone, and would have to be tuned again as a combination."
                if combined["resolved"] and combined["mean"] < 0
                else (
                    "So in this run the combination beats its best part."
                    if combined["resolved"]
                    else "This run cannot tell whether the combination is better or worse than its "
                    "best part."
                )
            )
            + (
                f"\n\nValidation accuracy is still rising at the end for: "
                f"{', '.join(still_rising)} (more than half a point over the last quarter of "
                f"training): after {epochs} epochs those runs have not settled, and longer training "
                "might change their comparison."
                if still_rising
                else f"\n\nAfter {epochs} epochs no setting's validation accuracy is still rising by "
                "more than half a point over the last quarter of training."
            )
            + (
                ""
                if FULL
                else f"\n\nThis default run has {len(reps)} repetitions of {epochs} epochs; "
                "`FULL=1` runs 5 of 200 epochs (the walkthrough is built from that run)."
            )
        )
    )

# %% [markdown]
# ### What each tool does to training itself
#
# Accuracy hides how differently the five networks train. Below is the objective each one minimizes,
# $J$ in train mode (data loss plus the penalty, with dropout's masks and batch norm's batch statistics),
# averaged over every epoch, for the first repetition.

# %% kind="experiment"
with needs(
    dropout_forward="section 2",
    dropout_backward="section 2",
    batchnorm_forward="section 2",
    batchnorm_backward="section 2",
    mlp_loss="section 3",
):
    fig, ax = plt.subplots(figsize=(8, 3.8), constrained_layout=True)
    for i, name in enumerate(names):
        epoch_loss = runs[name, first]["epoch_loss"]
        ax.plot(
            np.arange(1, len(epoch_loss) + 1), epoch_loss, label=name, **style(i, len(epoch_loss))
        )
    ax.set(
        yscale="log",
        xlabel="epoch",
        ylabel="training objective J (train mode)",
        title=f"the objective being minimized (split {first}, mean per epoch)",
    )
    ax.legend(frameon=False, fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    plt.show()

    last = {name: runs[name, first]["epoch_loss"][-10:].mean() for name in names}
    display(
        Markdown(
            "Averaged over the last ten epochs, the baseline's objective is down to "
            f"**{last['baseline']:.2g}**: it has memorized its 200 images. Dropout keeps it "
            f"{last['dropout'] / last['baseline']:.0f} times higher (**{last['dropout']:.2g}**), and "
            "noisy: every step trains a different thinned network, which never fits as well as the "
            f"whole one. Batch norm's objective is **{last['batch norm']:.2g}**: in train mode each "
            "example is normalized with the statistics of whichever batch it lands in, a noise of its "
            "own (notebook 03 measures whether it regularizes). With L2 the objective stays at "
            f"**{last['L2']:.2g}**, of which the penalty at the end is "
            f"{runs['L2', first]['penalty']:.2g}: the network now pays for large weights; all three "
            f"together end at **{last['all three']:.2g}**. A higher training objective is not a worse "
            "network: the test accuracies above are what counts."
        )
    )

# %% [markdown]
# ### Dropout before batch norm: a variance shift
#
# "All three" puts dropout right before the next layer's batch norm. That has a catch (Li, Chen, Hu &
# Yang, *Understanding the Disharmony between Dropout and Batch Normalization by Variance Shift*,
# CVPR 2019). During training the second BN layer sees inputs computed from dropped and rescaled units:
# inverted dropout keeps their mean but **increases their variance**, and that larger variance is what
# the running variance records. At test time dropout is off, the inputs vary less, and BN divides them
# by a running standard deviation that is too large: the layer's test-time outputs are shrunk, a
# mismatch that no amount of training removes. Below, for the trained "all three" networks, is the
# ratio of layer 2's running variance to the variance its inputs actually have at test time (on the
# training images, so that only the mode differs); 1 would mean no shift.

# %% kind="experiment"
with needs(
    dropout_forward="section 2",
    dropout_backward="section 2",
    batchnorm_forward="section 2",
    batchnorm_backward="section 2",
    mlp_loss="section 3",
):
    ratios = []
    for split, _ in reps:
        net, X = runs["all three", split], splits[split].X_train
        params, bn_params = net["params"], net["bn_params"]
        frozen = [{**p, "mode": "test"} for p in bn_params]  # copies: evaluating changes nothing
        a1 = X @ params["W1"] + params["b1"]
        z1, _ = batchnorm_forward(a1, params["gamma1"], params["beta1"], frozen[0])
        a2 = np.maximum(z1, 0.0) @ params["W2"] + params["b2"]  # dropout is off at test time
        ratios.append(bn_params[1]["running_var"] / a2.var(axis=0))
    ratios = np.array(ratios)  # (repetitions, units of layer 2)
    per_network = np.median(ratios, axis=1)
    display(
        Markdown(
            "Layer 2, running variance ÷ test-time variance of its inputs, median over its "
            f"{ratios.shape[1]} units: "
            + ", ".join(f"**{r:.2f}**" for r in per_network)
            + f" in the {len(reps)} repetition(s) (over all units and repetitions, the middle half "
            f"lies between {np.quantile(ratios, 0.25):.2f} and {np.quantile(ratios, 0.75):.2f}). "
            + (
                f"Overall median: **{np.median(ratios):.2f}**. "
                + (
                    "Above 1: BN over-estimates the spread at test time and shrinks a unit by about "
                    "the square root of its ratio. "
                    if np.median(ratios) > 1
                    else "Not above 1 in this run: the shift is hidden by the noise of the running "
                    "average. "
                )
            )
            + "(The running variance averages biased variances of batches of 50, which on their "
            "own run (N−1)/N = 2 % low, and it follows the last batches more than the first.) "
            "Li et al.'s remedies: put dropout only after the last BN "
            "layer, or recompute the BN statistics in test mode after training (a pass over the "
            "training data with dropout off)."
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
# each normalized unit: $\beta$ plays the role of the (redundant) bias, and shrinking $\gamma$ towards 0 would
# fight the normalization (it would scale the unit's output towards zero instead of letting the network
# choose its spread). Frameworks do not make this choice for you: PyTorch's `weight_decay` decays
# **every** parameter handed to the optimizer, biases, $\gamma$ and $\beta$ included, unless you split
# the parameters into groups and give the biases and normalization parameters `weight_decay=0`; Keras
# regularizers are opt-in, per layer and per kind of parameter (`kernel_regularizer`,
# `bias_regularizer`, ...), so there the usual choice is to regularize only the kernels.
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
# changes is the optimization. Because the output is scale-invariant, the gradient with respect to $W$ is
# orthogonal to $W$ and shrinks like $1/\lVert W\rVert$; the penalty keeps $\lVert W\rVert$ small, so the same
# learning rate makes larger *relative* steps (a larger effective learning rate) and training does not slow
# down as the weights grow. The regularizing effect in such networks comes from that noisier, faster
# optimization, from batch norm's own batch noise, and from the penalty on the layers without batch norm
# (here the output layer), not from a smaller function class.
# ### END SOLUTION

# %% [markdown]
# **Question 4.** Look at your table and plot in section 5. Which tool closed the gap between training and
# validation accuracy most, and why might "all three" not be the best? If you had one more hour of compute,
# what would you try next?

# %% [markdown] kind="answer" grade_id="q4_read_the_study" points=1
# ### BEGIN SOLUTION
# A good answer quotes the run's own numbers and verdicts (they depend on the run): the gap column of the
# table, and for each tool its paired difference against the baseline on the test split, with whether
# the run resolved it. Only a resolved difference supports "this tool helped"; with few repetitions most
# differences of a point or two are within noise, and then the honest answer is that the run cannot
# rank the tools. All settings fit the training set almost perfectly, so the tools differ in how well the
# fit carries over, not in the fit. Why "all three" need not be best: each strength ($\lambda = 0.01$,
# $p = 0.2$) was chosen for its tool alone, and together they regularize more strongly; with batch norm
# the penalty on the hidden weights acts differently (question 3); and dropout right before batch norm
# shifts the variance that BN sees between training and test (the measurement at the end of section 5).
# Next steps with an hour of compute: more repetitions (data splits and seeds) until the differences are
# resolved (`FULL=1` is a start), train until the curves flatten (the summary says which were still
# rising), tune $\lambda$ and $p$ for the combination on the validation split with a small grid, and
# report the chosen setting once on the test split.
# ### END SOLUTION

# %% [markdown]
# ## 7. Before you submit
#
# Run every public check at once. From a terminal you can do the same with
# `python -m grader check 04_capstone.ipynb`.

# %% kind="experiment"
check_all("04_capstone")
