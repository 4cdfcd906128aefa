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
# # 01 · Norms and weight penalties
#
# *Part of the course kit for the lecture "DNN Discussion 2" (speaker: Isaac). Notebook 02 is about
# dropout, 03 about batch normalization.*
#
# A network with far more weights than training examples can fit its training set perfectly and still
# do badly on new data. The slides call this **high variance**, and their first remedy is
# **regularization**: add a term to the loss that grows with the size of the weights, and minimize both
# at once,
#
# $$ L_{\text{new}}(\theta) = L_{\text{old}}(\theta) + \text{regularization term}. $$
#
# The data loss $L_{\text{old}}$ (mean squared error, softmax cross-entropy, ...) wants the network to
# fit the training set; the penalty wants the weights to stay close to zero. In the slides' words:
# **make the loss function small and the weights close to zero.**
#
# In this notebook you will
#
# 1. see high variance happen on real handwritten digits,
# 2. write the L1 and L2 norms of a weight matrix (and meet the two NumPy calls that look right but
#    are not),
# 3. write the L1 and L2 penalties of a whole network and their gradients,
# 4. sweep the penalty strength $\lambda$ on real data, look at the geometry that makes L1 produce exact
#    zeros, and compare the weights that L1, L2 and no penalty leave behind.
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

from grader.notebook import check, check_all, check_implemented  # noqa: F401 (hidden-test cells)
from grader.toolkit import (
    PALETTE,
    describe_difference,
    evaluate,
    full_mode,
    load_digits,
    mean_se,
    needs,
    numerical_gradient,
    paired_difference,
    plot_train_val,
    quick_mode,
    rel_error,
    replicates,
    style,
    train_mlp,
)

rng = np.random.default_rng(2024)

# %% [markdown]
# ## 1. The problem: high variance
#
# We use the handwritten digits that ship with scikit-learn (1,797 images of 8×8 pixels, from the UCI
# *Optical Recognition of Handwritten Digits* data set). To provoke high variance we train on only
# **200** images, keep 500 for validation, and use a network far too large for so little data:
# 64 → 256 → 256 → 10 with ReLU, about 84,000 weights, trained with mini-batch SGD and momentum.
#
# A single run is partly luck: which 200 images were drawn, the initial weights, the order of the
# mini-batches. So every setting is trained in several **repetitions**, each with its own data split
# *and* its own seed (two in the default run, five with `FULL=1`), and settings are compared repetition
# by repetition. These runs are the "no penalty" baseline of every comparison below. Hyperparameters are
# chosen on the validation images; the test images (the remaining 1,097) are used only to report.

# %% kind="experiment"
quick = quick_mode()  # True under nbgrader's own autograde: shorter runs, same code
FULL = full_mode()  # FULL=1: more repetitions and a finer grid (about 2 minutes)
HIDDEN = [256, 256]
epochs = 20 if quick else (80 if FULL else 50)
reps = replicates(1 if quick else (5 if FULL else 2))  # (data split, seed) pairs
LAST = 3  # accuracies are averaged over the last 3 evaluations (every 5 epochs)
splits = {split: load_digits(n_train=200, n_val=500, seed=split) for split, _ in reps}
data = splits[reps[0][0]]

runs = {}  # (penalty, lambda, split, seed) -> History
for split, seed in reps:
    runs["none", 0.0, split, seed] = train_mlp(
        splits[split], HIDDEN, epochs=epochs, seed=seed, progress=False, eval_every=5
    )

first = runs["none", 0.0, *reps[0]]
fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
plot_train_val(ax_acc, first, title=f"accuracy (split {reps[0][0]}, seed {reps[0][1]})")
plot_train_val(ax_loss, first, metric="loss", title="loss (log scale)")
plt.show()

baseline = np.array([runs["none", 0.0, *r].final(last=LAST)["val_acc"] for r in reps])
end = first.final()
display(
    Markdown(
        f"After {epochs} epochs the network classifies **{end['train_acc']:.1%}** of its training "
        f"images correctly but only **{end['val_acc']:.1%}** of the validation images (mean over "
        f"{len(reps)} repetition(s): {baseline.mean():.1%}). The training loss keeps falling, to "
        f"{end['train_loss']:.1e}, while the validation loss has stalled at {end['val_loss']:.3f} "
        f"(its best value was {min(first.val_loss):.3f}), **{end['val_loss'] / end['train_loss']:,.0f} "
        "times** the training loss. The network has memorized its 200 images: it is extremely "
        "confident about them and much less so about new ones. That gap between training and "
        "validation is high variance."
    )
)


