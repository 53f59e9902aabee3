"""Numbers the chapters assert on: MSE, PSNR, the baselines an autoencoder must beat, a
VAE's ELBO and log-likelihood, and a sparse autoencoder's L0, FVU, dead latents,
shrinkage, loss recovered and MMCS."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from torch import nn

from .models import reparameterise
from .penalties import gaussian_kl
from .training import batched


def _check_pair(x: torch.Tensor, r: torch.Tensor) -> None:
    if x.shape != r.shape or x.ndim != 2:
        raise ValueError(
            f"expected two (N, D) tensors of one shape, got {tuple(x.shape)} and "
            f"{tuple(r.shape)}"
        )


def mse(x: torch.Tensor, r: torch.Tensor) -> float:
    """Mean squared error over all images and pixels. x, r: (N, D)."""
    _check_pair(x, r)
    return torch.mean((x.float() - r.float()) ** 2).item()


def psnr(clean: torch.Tensor, other: torch.Tensor, max_value: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, per image then averaged: mean_i 10 log10(max^2
    / MSE_i). (N, D) each.

    An image reproduced exactly would have infinite PSNR; its MSE is floored at 1e-10
    (100 dB).
    """
    _check_pair(clean, other)
    per_image = torch.mean((clean.float() - other.float()) ** 2, dim=1).clamp_min(1e-10)
    return torch.mean(10 * torch.log10(max_value**2 / per_image)).item()


