import math

import numpy as np
import pytest
import torch

from aebook import metrics

# every test here runs once per device (conftest.DEVICES)
pytestmark = pytest.mark.usefixtures("device")


def test_mse_and_psnr_known_values():
    x = torch.full((3, 784), 0.5)
    r = x + 0.1
    assert metrics.mse(x, r) == pytest.approx(0.01, rel=1e-5)
    assert metrics.psnr(x, r) == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)


def test_psnr_is_averaged_per_image():
    x = torch.zeros(2, 4)
    r = torch.stack([torch.full((4,), 0.1), torch.full((4,), 0.01)])  # 20 dB and 40 dB
    assert metrics.psnr(x, r) == pytest.approx(30.0, abs=1e-4)


def test_psnr_of_an_exact_copy_is_finite():
    x = torch.rand(2, 784)
    assert math.isfinite(metrics.psnr(x, x)) and metrics.psnr(x, x) == pytest.approx(
        100.0
    )


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="one shape"):
        metrics.mse(torch.rand(2, 784), torch.rand(3, 784))
    with pytest.raises(ValueError, match="one shape"):
        metrics.psnr(torch.rand(784), torch.rand(784))


def test_mean_image_baseline(digits):
    base = metrics.mean_image_mse(digits.train_x, digits.test_x)
    assert 0.05 < base < 0.09
    # The test set's own mean is the best constant for it, so it can only be lower.
    assert (
        metrics.mse(
            digits.test_x, digits.test_x.mean(0, keepdim=True).expand_as(digits.test_x)
        )
        <= base
    )