# %% [markdown]
# ## 2. Norms of a weight matrix
#
# A norm measures the size of something. For a weight matrix $W$ the penalties use **entry-wise**
# norms: treat the matrix as one long vector of numbers and measure that vector.
#
# $$ \lVert \operatorname{vec} W \rVert_1 = \sum_{i,j} |w_{ij}| \qquad\qquad \lVert W \rVert_F = \sqrt{\sum_{i,j} w_{ij}^2} $$
#
# The first is the L1 norm of the matrix laid out as one long vector, $\operatorname{vec} W$; the second
# is the **Frobenius norm** $\lVert W\rVert_F$, the L2 norm of $\operatorname{vec} W$. We write them this
# way, not $\lVert W\rVert_1$ and $\lVert W\rVert_2$, because for a matrix those two symbols conventionally
# mean the induced norms below (the very trap of this section); the slides, and the functions'
# names `l1_norm` and `l2_norm`, simply say "L1 norm" and "L2 norm". The slides use this matrix as
# their example:
#
# $$ W = \begin{bmatrix} 0.1 & 0.5 & -0.3 \\ -0.2 & 0.4 & 0.2 \\ -0.1 & 0.3 & 0.3 \end{bmatrix} $$
#
# **Two errata on that slide.**
#
# * The slide adds the nine absolute values and prints **1.2**. The sum is
#   $0.1+0.5+0.3+0.2+0.4+0.2+0.1+0.3+0.3 = \mathbf{2.4}$. (Curiously, 1.2 is exactly the largest
#   *column* sum, $0.5+0.4+0.3$, which is what `np.linalg.norm(W, 1)` returns: see below.)
# * What the slide calls the L2 norm is written out as the sum of the squares,
#   $0.01+0.25+0.09+0.04+0.16+0.04+0.01+0.09+0.09 = 0.78$. That is the **squared** norm
#   $\lVert W \rVert_F^2$; the norm itself is $\sqrt{0.78} \approx 0.883$. The squared version is the one
#   the L2 penalty uses, which is probably why the slide shows it, but the two are different numbers and
#   your `l2_norm` must return the norm.
#
# ### Careful with `np.linalg.norm`
#
# For a *vector*, `np.linalg.norm(v, 1)` and `np.linalg.norm(v, 2)` are exactly the two norms above.
# For a *matrix*, the same calls mean something else, the **induced** (operator) norms:
#
# * `np.linalg.norm(W, 1)` is the largest absolute **column sum** (1.2 for the slide's matrix);
# * `np.linalg.norm(W, 2)` is the **spectral norm**, the largest singular value of $W$ (how much $W$ can
#   stretch a vector).
#
# Both are perfectly good norms, but not the ones in the penalty. `np.linalg.norm(W)` (no `ord`) and
# `np.linalg.norm(W, "fro")` do give the Frobenius norm; the exercise asks you to write the sums yourself.

# %% [markdown]
# ### Exercise: `l1_norm` and `l2_norm`
#
# Implement both functions (the docstrings are the specification). They must work for a matrix of any
# shape and return one number, a Python `float`.

# %% [markdown]
# **Stuck?** Open the hints one at a time; each gives a little more away.
#
# <details><summary>Hint 1 — the idea</summary>
#
# Both norms treat the matrix as one long list of numbers: no rows, no columns, no matrix
# algebra.
# </details>
#
# <details><summary>Hint 2 — the equation</summary>
#
# $\lVert \operatorname{vec} W \rVert_1 = \sum_{i,j} |w_{ij}|$ and $\lVert W \rVert_F = \sqrt{\sum_{i,j} w_{ij}^2}$, each returned as a
# Python `float`.
# </details>
#
# <details><summary>Hint 3 — shapes</summary>
#
# Element-wise absolute values and squares keep the shape of $W$; one sum over **all** entries
# (no axis) turns them into a single number. NumPy's matrix norms with `ord=1` and `ord=2` are *not*
# these (section 2 said why).
# </details>

# %% kind="solution"
# reference: l1_norm

# %% kind="check"
check("norms_l1_norm")

# %% kind="solution"
# reference: l2_norm

# %% kind="check"
check("norms_l2_norm")

# %% [markdown]
# Here is the slide's matrix measured by your functions, next to the NumPy calls that look similar.

# %% kind="experiment"
with needs(l1_norm="section 2", l2_norm="section 2"):
    W_slide = np.array([[0.1, 0.5, -0.3], [-0.2, 0.4, 0.2], [-0.1, 0.3, 0.3]])
    display(
        Markdown(
            "| quantity | value |\n|---|---|\n"
            f"| your `l1_norm(W)` | {l1_norm(W_slide):.4f} |\n"
            f"| `np.linalg.norm(W, 1)`: largest column sum (the slide's 1.2) | {np.linalg.norm(W_slide, 1):.4f} |\n"
            f"| your `l2_norm(W)` | {l2_norm(W_slide):.4f} |\n"
            f"| your `l2_norm(W) ** 2`: the slide's sum of squares | {l2_norm(W_slide) ** 2:.4f} |\n"
            f"| `np.linalg.norm(W, 2)`: spectral norm | {np.linalg.norm(W_slide, 2):.4f} |\n"
            f'| `np.linalg.norm(W, "fro")` | {np.linalg.norm(W_slide, "fro"):.4f} |'
        )
    )

# %% [markdown]
# The grader also runs hidden checks on matrices you have not seen (other shapes, shifted and scaled
# entries). There is nothing to do here.

# %% kind="check"
check("norms_hidden_norms")