def paired_bootstrap(
    a: np.ndarray | torch.Tensor,
    b: np.ndarray | torch.Tensor,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean of a - b over paired measurements (N,) each (the same queries or images
    scored two ways), with a 95% percentile bootstrap interval: (mean, low, high). An
    interval that holds 0 is a tie."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 2:
        raise ValueError(
            f"need two paired 1-D arrays of the same length >= 2, got {a.shape} and "
            f"{b.shape}"
        )
    d = a - b
    idx = np.random.default_rng(seed).integers(0, len(d), (resamples, len(d)))
    means = d[idx].mean(1)
    return (
        float(d.mean()),
        float(np.quantile(means, 0.025)),
        float(np.quantile(means, 0.975)),
    )


def grey_share(x: torch.Tensor, low: float = 0.2, high: float = 0.8) -> float:
    """Share of the pixels of images x (N, D) strictly between ``low`` and ``high``: a
    blur measure.

    Digits are mostly ink (near 1) on paper (near 0); a blurred stroke has a grey rim.
    """
    if not 0 <= low < high <= 1:
        raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
    return ((x > low) & (x < high)).float().mean().item()


def mean_image_mse(train_x: torch.Tensor, test_x: torch.Tensor) -> float:
    """Test MSE of the laziest model: the mean training image for every input."""
    return mse(test_x, train_x.mean(dim=0, keepdim=True).expand_as(test_x))


def pca_fit(train_x: torch.Tensor, k: int, seed: int = 0) -> PCA:
    """scikit-learn PCA with ``k`` components fitted on train_x (N, D)."""
    if not 1 <= k <= min(train_x.shape):
        raise ValueError(f"k must be between 1 and {min(train_x.shape)}, got {k}")
    # The eigenvectors of the D x D covariance: the same components as a full SVD of the
    # (N, D) data, three times faster for 4,000 images of 784 pixels (chapter 9 fits
    # eleven PCAs).
    return PCA(n_components=k, svd_solver="covariance_eigh", random_state=seed).fit(
        train_x.numpy()
    )


def pca_reconstruct(
    train_x: torch.Tensor, x: torch.Tensor, k: int, pca: PCA | None = None
) -> torch.Tensor:
    """Project x (N, D) onto the top-k principal subspace of train_x and back: (N, D).

    Pass ``pca``, fitted on train_x with at least k components, to reuse one fit for
    many k:
    the top k components of a larger PCA are exactly the components of PCA with k.
    """
    pca = pca if pca is not None else pca_fit(train_x, k)
    if pca.n_components_ < k:
        raise ValueError(
            f"the given PCA has {pca.n_components_} components, fewer than k={k}"
        )
    comps = torch.from_numpy(pca.components_[:k]).float()  # (k, D), orthonormal rows
    mean = torch.from_numpy(pca.mean_).float()  # (D,)
    return (x.float() - mean) @ comps.T @ comps + mean


def pca_topk_reconstruct(
    train_x: torch.Tensor, x: torch.Tensor, k: int, pca: PCA | None = None
) -> torch.Tensor:
    """Per input, keep the k largest |coefficients| of x (N, D) on all of train_x's
    principal directions: (N, D).

    A sparse code over a fixed dictionary of the +-principal directions, chosen per
    input and learned from nothing: its L0 is k, like a TopK autoencoder's. Pass
    ``pca``, fitted on train_x with every component, to reuse one fit; with fewer
    components it picks among those it has.
    """
    pca = pca if pca is not None else pca_fit(train_x, min(train_x.shape))
    if not 1 <= k <= pca.n_components_:
        raise ValueError(
            f"k must be between 1 and the PCA's {pca.n_components_} components, got {k}"
        )
    comps = torch.from_numpy(pca.components_).float()  # (q, D), orthonormal rows
    mean = torch.from_numpy(pca.mean_).float()  # (D,)
    c = (x.float() - mean) @ comps.T  # (N, q)
    # orthonormal atoms: the k largest |c| are the best k for each input
    top = c.abs().topk(k, dim=1).indices
    return torch.zeros_like(c).scatter(1, top, c.gather(1, top)) @ comps + mean


def pca_mse(train_x: torch.Tensor, test_x: torch.Tensor, k: int) -> float:
    """Test MSE of the best linear code of size k: the PCA baseline every autoencoder is
    held to."""
    return mse(test_x, pca_reconstruct(train_x, test_x, k))


def compression_ratio(input_size: int, code_size: int) -> float:
    """How many input numbers each code number stands for (784 / 32 = 24.5)."""
    if input_size < 1 or code_size < 1:
        raise ValueError(f"sizes must be >= 1, got {input_size} and {code_size}")
    return input_size / code_size


def principal_angles(
    a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray
) -> np.ndarray:
    """Principal angles in degrees between the column spaces of a (D, k) and b (D, m),
    largest first.

    Zero for every direction the two spaces share; 90 for a direction of one orthogonal
    to the other.
    """
    from scipy.linalg import subspace_angles

    a, b = (
        np.asarray(
            m.detach().cpu() if isinstance(m, torch.Tensor) else m, dtype=np.float64
        )
        for m in (a, b)
    )
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(
            f"expected two (D, k) matrices with the same D, got {a.shape} and {b.shape}"
        )
    return np.degrees(subspace_angles(a, b))


def linear_probe(
    train_codes: torch.Tensor,
    train_y: torch.Tensor,
    test_codes: torch.Tensor,
    test_y: torch.Tensor,
    C: float = 0.01,
) -> float:
    """Test accuracy (in %) of a logistic regression fitted on standardised codes (N, k)
    -> labels (N,).

    One fixed regularisation ``C`` for every representation, so that no representation
    is tuned more than another (see `logistic_regression` for the objective).
    """
    if len(train_codes) != len(train_y) or len(test_codes) != len(test_y):
        raise ValueError(
            "need one label per code in both the training and the test set"
        )
    train_codes, test_codes = (
        train_codes.detach().cpu().float(),
        test_codes.detach().cpu().float(),
    )
    mean, std = train_codes.mean(0), train_codes.std(0, unbiased=False)
    # a constant feature stays 0, as in StandardScaler
    std = torch.where(std > 0, std, torch.ones_like(std))
    x, x_test = (train_codes - mean) / std, (test_codes - mean) / std
    w, b, classes = logistic_regression(x, train_y, C)
    with torch.no_grad():
        predicted = classes[F.linear(x_test, w, b).argmax(dim=1)]
    return 100.0 * (predicted == test_y.cpu()).float().mean().item()


def probe_C(
    train_codes: torch.Tensor,
    train_y: torch.Tensor,
    Cs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0),
    folds: int = 5,
    seed: int = 0,
) -> float:
    """The ``C`` of `linear_probe` with the best mean accuracy over ``folds``-fold
    cross-validation on the training codes (N, k) alone, so that each representation
    gets its own tuned probe without looking at the test set. Ties go to the first C in
    ``Cs`` (the smallest, in the default order); a choice at either end of the grid
    means the grid should be wider."""
    if folds < 2 or len(train_codes) != len(train_y) or len(train_y) < folds:
        raise ValueError(
            "need folds >= 2 and at least that many labelled codes; got "
            f"folds={folds}, {len(train_codes)} codes and {len(train_y)} labels"
        )
    parts = torch.randperm(
        len(train_y), generator=torch.Generator().manual_seed(seed)
    ).chunk(folds)
    score = {}
    for C in Cs:
        accuracies = []
        for i, held in enumerate(parts):
            rest = torch.cat([p for j, p in enumerate(parts) if j != i])
            accuracies.append(
                linear_probe(
                    train_codes[rest],
                    train_y[rest],
                    train_codes[held],
                    train_y[held],
                    C=C,
                )
            )
        score[C] = sum(accuracies) / folds
    return max(score, key=score.get)