def test_pca_error_falls_with_k_and_vanishes_at_full_rank(digits):
    errors = [metrics.pca_mse(digits.train_x, digits.test_x, k) for k in (2, 8, 32)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < metrics.mean_image_mse(digits.train_x, digits.test_x)
    x = digits.train_x[:300]
    assert metrics.mse(x, metrics.pca_reconstruct(x, x, 300)) < 1e-8


def test_pca_reconstruct_shape_and_bad_k(tiny):
    assert metrics.pca_reconstruct(tiny, tiny[:7], 5).shape == (7, 784)
    with pytest.raises(ValueError, match="k must be"):
        metrics.pca_fit(tiny, 0)
    with pytest.raises(ValueError, match="k must be"):
        metrics.pca_fit(tiny, 201)


def test_compression_ratio():
    assert metrics.compression_ratio(784, 32) == 24.5
    with pytest.raises(ValueError):
        metrics.compression_ratio(784, 0)


def test_principal_angles():
    e = torch.eye(4)
    assert metrics.principal_angles(e[:, :2], e[:, :2]) == pytest.approx(
        [0, 0], abs=1e-6
    )
    assert metrics.principal_angles(e[:, :1], e[:, 1:2]) == pytest.approx([90])
    # The same space under another basis (scaled, mixed) has zero angles: only the span
    # matters.
    mixed = e[:, :2] @ torch.tensor([[2.0, 1.0], [0.5, -3.0]])
    assert metrics.principal_angles(mixed, e[:, :2]).max() < 1e-5
    tilted = torch.tensor([[1.0], [1.0], [0.0], [0.0]])
    assert metrics.principal_angles(tilted, e[:, :1]) == pytest.approx([45])
    with pytest.raises(ValueError, match="same D"):
        metrics.principal_angles(torch.ones(4, 2), torch.ones(5, 2))


def test_linear_probe_separates_separable_classes():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2
    x = torch.randn(200, 5, generator=g) + 4 * y[:, None]
    assert metrics.linear_probe(x[:100], y[:100], x[100:], y[100:]) > 95
    noise = torch.randn(200, 5, generator=g)
    assert metrics.linear_probe(noise[:100], y[:100], noise[100:], y[100:]) < 70
    with pytest.raises(ValueError, match="one label per code"):
        metrics.linear_probe(x[:100], y[:99], x[100:], y[100:])


def test_probe_C_picks_the_penalty_that_cross_validates_best():
    # The class sits in x1 - x2: x1 alone is swamped by a noise that x2 measures. A
    # strong penalty keeps only the mean difference (x1) and reads chance; a weak one
    # finds x1 - x2 and reads every label.
    g = torch.Generator().manual_seed(0)
    y = torch.arange(400) % 2
    noise = 3 * torch.randn(400, generator=g)
    x = torch.stack([(y - 0.5) + noise, noise], 1) + 0.05 * torch.randn(
        400, 2, generator=g
    )
    train, test = slice(0, 300), slice(300, None)
    strong, weak = (
        metrics.linear_probe(x[train], y[train], x[test], y[test], C=C)
        for C in (1e-4, 10.0)
    )
    assert strong < 60 and weak > 95
    for order in ((1e-4, 10.0), (10.0, 1e-4)):
        assert metrics.probe_C(x[train], y[train], Cs=order) == 10.0
    with pytest.raises(ValueError, match="folds >= 2"):
        metrics.probe_C(x, y, folds=1)
    with pytest.raises(ValueError, match="labelled codes"):
        metrics.probe_C(x, y[:10])


def test_pca_reconstruct_reuses_a_larger_fit(digits):
    big = metrics.pca_fit(digits.train_x, 20)
    for k in (3, 20):
        direct = metrics.pca_reconstruct(digits.train_x, digits.test_x[:50], k)
        reused = metrics.pca_reconstruct(digits.train_x, digits.test_x[:50], k, pca=big)
        torch.testing.assert_close(direct, reused, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="fewer than k"):
        metrics.pca_reconstruct(digits.train_x, digits.test_x, 21, pca=big)


def test_pca_fit_matches_a_full_svd(digits):
    # pca_fit takes the covariance's eigenvectors for speed: the subspace, the variances
    # and the reconstructions must be those of the exact SVD of the centred data.
    from sklearn.decomposition import PCA

    ours = metrics.pca_fit(digits.train_x, 30)
    exact = PCA(n_components=30, svd_solver="full").fit(digits.train_x.numpy())
    np.testing.assert_allclose(
        ours.explained_variance_, exact.explained_variance_, rtol=1e-3
    )
    cosines = np.abs((ours.components_ * exact.components_).sum(1))  # signs may differ
    assert cosines.min() > 0.999
    comps = torch.from_numpy(exact.components_).float()
    mean = torch.from_numpy(exact.mean_).float()
    x = digits.test_x[:100]
    torch.testing.assert_close(
        metrics.pca_reconstruct(digits.train_x, x, 30, pca=ours),
        (x - mean) @ comps.T @ comps + mean,
        atol=1e-4,
        rtol=1e-4,
    )


def test_linear_probe_matches_scikit_learns_logistic_regression(digits):
    # Same objective, same optimum: ours reaches scikit-learn's objective value (within
    # 1e-5 of it, or lower), and the two classifiers disagree on at most a few of 1,000
    # test digits. (Accuracy alone is too brittle a comparison: scikit-learn 1.9 stops a
    # hair earlier than 1.8 did, and two of its near-tied test digits flip.)
    import torch.nn.functional as F
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    # includes constant (all-blank) pixels
    tr, te = digits.train_x[:, 200:400], digits.test_x[:, 200:400]
    scaler = StandardScaler().fit(tr.numpy())
    x, x_test = (
        torch.from_numpy(scaler.transform(a.numpy())).float() for a in (tr, te)
    )
    y = digits.train_y

    # scikit-learn's: C * sum of cross-entropies + ||W||^2 / 2, in float64
    def objective(w, b, C):
        w, b = (
            torch.as_tensor(w, dtype=torch.float64),
            torch.as_tensor(b, dtype=torch.float64),
        )
        ce = F.cross_entropy(x.double() @ w.T + b, y, reduction="sum")
        return (C * ce + (w * w).sum() / 2).item()

    for C in (0.01, 1.0):
        w, b, classes = metrics.logistic_regression(x, y, C)
        clf = LogisticRegression(C=C, max_iter=5000, tol=1e-8).fit(x.numpy(), y.numpy())
        ours, theirs = objective(w, b, C), objective(clf.coef_, clf.intercept_, C)
        assert ours <= theirs * (1 + 1e-5), (C, ours, theirs)
        predicted = classes[(x_test @ w.T + b).argmax(dim=1)].numpy()
        assert (predicted != clf.predict(x_test.numpy())).sum() <= 3, C
        accuracy = metrics.linear_probe(tr, y, te, digits.test_y, C=C)
        # linear_probe standardises in float32 itself: the same fit up to rounding, a
        # digit or two apart
        assert accuracy == pytest.approx(
            100 * (predicted == digits.test_y.numpy()).mean(), abs=0.3
        )
        assert accuracy > 50


def test_grey_share_counts_the_pixels_strictly_between_the_bounds():
    x = torch.tensor([[0.0, 0.2, 0.5, 0.79, 0.8, 1.0, 0.3, 0.1]])
    assert metrics.grey_share(x) == pytest.approx(3 / 8)  # 0.5, 0.79 and 0.3
    assert metrics.grey_share(x, low=0.0, high=1.0) == pytest.approx(6 / 8)
    with pytest.raises(ValueError, match="low < high"):
        metrics.grey_share(x, low=0.8, high=0.2)


def test_paired_bootstrap_brackets_the_mean_and_finds_a_tie():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, 500)
    # a constant difference: no spread at all
    mean, lo, hi = metrics.paired_bootstrap(a + 0.5, a)
    assert (
        mean == pytest.approx(0.5)
        and lo == pytest.approx(0.5)
        and hi == pytest.approx(0.5)
    )
    noise = rng.normal(0, 1, 500)
    # mean difference ~0: the interval holds 0
    mean, lo, hi = metrics.paired_bootstrap(a + noise, a)
    assert lo < mean < hi and lo < 0 < hi
    # about the normal interval's width
    assert hi - lo == pytest.approx(2 * 1.96 / np.sqrt(500), rel=0.25)
    mean, lo, hi = metrics.paired_bootstrap(a + noise + 1, a)
    assert lo > 0.7
    with pytest.raises(ValueError, match="paired"):
        metrics.paired_bootstrap(a, a[:10])