# %% [markdown]
# ## 3. The penalties
#
# A network $\sigma(W^L \cdots \sigma(W^2\,\sigma(W^1 x + b^1) + b^2) \cdots + b^L)$ has weights
# $W^1, \dots, W^L$ and biases $b^1, \dots, b^L$. The slides penalize the **weights only**,
# $\theta = \{W^1, W^2, \dots, W^L\}$:
#
# $$ \text{L1 regularization:}\qquad L_{\text{new}} = L_{\text{old}} + \lambda \sum_{l=1}^{L} \lVert \operatorname{vec} W^l \rVert_1 $$
#
# $$ \text{L2 regularization:}\qquad L_{\text{new}} = L_{\text{old}} + \frac{\lambda}{2} \sum_{l=1}^{L} \lVert W^l \rVert_F^2 $$
#
# **Erratum:** the slide writes the L2 term as $\frac{\lambda}{2}\lVert\theta\rVert_2$, without the
# square. The standard L2 penalty (ridge regression, "weight decay") uses the **squared** norm, which is
# simply the sum of the squared weights; that is also what the slide's example writes out (0.78). The
# square matters: it makes the gradient $\lambda W$ (section 4), and it penalizes large weights much more
# than small ones. The $\frac12$ is only there to cancel the 2 that the derivative of the square
# brings down.
#
# $\lambda \ge 0$ sets the balance: $\lambda = 0$ is the plain loss; a very large $\lambda$ cares about
# nothing but small weights.
#
# **Contract.** Both penalty functions receive a Python list of the weight matrices (they have different
# shapes) and $\lambda$; they return one number. The biases are not in the list: deciding what to
# penalize is the caller's job, and the trainer in this kit passes exactly $[W^1, \dots, W^L]$.

# %% [markdown]
# ### Exercise: `l1_penalty` and `l2_penalty`
#
# You may call your norm functions.

# %% [markdown]
# **Stuck?** Open the hints one at a time; each gives a little more away.
#
# <details><summary>Hint 1 — the idea</summary>
#
# A penalty is the norm of every weight matrix in the list, added up and scaled by λ. Only
# weights are in the list: you never see a bias.
# </details>
#
# <details><summary>Hint 2 — the equation</summary>
#
# $\lambda \sum_l \lVert \operatorname{vec} W_l \rVert_1$ and $\frac{\lambda}{2} \sum_l \lVert W_l \rVert_F^2$: note the **square** (no
# square root) and the ½ in the L2 penalty.
# </details>
#
# <details><summary>Hint 3 — shapes</summary>
#
# `weights` is a Python list of arrays of different shapes: loop over it (or use a generator in
# `sum(...)`); each term is a scalar.
# </details>

# %% kind="solution"
# reference: l1_penalty

# %% kind="check"
check("norms_l1_penalty")

# %% kind="solution"
# reference: l2_penalty

# %% kind="check"
check("norms_l2_penalty")

# %% kind="check"
check("norms_hidden_penalties")

# %% [markdown]
# ## 4. Gradients of the penalties
#
# To train with a penalty, the optimizer adds the penalty's gradient to the gradient of the data loss.
#
# **L2.** Every weight appears in one square, so
#
# $$ \frac{\partial}{\partial W^l}\; \frac{\lambda}{2}\sum_k \lVert W^k \rVert_F^2 = \frac{\lambda}{2}\cdot 2W^l = \lambda W^l . $$
#
# A step of gradient descent with learning rate $\eta$ then reads
#
# $$ W \leftarrow W - \eta\left(\nabla L_{\text{old}} + \lambda W\right) = (1 - \eta\lambda)\,W - \eta \nabla L_{\text{old}} : $$
#
# before every ordinary step, each weight shrinks by the factor $1-\eta\lambda$. This is why L2
# regularization is also called **weight decay** (for plain SGD the two are the same thing; see question 3
# for optimizers where they differ).
#
# **L1.** The derivative of $|w|$ is $+1$ for $w>0$ and $-1$ for $w<0$; at $w=0$ the function has a kink
# and no derivative. Any number in $[-1, 1]$ is a valid *subgradient* there, and we choose 0:
#
# $$ \frac{\partial}{\partial W^l}\; \lambda\sum_k \lVert \operatorname{vec} W^k \rVert_1 = \lambda\,\operatorname{sign}(W^l), \qquad \operatorname{sign}(0) = 0 . $$
#
# `np.sign` does exactly this. Writing the sign as `W / np.abs(W)` looks equivalent but gives
# $0/0 = $ NaN for a weight that is exactly zero, and a single NaN spreads through the whole network at
# the next step. Notice the difference in character: the L2 pull on a weight is proportional to the
# weight (tiny weights are barely pushed), while the L1 pull has the same size $\lambda$ for every
# weight, however small. That difference is the whole story of sections 6 and 7.
#
# **Contract.** Both gradient functions return a list with one new array per weight matrix, in the same
# order and with the same shapes; the weights they receive must not be modified.

# %% [markdown]
# ### Exercise: `l1_penalty_grad` and `l2_penalty_grad`

# %% [markdown]
# **Stuck?** Open the hints one at a time; each gives a little more away.
#
# <details><summary>Hint 1 — the idea</summary>
#
# Differentiate each term with respect to its own matrix: the layers do not interact, so the
# result is one array per weight matrix, in the same order.
# </details>
#
# <details><summary>Hint 2 — the equation</summary>
#
# $\partial/\partial W_l$ of $\lambda\lVert \operatorname{vec} W_l \rVert_1$ is $\lambda\,\mathrm{sign}(W_l)$ (with 0 at
# exactly 0), and of $\frac{\lambda}{2}\lVert W_l \rVert_F^2$ it is $\lambda W_l$: the ½ cancels the 2.
# </details>
#
# <details><summary>Hint 3 — shapes</summary>
#
# The result is a list with one array per weight matrix, in the same order, each of that matrix's
# shape: λ times an element-wise sign (0 at exactly 0), or λ times the matrix itself. Dividing a
# matrix by its own absolute value is *not* a sign: it gives NaN at 0.
# </details>