def logistic_regression(
    x: torch.Tensor, y: torch.Tensor, C: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression on features x (N, k): weights (c, k), biases
    (c,), and the c classes.

    It minimises scikit-learn's objective, ``C * sum_i CE_i + ||W||^2 / 2``, with
    full-batch L-BFGS in PyTorch: the same optimum as ``LogisticRegression`` (a test
    compares the two objectives), three to five times faster on these codes.
    """
    x = x.detach().cpu().float()
    classes, y = torch.unique(y.cpu(), return_inverse=True)
    # (classes, features) with F.linear: its backward takes MKL's fast path, 3x faster
    # than x @ w's.
    w = torch.zeros(len(classes), x.shape[1], requires_grad=True)
    b = torch.zeros(len(classes), requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b],
        max_iter=1000,
        tolerance_grad=1e-5,
        tolerance_change=1e-9,
        line_search_fn="strong_wolfe",
    )

    # the objective above divided by C * N: same minimiser, better scaled
    def objective() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(F.linear(x, w, b), y) + (w * w).sum() / (2 * C * len(x))
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(objective)
    return w.detach(), b.detach(), classes


LOG_2PI = math.log(2 * math.pi)


def bernoulli_log_likelihood(x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """log p(x | h) of a Bernoulli decoder with ``means`` = g(h), in nats per image:
    (..., D), (..., D) -> (...).

    The negative of binary cross-entropy summed over pixels, with PyTorch's clamp of log
    at -100. For grey pixels in (0, 1) this is the usual MNIST convention, not a
    normalised density of x.
    """
    return (
        x * means.log().clamp(min=-100) + (1 - x) * (1 - means).log().clamp(min=-100)
    ).sum(dim=-1)


def _gaussian_log_density(
    h: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """log N(h; mu, diag(exp(logvar))), summed over the last axis."""
    return -0.5 * ((h - mu).pow(2) / logvar.exp() + logvar + LOG_2PI).sum(dim=-1)


@torch.no_grad()
def elbo(
    model: nn.Module,
    x: torch.Tensor,
    samples: int = 1,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The evidence lower bound per image, split in its two terms: (E_q[log p(x | h)]
    (N,), KL (N,)), in nats.

    ELBO = E_q[log p(x | h)] - KL(q(h | x) || p(h)); the expectation is averaged over
    ``samples`` draws of h, the KL is in closed form. ``model`` needs ``posterior`` and
    ``decode`` (a `VAE`); it runs in eval mode where it is, and its mode is restored.
    A CPU ``generator`` gives the same draws whatever the model's device.
    """

    def terms(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:  # (B, D) -> (B, 2)
        mu, logvar = model.posterior(xb)
        ll = torch.stack(
            [
                bernoulli_log_likelihood(
                    xb, model.decode(reparameterise(mu, logvar, generator))
                )
                for _ in range(samples)
            ]
        )  # (samples, B)
        return torch.stack([ll.mean(0), gaussian_kl(mu, logvar)], dim=1)

    both = batched(model, x, terms, batch_size)
    return both[:, 0], both[:, 1]


@torch.no_grad()
def importance_weighted_log_likelihood(
    model: nn.Module,
    x: torch.Tensor,
    samples: int = 100,
    generator: torch.Generator | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """An estimate of log p(x) per image (N,), in nats (Burda et al., 2016):
    log (1/K) sum_i p(x | h_i) p(h_i) / q(h_i | x), with h_i ~ q(h | x). In expectation
    a lower bound on log p(x), at least the ELBO, and tighter as K grows. Eval mode and
    devices as for `elbo`."""

    def estimate(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:  # (B, D) -> (B,)
        mu, logvar = model.posterior(xb)
        # (K, B, k)
        h = torch.stack([reparameterise(mu, logvar, generator) for _ in range(samples)])
        log_w = (
            bernoulli_log_likelihood(
                xb, model.decode(h.flatten(0, 1)).view(samples, len(xb), -1)
            )
            + _gaussian_log_density(h, torch.zeros_like(h), torch.zeros_like(h))
            - _gaussian_log_density(h, mu, logvar)
        )  # (K, B)
        return torch.logsumexp(log_w, dim=0) - math.log(samples)

    return batched(model, x, estimate, batch_size)


def train_classifier(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    *,
    hidden: int = 256,
    epochs: int = 15,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
) -> nn.Sequential:
    """A small judge for generated images: an MLP (D -> hidden -> classes) trained with
    Adam on cross-entropy.

    train_x (N, D), train_y (N,) integer labels 0..C-1. Seeded: the same data and seed
    give the same network on one machine. Returned in eval mode on the CPU. (A
    classifier, not an autoencoder: it has its own few lines of training rather than
    `fit`, which trains models to reconstruct.)
    """
    if len(train_x) != len(train_y) or len(train_x) == 0:
        raise ValueError(
            f"need one label per image and at least one image, got {len(train_x)} "
            "images "
            f"and {len(train_y)} labels"
        )
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    classes = int(train_y.max()) + 1
    net = nn.Sequential(
        nn.Linear(train_x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, classes)
    )
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x, y = train_x.float().cpu(), train_y.long().cpu()
    with torch.enable_grad():
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=gen).split(batch_size):
                loss = F.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return net.eval()


@torch.no_grad()
def classifier_scores(
    classifier: nn.Module, x: torch.Tensor, threshold: float = 0.9
) -> dict[str, float]:
    """How a classifier sees images x (N, D): three numbers in [0, 1].

    ``confident``: the share it puts in one class with probability above ``threshold``;
    ``confidence``: its mean top-class probability; ``spread``: the entropy of its
    predicted classes' histogram divided by log(C), 1 when every class is predicted
    equally often, 0 when one class takes everything. Real test digits score near 1 on
    the last.
    """
    if not 0 < threshold < 1:
        raise ValueError(
            f"threshold is a probability and must lie in (0, 1), got {threshold}"
        )
    classifier.eval()
    p = F.softmax(classifier(x.float().cpu()), dim=1)  # (N, C)
    top = p.max(dim=1).values
    share = torch.bincount(p.argmax(dim=1), minlength=p.shape[1]).float() / len(x)
    nonzero = share[share > 0]
    return {
        "confident": (top > threshold).float().mean().item(),
        "confidence": top.mean().item(),
        "spread": (-(nonzero * nonzero.log()).sum() / math.log(p.shape[1])).item(),
    }


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """The Fréchet distance between Gaussians fitted to features a (N, F) and b (M, F):
    ||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)) (Dowson & Landau 1982).

    In the features of an Inception network it is Heusel et al.'s FID; the book feeds
    it its own classifier's features (`judge_features`), so its numbers are comparable
    with each other only. Computed in float64: Tr((C_a C_b)^(1/2)) as the sum of the
    square roots of the eigenvalues of C_a^(1/2) C_b C_a^(1/2).
    """
    if (
        a.ndim != 2
        or b.ndim != 2
        or a.shape[1] != b.shape[1]
        or min(len(a), len(b)) < 2
    ):
        raise ValueError(
            "need two sets of feature vectors (N, F) and (M, F), at least 2 each, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = (
        torch.cov(a.T).reshape(a.shape[1], -1),
        torch.cov(b.T).reshape(b.shape[1], -1),
    )
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return (
        (mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross
    ).item()


@torch.no_grad()
def judge_features(classifier: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The features a `train_classifier` judge sees before its last layer: (N, D) ->
    (N, hidden), on the CPU."""
    classifier.eval()
    return classifier[:-1](x.float().cpu())


# --- Sparse dictionaries: the numbers the interpretability literature reports for a
# sparse autoencoder ---


def l0(h: torch.Tensor) -> float:
    """Mean number of nonzero latents per input, for codes h (N, width)."""
    if h.ndim != 2:
        raise ValueError(f"expected codes of shape (N, width), got {tuple(h.shape)}")
    return (h != 0).float().sum(dim=1).mean().item()


def dead_fraction(h: torch.Tensor) -> float:
    """Share of latents that are zero on every input of h (N, width)."""
    if h.ndim != 2:
        raise ValueError(f"expected codes of shape (N, width), got {tuple(h.shape)}")
    return (h == 0).all(dim=0).float().mean().item()


def fvu(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Fraction of variance unexplained, centred: sum ||x - x_hat||^2 / sum ||x -
    mean(x)||^2 over x (N, d).

    0 for a perfect reconstruction, 1 for predicting the mean of x; the mean is x's own,
    so the denominator is the total variance of these activations, summed over
    dimensions.
    """
    _check_pair(x, x_hat)
    x, x_hat = x.double(), x_hat.double()
    return ((x - x_hat).pow(2).sum() / (x - x.mean(dim=0)).pow(2).sum()).item()


def shrinkage(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Relative reconstruction bias gamma = E||x_hat - m||^2 / E<x_hat - m, x - m>, with
    m the mean of x (N, d).

    The gamma that minimises E||(x_hat - m) / gamma - (x - m)||^2 (Rajamanoharan et al.,
    2024, centred here): 1 for an unbiased reconstruction, below 1 when the code
    systematically shrinks it.
    """
    _check_pair(x, x_hat)
    m = x.double().mean(dim=0)
    xc, rc = x.double() - m, x_hat.double() - m
    return (rc.pow(2).sum() / (rc * xc).sum()).item()


def loss_recovered(original: float, ablated: float, spliced: float) -> float:
    """(L_ablated - L_spliced) / (L_ablated - L_original): the share of the loss gap
    between an ablation and the original network that a reconstruction closes when
    spliced into the network in place of the activations. 1: as good as the original; 0:
    as bad as the ablation."""
    if not ablated != original:
        raise ValueError(
            f"the ablated loss {ablated} equals the original {original}: nothing to "
            "recover"
        )
    return (ablated - spliced) / (ablated - original)


def mmcs(
    learned: torch.Tensor, true: torch.Tensor, per_feature: bool = False
) -> float | torch.Tensor:
    """Mean max cosine similarity (Sharkey et al., 2022): for each true direction
    (column of true, (d, n)), the largest cosine with any learned direction (column of
    learned, (d, a)), averaged over the n true ones. 1 when every true direction has an
    exact copy among the learned ones. With ``per_feature``, each true direction's
    largest cosine (n,), for paired comparisons of two dictionaries."""
    best = _cosines(learned, true).max(dim=1).values
    return best if per_feature else best.mean().item()


def matched_share(
    learned: torch.Tensor, true: torch.Tensor, threshold: float = 0.9
) -> float:
    """MMCS read the other way: the share of learned directions (columns of learned,
    (d, a)) within cosine ``threshold`` of some true direction (column of true,
    (d, n)). MMCS ignores learned directions that match nothing; this counts them."""
    return (
        (_cosines(learned, true).max(dim=0).values > threshold).double().mean().item()
    )


def _cosines(learned: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """(n, a): the cosine of every true direction (column of true, (d, n)) with every
    learned one (column of learned, (d, a)), in float64."""
    if learned.ndim != 2 or true.ndim != 2 or learned.shape[0] != true.shape[0]:
        raise ValueError(
            "expected two (d, columns) matrices with the same d, got "
            f"{tuple(learned.shape)} and {tuple(true.shape)}"
        )
    return F.normalize(true.double(), dim=0).T @ F.normalize(learned.double(), dim=0)


def top_purity(
    scores: torch.Tensor, labels: torch.Tensor, top: int = 20
) -> torch.Tensor:
    """For each unit (column of scores, (N, units)), the share of its ``top``
    highest-scoring inputs that carry the most common label among them: (units,). A
    cheap proxy for a unit meaning one class."""
    if scores.ndim != 2 or len(scores) != len(labels) or not 1 <= top <= len(scores):
        raise ValueError(
            "need scores (N, units), N labels and 1 <= top <= N; got "
            f"{tuple(scores.shape)}, "
            f"{len(labels)} labels, top={top}"
        )
    picked = labels[scores.topk(top, dim=0).indices]  # (top, units)
    # (units, classes)
    counts = F.one_hot(picked.long(), int(labels.max()) + 1).sum(dim=0)
    return counts.max(dim=1).values.float() / top