# %% kind="solution"
# reference: l1_penalty_grad

# %% kind="check"
check("norms_l1_penalty_grad")

# %% kind="solution"
# reference: l2_penalty_grad

# %% kind="check"
check("norms_l2_penalty_grad")

# %% [markdown]
# ### A gradient check
#
# Independent evidence: centered finite differences of your penalty functions,
# $\partial R/\partial w \approx (R(w+h) - R(w-h))/2h$, compared with your gradients on two layers of
# different shapes with shifted and scaled entries. (For L1 this works because no entry is within $h$ of
# the kink at 0.)

# %% kind="experiment"
with needs(
    l1_penalty="section 3",
    l2_penalty="section 3",
    l1_penalty_grad="section 4",
    l2_penalty_grad="section 4",
):
    layers_check = [0.8 * rng.standard_normal((5, 4)), 3.0 + 2.0 * rng.standard_normal((4, 3))]
    lam_check = 0.37

    def numeric_penalty_grads(penalty):
        """Finite-difference gradient of penalty(layers_check, lam_check) for every layer."""
        return [
            numerical_gradient(lambda _: penalty(layers_check, lam_check), W) for W in layers_check
        ]

    rows = []
    for name, penalty, penalty_grad in (
        ("L1", l1_penalty, l1_penalty_grad),
        ("L2", l2_penalty, l2_penalty_grad),
    ):
        analytic = penalty_grad(layers_check, lam_check)
        numeric = numeric_penalty_grads(penalty)
        error = max(rel_error(a, n) for a, n in zip(analytic, numeric, strict=True))
        rows.append(f"| {name} | {error:.1e} |")
    display(
        Markdown(
            "| penalty | relative error, your gradient vs finite differences |\n|---|---|\n"
            + "\n".join(rows)
            + "\n\nBelow 1e-7 is right."
        )
    )

# %% kind="check"
check("norms_hidden_gradients")

# %% [markdown]
# ### What goes wrong if the biases are penalized too
#
# Your functions penalize whatever list they receive, so the classic mistake happens at the call:
# passing the biases along with the weights. A one-feature example shows the effect. We fit
# $\hat y = w x + b$ to points that lie around a line with a large intercept, by gradient descent on
# $\frac{1}{2N}\sum_n(\hat y_n - y_n)^2 + R$, once with $R$ = `l2_penalty([w], lam)` (the right call)
# and once with `l2_penalty([w, b], lam)`; the gradient of $R$ comes from your `l2_penalty_grad`.

# %% kind="experiment"
with needs(l2_penalty_grad="section 4"):
    x_line = rng.uniform(0.0, 4.0, size=(40, 1))
    y_line = 1.5 * x_line[:, 0] + 6.0 + 0.5 * rng.standard_normal(40)
    lam_line = 0.3

    def fit_line(penalise_bias):
        w, b = np.zeros((1, 1)), np.zeros(1)
        for _ in range(3000):
            residual = x_line @ w + b - y_line[:, None]
            dw, db = x_line.T @ residual / len(x_line), residual.mean(axis=0)
            grads = l2_penalty_grad([w, b] if penalise_bias else [w], lam_line)
            dw = dw + grads[0]
            if penalise_bias:
                db = db + grads[1]
            w, b = w - 0.1 * dw, b - 0.1 * db
        return w, b

    fits = {"weights only (right)": fit_line(False), "weights and bias": fit_line(True)}
    fig, ax = plt.subplots(figsize=(6, 3.6), constrained_layout=True)
    ax.scatter(x_line[:, 0], y_line, color="0.55", s=14, label="data")
    grid_line = np.linspace(0, 4, 50)[:, None]
    offsets = []
    for i, (label, (w, b)) in enumerate(fits.items()):
        kw = style(i)
        ax.plot(
            grid_line[:, 0],
            (grid_line @ w + b)[:, 0],
            color=kw["color"],
            linestyle=kw["linestyle"],
            linewidth=2,
            label=f"{label}: w={w[0, 0]:.2f}, b={b[0]:.2f}",
        )
        offsets.append(float(np.mean(y_line - (x_line @ w + b)[:, 0])))
    ax.set(xlabel="x", ylabel="y", title=f"L2 penalty, λ = {lam_line}")
    ax.legend(frameon=False, fontsize="small")
    plt.show()
    display(
        Markdown(
            f"Penalizing the weight only, the line stays centered on the data: the mean residual is "
            f"{offsets[0]:+.3f}. Penalizing the bias as well drags the intercept towards 0, and the "
            f"predictions end up on average **{offsets[1]:.2f} below the data**, a systematic error that "
            "more data would not remove. A bias only shifts a unit's output; it does not multiply any input, so "
            "making it small does nothing to make the function smoother."
        )
    )

# %% [markdown]
# ## 5. Experiment: sweeping λ on real data
#
# Back to the digits. The trainer takes your penalty and its gradient as arguments,
# `penalty=(l2_penalty, l2_penalty_grad, lam)`, adds the penalty to the loss and its gradient to the
# weights' gradients at every step. We try a range of $\lambda$ for each penalty, in the same
# repetitions as the baseline, so every comparison is paired (same split, same initial weights, same
# mini-batches): choose $\lambda$ on validation, then report the chosen one on the test split.

# %% kind="experiment"
with needs(
    l1_penalty="section 3",
    l2_penalty="section 3",
    l1_penalty_grad="section 4",
    l2_penalty_grad="section 4",
):
    if quick:
        lam_grid = {"L2": [1e-2, 3e-1], "L1": [1e-3, 3e-2]}
    elif FULL:
        lam_grid = {
            "L2": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1],
            "L1": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
        }
    else:
        lam_grid = {"L2": [1e-3, 1e-2, 3e-2, 3e-1], "L1": [1e-4, 1e-3, 3e-3, 3e-2]}
    grids = {
        "L2": (l2_penalty, l2_penalty_grad, lam_grid["L2"]),
        "L1": (l1_penalty, l1_penalty_grad, lam_grid["L1"]),
    }
    for name, (penalty, penalty_grad, lams) in grids.items():
        for lam in lams:
            for split, seed in reps:
                runs[name, lam, split, seed] = train_mlp(
                    splits[split],
                    HIDDEN,
                    epochs=epochs,
                    seed=seed,
                    penalty=(penalty, penalty_grad, lam),
                    progress=False,
                    eval_every=5,
                )

    def final_values(name, lams, key):
        """Array (len(lams), len(reps)) of one metric, averaged over the last evaluations."""
        return np.array([[runs[name, lam, *r].final(last=LAST)[key] for r in reps] for lam in lams])

    def test_accuracy(name, lam):
        """Accuracy on each repetition's held-out test split, at the end of training."""
        return np.array(
            [
                evaluate(runs[name, lam, *r], splits[r[0]].X_test, splits[r[0]].y_test)[1]
                for r in reps
            ]
        )

    FLOOR = 0.84  # the main axes start here; the inset shows the full range
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained", sharey=True)
    for ax, (name, (_, _, lams)) in zip(axes, grids.items(), strict=True):
        val, train = final_values(name, lams, "val_acc"), final_values(name, lams, "train_acc")

        def above(values):  # points below the main axes are not drawn there (see the inset)
            return np.where(values >= FLOOR, values, np.nan)

        for r_index in range(len(reps)):  # one thin grey line per repetition
            ax.plot(lams, above(val[:, r_index]), color="0.75", lw=1, zorder=1)
        ax.plot(lams, above(train.mean(axis=1)), label="training (mean)", **style(1))
        ax.errorbar(
            lams,
            above(val.mean(axis=1)),
            yerr=[mean_se(v)[1] if len(reps) > 1 else 0.0 for v in val],
            capsize=3,
            lw=2,
            label="validation (mean ± s.e.)",
            **style(0),
        )
        ax.axhline(
            baseline.mean(), color=PALETTE[2], linestyle=":", lw=2, label="validation, no penalty"
        )
        ax.set(
            xscale="log",
            xlabel="λ",
            title=f"{name} penalty, {len(reps)} repetition(s)",
            ylim=(FLOOR, 1.01),
            xlim=(lams[0] / 1.5, lams[-1] * 1.5),  # every λ, also those drawn only in the inset
        )
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(True, alpha=0.3)
        if (val.mean(axis=1) < FLOOR).any() or (train.mean(axis=1) < FLOOR).any():
            inset = ax.inset_axes([0.58, 0.06, 0.38, 0.28])  # the whole range, 0 to 100 %
            inset.plot(lams, train.mean(axis=1), **style(1))
            inset.plot(lams, val.mean(axis=1), **style(0))
            inset.set(xscale="log", ylim=(0, 1.02), title="full range", xticks=[])
            inset.title.set_fontsize("small")
            inset.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            inset.tick_params(labelsize="x-small")
            inset.axhspan(FLOOR, 1.02, color="0.9", zorder=0)  # the part the main axes show
    axes[0].set_ylabel("accuracy (mean of the last evaluations)")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="0.75", lw=1))
    labels.append("validation, one line per repetition")
    fig.legend(handles, labels, loc="outside lower center", ncols=4, frameon=False)
    plt.show()

    lines, unresolved = [], False
    test_none = np.array(
        [evaluate(runs["none", 0.0, *r], splits[r[0]].X_test, splits[r[0]].y_test)[1] for r in reps]
    )
    for name, (_, _, lams) in grids.items():
        val, train = final_values(name, lams, "val_acc"), final_values(name, lams, "train_acc")
        i = int(np.argmax(val.mean(axis=1)))  # chosen on validation ...
        test_chosen = test_accuracy(name, lams[i])  # ... reported on test
        d = paired_difference(test_chosen, test_none)
        unresolved |= not d["resolved"]
        lines.append(
            f"* **{name}**: λ = {lams[i]:g} is best on validation ({val[i].mean():.1%}). On the "
            f"held-out test images it scores **{test_chosen.mean():.1%}**, against "
            f"{test_none.mean():.1%} without a penalty: **{describe_difference(d)}**. At the largest "
            f"λ = {lams[-1]:g}: {train[-1].mean():.1%} training, {val[-1].mean():.1%} validation."
        )
    display(
        Markdown(
            f"Without a penalty: {baseline.mean():.1%} validation accuracy. The λ of each penalty "
            f"is chosen on the validation split, and only the chosen one is then measured on the "
            f"{len(data.y_test):,} test images, which played no part in any choice (its validation "
            "score is optimistic: it is the best of several tries on that very split).\n\n"
            + "\n".join(lines)
            + "\n\nRead the curves from left to right. A small λ changes little: the network still "
            "fits its training set perfectly. Near the top, the penalty keeps the training fit and "
            "moves the validation accuracy. A large λ makes small weights more important than "
            "fitting the data: validation accuracy falls, then training accuracy too (high bias), "
            "until the network collapses to predicting one class for every image (about 10 % on ten "
            "balanced classes; the inset shows that part). Validation accuracy against λ is an "
            "upside-down U; finding its top is what a validation set is for."
            + (
                "\n\nSome of these differences are within noise. "
                + (
                    "Even the long run cannot resolve them: the effect is smaller than the luck of "
                    "the split and seed."
                    if FULL
                    else "This default run has only "
                    f"{len(reps)} repetitions; run the notebook with `FULL=1` (5 repetitions, a "
                    "finer grid) or read the walkthrough, which is built from that run."
                )
                if unresolved
                else ""
            )
        )
    )


# %% [markdown]
# ## 6. The geometry: why L1 finds exact zeros
#
# Minimizing $L_{\text{old}}(w) + \lambda R(w)$ is equivalent to minimizing $L_{\text{old}}$ over a
# ball $R(w) \le t$ (each $\lambda$ corresponds to some radius $t$). In two dimensions the L2 ball is a
# disc and the L1 ball is a diamond with its corners **on the axes**. The solution is where the
# loss's contour lines (ellipses around the unregularized minimum) first touch the ball. A smooth disc
# is touched at a generic point, where both coordinates are non-zero; the diamond sticks out at its
# corners, and the expanding ellipses very often touch it there first, at a point where one
# coordinate is **exactly 0**. In many dimensions the L1 ball has corners and edges on every
# coordinate subspace, and this happens for many weights at once: sparsity.
#
# The right panel shows the same from the penalty side: the solution as λ grows. The L2 solution
# $w(\lambda) = (A + \lambda I)^{-1} A\,w^\star$ shrinks smoothly towards 0 but never reaches it; the
# L1 solution, computed with the proximal-gradient method described in section 7, drops each
# coordinate to exactly 0 at a finite λ.

# %% kind="experiment"
angle = np.deg2rad(15)
rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
A = rotation @ np.diag([1.0, 2.5]) @ rotation.T  # curvature of the quadratic loss
w_star = np.array([2.0, 0.5])  # its unregularized minimum


def quadratic_loss(w):
    d = w - w_star
    return 0.5 * np.einsum("...i,ij,...j->...", d, A, d)


# the constrained minima, by a dense search along each ball's boundary (radius 1)
turn = np.linspace(0, 2 * np.pi, 20_001)
disc = np.stack([np.cos(turn), np.sin(turn)], axis=-1)
diamond = disc / np.abs(disc).sum(axis=-1, keepdims=True)
w_l2 = disc[np.argmin(quadratic_loss(disc))]
w_l1 = diamond[np.argmin(quadratic_loss(diamond))]

# the penalized solutions along a range of lambda
path_lams = np.linspace(0.0, 2.5, 101)
path_l2 = np.array([np.linalg.solve(A + lam * np.eye(2), A @ w_star) for lam in path_lams])
step = 1.0 / np.linalg.eigvalsh(A).max()
path_l1 = np.zeros((len(path_lams), 2))
for _ in range(2000):  # proximal gradient (ISTA), all lambdas at once
    z = path_l1 - step * (path_l1 - w_star) @ A
    path_l1 = np.sign(z) * np.maximum(np.abs(z) - step * path_lams[:, None], 0.0)

fig, (ax_geo, ax_path) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
g = np.linspace(-1.6, 2.6, 300)
G1, G2 = np.meshgrid(g, g)
levels = np.sort(quadratic_loss(np.array([w_l1, w_l2]))).tolist() + [1.2, 2.0, 3.0]
ax_geo.contour(
    G1,
    G2,
    quadratic_loss(np.stack([G1, G2], -1)),
    levels=sorted(set(levels)),
    colors="0.6",
    linewidths=1,
)
ax_geo.fill(diamond[:, 0], diamond[:, 1], color=PALETTE[0], alpha=0.15)
ax_geo.plot(diamond[:, 0], diamond[:, 1], color=PALETTE[0], lw=2, label="L1 ball |w₁|+|w₂| ≤ 1")
ax_geo.plot(
    disc[:, 0], disc[:, 1], color=PALETTE[1], lw=2, linestyle="--", label="L2 ball ‖w‖₂ ≤ 1"
)
ax_geo.plot(
    *w_star, marker="*", color="black", markersize=12, linestyle="none", label="minimum of the loss"
)
ax_geo.plot(
    *w_l1,
    marker="o",
    color=PALETTE[0],
    markersize=9,
    linestyle="none",
    label=f"L1 solution ({w_l1[0]:.2f}, {w_l1[1]:.2f})",
)
ax_geo.plot(
    *w_l2,
    marker="s",
    color=PALETTE[1],
    markersize=8,
    linestyle="none",
    label=f"L2 solution ({w_l2[0]:.2f}, {w_l2[1]:.2f})",
)
ax_geo.axhline(0, color="black", lw=0.6)
ax_geo.axvline(0, color="black", lw=0.6)
ax_geo.set(aspect="equal", xlabel="w₁", ylabel="w₂", title="contours of the loss and the two balls")
ax_geo.legend(frameon=True, framealpha=0.9, fontsize="small", loc="upper left")

for j in range(2):
    ax_path.plot(
        path_lams, path_l1[:, j], color=PALETTE[2 * j], linestyle="-", lw=2, label=f"w{'₁₂'[j]}, L1"
    )
    ax_path.plot(
        path_lams,
        path_l2[:, j],
        color=PALETTE[2 * j],
        linestyle="--",
        lw=2,
        label=f"w{'₁₂'[j]}, L2",
    )
ax_path.axhline(0, color="black", lw=0.6)
ax_path.set(xlabel="λ", ylabel="solution", title="solutions as λ grows")
ax_path.legend(frameon=False, fontsize="small")
plt.show()

zero_at = {j: path_lams[np.argmax(path_l1[:, j] == 0.0)] for j in range(2)}
display(
    Markdown(
        f"With radius 1, the L1 solution is the corner ({w_l1[0]:.3f}, {w_l1[1]:.3f}); the L2 solution "
        f"({w_l2[0]:.3f}, {w_l2[1]:.3f}) keeps both coordinates. Along the path, L1 sets w₂ to exactly "
        f"0 from λ ≈ {zero_at[1]:.2f} and w₁ from λ ≈ {zero_at[0]:.2f}; at λ = {path_lams[-1]:g} the L2 "
        f"solution is still ({path_l2[-1, 0]:.3f}, {path_l2[-1, 1]:.3f})."
    )
)

# %% [markdown]
# ## 7. Sparsity against shrinkage: the trained weights
#
# What do the two penalties do to the ~84,000 weights of the digit network? Below are the magnitudes of
# all weights after training (seed 0) without a penalty, with L2 and with L1, on a logarithmic axis.

# %% kind="experiment"
with needs(
    l1_penalty="section 3",
    l2_penalty="section 3",
    l1_penalty_grad="section 4",
    l2_penalty_grad="section 4",
):
    lam_l2, lam_l1 = 1e-2, 1e-3
    chosen = {
        "no penalty": runs["none", 0.0, *reps[0]],
        f"L2, λ = {lam_l2:g}": runs["L2", lam_l2, *reps[0]],
        f"L1, λ = {lam_l1:g}": runs["L1", lam_l1, *reps[0]],
    }

    def all_weights(history):
        n_layers = sum(key.startswith("W") for key in history.params)
        return np.concatenate([history.params[f"W{i}"].ravel() for i in range(1, n_layers + 1)])

    NEAR_ZERO = 1e-3
    fig, ax = plt.subplots(figsize=(9, 3.8), constrained_layout=True)
    bins = np.linspace(-9, 0.5, 80)
    summary = []
    for i, (label, history) in enumerate(chosen.items()):
        w = all_weights(history)
        kw = style(i)
        ax.hist(
            np.log10(np.abs(w) + 1e-12),
            bins=bins,
            histtype="step",
            lw=2,
            color=kw["color"],
            linestyle=kw["linestyle"],
            label=label,
        )
        summary.append(
            (
                label,
                np.mean(np.abs(w) < NEAR_ZERO),
                int(np.sum(w == 0)),
                w.size,
                np.sqrt(np.mean(w**2)),
            )
        )
    ax.axvline(np.log10(NEAR_ZERO), color="black", lw=1, linestyle=":")
    ax.annotate(
        f"|w| = {NEAR_ZERO:g}",
        (np.log10(NEAR_ZERO), ax.get_ylim()[1] * 0.9),
        xytext=(4, 0),
        textcoords="offset points",
        fontsize="small",
    )
    ax.set(xlabel="log₁₀ |w|", ylabel="number of weights", title="weight magnitudes after training")
    ax.legend(frameon=False, loc="upper left")
    plt.show()

    # prune the L1 network: set the near-zero weights to exactly 0 and evaluate again
    l1_history = chosen[f"L1, λ = {lam_l1:g}"]
    pruned = {
        k: np.where(np.abs(v) < NEAR_ZERO, 0.0, v) if k.startswith("W") else v
        for k, v in l1_history.params.items()
    }
    _, acc_before = evaluate(l1_history.params, data.X_test, data.y_test)
    _, acc_after = evaluate(pruned, data.X_test, data.y_test)
    w_l1 = np.abs(all_weights(l1_history))
    jitter = np.median(w_l1[w_l1 < NEAR_ZERO])
    config = l1_history.config
    step_scale = config["lr"] * lam_l1 / (1 - config["momentum"])

    rows = "\n".join(
        f"| {label} | {frac:.1%} | {zeros:,} of {size:,} | {rms:.4f} |"
        for label, frac, zeros, size, rms in summary
    )
    display(
        Markdown(
            f"| run (split {reps[0][0]}, seed {reps[0][1]}) | weights with \\|w\\| < {NEAR_ZERO:g} | exactly 0 | root mean square |\n"
            f"|---|---|---|---|\n{rows}\n\n"
            f"L2 **shrinks** the weights (their root mean square falls from {summary[0][4]:.3f} to "
            f"{summary[1][4]:.3f}) but leaves only {summary[1][1]:.1%} of them below {NEAR_ZERO:g}. L1 "
            f"drives **{summary[2][1]:.0%}** of the weights below {NEAR_ZERO:g} (without a penalty: "
            f"{summary[0][1]:.1%}) and lets the rest stay large: a **sparse** network. Setting those "
            f"{summary[2][1]:.0%} to exactly 0 gives a test accuracy of {acc_after:.1%} (before "
            f"pruning: {acc_before:.1%}). The near-zero L1 weights have a median magnitude of {jitter:.1e}, below "
            f"the scale ηλ/(1−μ) = {step_scale:.1e} of this run's steps (see below)."
        )
    )

# %% [markdown]
# ### Why "near zero" and not "exactly zero"?
#
# The table shows that plain (sub)gradient descent leaves essentially no weight at *exactly* 0. The
# L1 gradient $\lambda\,\operatorname{sign}(w)$ has the same size however small $w$ is, so a step of
# size $\eta\lambda$ overshoots 0 and the weight ends up hopping around it, within a band set by
# the step, at most of the order of $\eta\lambda/(1-\mu)$ with momentum $\mu$. To get exact zeros, solvers for L1 problems (the lasso)
# use a **proximal step** instead: take the gradient step on the data loss only, then apply the
# **soft-threshold**
#
# $$ w \leftarrow \operatorname{sign}(w)\,\max\bigl(|w| - \eta\lambda,\; 0\bigr), $$
#
# which moves every weight $\eta\lambda$ towards 0 and stops exactly at 0 instead of crossing it. That
# is the method (ISTA, *iterative soft-thresholding*) that computed the L1 path in section 6. Pruning
# after training, as in the cell above, is the cruder practical alternative.

# %% [markdown]
# ## 8. Questions
#
# Answer in a few sentences in the cells below; these are graded by hand.
#
# **Question 1.** The penalties cover the weights $\{W^1,\dots,W^L\}$ but not the biases. Give two reasons
# why the biases are usually left out (the line-fitting example in section 4 may help).

# %% [markdown] kind="answer" grade_id="q1_why_not_biases" points=1
# ### BEGIN SOLUTION
# A bias only shifts a unit's output; it does not multiply any input, so a large bias does not make the
# network react more strongly to small changes of the input, and shrinking it does not make the
# function smoother or reduce variance. Penalizing it instead pulls every unit's operating point
# towards 0, which introduces a systematic error (in the line example every prediction ends up too low
# on average) that no amount of data removes. Besides, there are few biases (one per unit, against
# fan-in many weights), so they contribute little to overfitting, and they have to be able to take
# whatever value the data needs (e.g. to center the outputs or to match class frequencies).
# ### END SOLUTION

# %% [markdown]
# **Question 2.** What happens to the trained network as $\lambda \to \infty$, for L2 and for L1? Relate
# your answer to the right end of the curves in section 5.

# %% [markdown] kind="answer" grade_id="q2_lambda_to_infinity" points=1
# ### BEGIN SOLUTION
# The penalty dominates the loss, so the optimum drives every weight to 0 (L2: each weight is multiplied
# by $1-\eta\lambda$ every step and decays to 0; L1: every weight is pulled to 0 and stays there). With
# all weights at 0 the hidden units output constants and the network predicts the same scores for every
# input: only the biases, which are not penalized, still learn, so it can at best predict the most
# frequent class (about 10 % on the balanced digits). That is extreme high bias, underfitting: training
# and validation accuracy both collapse, as at the right end of the curves. (With a very large λ and a
# fixed learning rate, plain SGD may also become unstable, since $1-\eta\lambda < -1$ makes the weights
# oscillate and grow.)
# ### END SOLUTION

# %% [markdown]
# **Question 3.** For plain SGD, adding the L2 penalty to the loss and "weight decay" (multiplying the
# weights by $1-\eta\lambda$ at every step) are the same thing. Are they still the same with the Adam
# optimizer? Explain, and name the variant of Adam that keeps weight decay separate.

# %% [markdown] kind="answer" grade_id="q3_adam_weight_decay" points=1
# ### BEGIN SOLUTION
# No. With an L2 penalty, the term $\lambda W$ is part of the gradient, so Adam divides it by the running
# root-mean-square of the gradients like everything else: weights with large or noisy gradients are
# decayed less, weights with small gradients more, and the effective decay is no longer $\eta\lambda W$
# for every weight. Decoupled weight decay applies $W \leftarrow W - \eta\lambda W$ directly, outside the
# adaptive scaling, so every weight shrinks at the same relative rate. This is **AdamW** (Loshchilov &
# Hutter, "Decoupled Weight Decay Regularization"), which usually regularizes better than Adam with an
# L2 penalty. (With momentum SGD the two also differ slightly, since the penalty's gradient goes through
# the velocity.)
# ### END SOLUTION

# %% [markdown]
# ## 9. Before you submit
#
# Run every public check at once. From a terminal you can do the same with
# `python -m grader check 01_norms.ipynb`.

# %% kind="experiment"
check_all("01_norms")
