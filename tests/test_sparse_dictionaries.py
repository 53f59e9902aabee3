"""The toy model of superposition, the sparse autoencoder, its auxiliary loss, and their
metrics."""

import math

import pytest
import torch

from aebook import metrics
from aebook.cache import cache_key, train_or_load
from aebook.penalties import L1Sparsity
from aebook.sae import SAEConfig, SparseAutoencoder, TopKAuxiliary
from aebook.superposition import (
    ToyModel,
    angular_gaps,
    feature_norms,
    importance,
    represented,
    toy_features,
)
from aebook.training import fit, reconstruction_loss

# every test here runs once per device (conftest.DEVICES)
pytestmark = pytest.mark.usefixtures("device")

# --- the toy model and its data ---


def test_toy_features_have_the_asked_density_and_range():
    x = toy_features(20000, 10, density=0.1, seed=1)
    assert x.shape == (20000, 10) and x.min() >= 0 and x.max() <= 1
    assert (x > 0).float().mean().item() == pytest.approx(0.1, abs=0.005)
    assert torch.equal(x, toy_features(20000, 10, density=0.1, seed=1))
    assert not torch.equal(x, toy_features(20000, 10, density=0.1, seed=2))
    assert (toy_features(100, 3, density=1.0) > 0).all()


@pytest.mark.parametrize(
    "args", [(0, 5, 0.1), (10, 5, 0.0), (10, 5, 1.5), (10, 0, 0.5)]
)
def test_toy_features_refuse_bad_arguments(args):
    with pytest.raises(ValueError):
        toy_features(*args)


def test_importance_decays_geometrically():
    assert torch.allclose(importance(4, 0.5), torch.tensor([1.0, 0.5, 0.25, 0.125]))
    with pytest.raises(ValueError, match="decay"):
        importance(4, 0.0)


def test_toy_model_computes_relu_of_w_transpose_w_x_plus_b():
    torch.manual_seed(0)
    toy = ToyModel(5, 2)
    x = torch.rand(7, 5)
    expected = torch.relu(x @ toy.W.T @ toy.W + toy.b)
    assert toy.encode(x).shape == (7, 2) and torch.allclose(toy(x), expected)
    with pytest.raises(ValueError, match=r"\(batch, 5\)"):
        toy(torch.rand(7, 4))
    with pytest.raises(ValueError, match="1 <= m <= n"):
        ToyModel(2, 5)
    assert ToyModel.from_config(toy.config.to_dict()).config == toy.config


def test_weighted_loss_is_the_importance_weighted_squared_error():
    r, x, w = torch.rand(4, 3), torch.rand(4, 3), torch.tensor([1.0, 0.5, 0.0])
    by_hand = (
        sum(w[j] * (r[i, j] - x[i, j]) ** 2 for i in range(4) for j in range(3)) / 12
    )
    assert reconstruction_loss(r, x, "mse", w).item() == pytest.approx(
        by_hand.item(), rel=1e-6
    )
    with pytest.raises(ValueError, match="loss_weight"):
        fit(ToyModel(3, 2), x, epochs=1, loss_weight=torch.ones(4), progress=False)
    with pytest.raises(ValueError, match="loss_weight"):
        fit(ToyModel(3, 2), x, epochs=1, loss_weight=-w, progress=False)


def test_a_zero_weight_leaves_that_feature_untrained():
    torch.manual_seed(0)
    toy = ToyModel(3, 2)
    before = toy.W.detach().clone()
    fit(
        toy,
        toy_features(512, 3, 0.5),
        epochs=3,
        batch_size=64,
        lr=1e-2,
        loss_weight=torch.tensor([1.0, 1.0, 0.0]),
        progress=False,
    )
    # feature 2's column moves only through the others' loss (its own error has no
    # weight), so its b does not
    assert toy.b.detach()[2] == 0 and not torch.equal(before, toy.W.detach().cpu())


def test_a_dense_toy_keeps_m_features_and_a_sparse_one_keeps_all_in_a_pentagon():
    # Elhage et al.'s figure, small: 5 features, 2 dimensions, importance 0.9 ** i
    def train(density):
        torch.manual_seed(0)
        toy = ToyModel(5, 2)
        fit(
            toy,
            toy_features(8192, 5, density, seed=0),
            epochs=40,
            batch_size=256,
            lr=1e-2,
            loss_weight=importance(5, 0.9),
            progress=False,
        )
        return toy

    dense, sparse = train(1.0), train(0.05)
    # the two most important
    assert int(represented(dense).sum()) == 2 and represented(dense)[:2].all()
    assert int(represented(sparse).sum()) == 5
    gaps = angular_gaps(sparse.W.detach())
    assert (
        gaps.sum().item() == pytest.approx(360, abs=1e-3)
        and (gaps - 72).abs().max() < 15
    )
    assert feature_norms(sparse).shape == (5,)


def test_angular_gaps_of_a_square_and_bad_input():
    square = torch.tensor([[1.0, 0, -1, 0], [0, 1, 0, -1]])
    assert torch.allclose(angular_gaps(square), torch.full((4,), 90.0))
    assert torch.allclose(
        angular_gaps(torch.tensor([[1.0, 0.0], [0.0, 1.0]])),
        torch.tensor([90.0, 270.0]),
    )
    with pytest.raises(ValueError, match=r"\(2, j\)"):
        angular_gaps(torch.rand(3, 4))


# --- the sparse autoencoder ---


def test_sae_shapes_unit_norm_dictionary_and_tied_start():
    torch.manual_seed(0)
    sae = SparseAutoencoder(8, 32)
    assert torch.allclose(sae.dictionary.norm(dim=0), torch.ones(32))
    assert torch.allclose(sae.W_enc, sae.dictionary.T)
    x = torch.randn(5, 8)
    h = sae.encode(x)
    assert h.shape == (5, 32) and (h >= 0).all() and sae(x).shape == (5, 8)
    assert torch.allclose(sae.decode(h), h @ sae.dictionary.T + sae.b_dec)
    with torch.no_grad():
        # scaling the raw weights changes nothing: the dictionary is normalised
        sae.W_dec.mul_(3.0)
    assert torch.allclose(sae.decode(h), h @ sae.dictionary.T + sae.b_dec)
    assert sae.center(x + 10).b_dec.mean().item() == pytest.approx(
        (x + 10).mean().item(), rel=1e-5
    )
    with pytest.raises(ValueError, match=r"\(batch, 8\)"):
        sae.encode(torch.randn(5, 7))
    with pytest.raises(ValueError, match=r"\(batch, 32\)"):
        sae.decode(torch.randn(5, 31))


def test_topk_keeps_exactly_k_largest_positive_preactivations():
    torch.manual_seed(0)
    sae = SparseAutoencoder(6, 20, k=3)
    x = torch.randn(50, 6) * 5
    z, h = sae.pre_activation(x), sae.encode(x)
    assert ((h != 0).sum(dim=1) <= 3).all() and (
        (h != 0).sum(dim=1) == 3
    ).float().mean() > 0.9
    kept = h != 0
    # every kept value is its pre-activation, and no dropped pre-activation beats the
    # smallest kept one
    assert torch.equal(h[kept], z[kept])
    assert (
        z.masked_fill(kept, -math.inf).max(dim=1).values
        <= z.masked_fill(~kept, math.inf).min(dim=1).values
    ).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sizes": (4, 0)}, ">= 1"),
        ({"sizes": (4, 8), "k": 9}, "between 1"),
        ({"sizes": (4,)}, "(d, width)"),
        ({"sizes": (4, 8), "k": 0}, "between 1"),
    ],
)
def test_sae_config_refuses_bad_specs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SAEConfig(**kwargs)


def test_since_fired_counts_inputs_in_training_only():
    torch.manual_seed(0)
    sae = SparseAutoencoder(4, 6, k=1)
    with torch.no_grad():
        sae.W_enc.zero_()
        sae.b_enc.copy_(torch.tensor([5.0, 0, 0, 0, 0, 0]))  # latent 0 always wins
    sae.train()
    sae.encode(torch.randn(10, 4))
    sae.encode(torch.randn(7, 4))
    assert sae.since_fired.tolist() == [0, 17, 17, 17, 17, 17]
    sae.eval()
    sae.encode(torch.randn(3, 4))
    assert sae.since_fired[1].item() == 17


def test_auxiliary_loss_is_zero_without_dead_latents_and_trains_only_the_dead():
    torch.manual_seed(0)
    sae = SparseAutoencoder(4, 6, k=1)
    x = torch.randn(16, 4)
    aux = TopKAuxiliary(k_aux=2, dead_after=10)
    sae.train()
    h = sae.encode(x)
    # after one batch of 16 inputs, no latent has gone 100 without firing: nothing is
    # dead yet
    assert TopKAuxiliary(k_aux=2, dead_after=100)(sae, x, h).item() == 0
    with torch.no_grad():
        # latents 4 and 5 are dead
        sae.since_fired.copy_(torch.tensor([0.0, 0, 0, 0, 20, 20]))
    loss = aux(sae, x, h.detach())
    assert loss.item() > 0
    loss.backward()
    assert sae.W_enc.grad[:4].abs().sum() == 0 and sae.W_enc.grad[4:].abs().sum() > 0
    # by hand: the dead latents' pre-activations (ReLU'd) reconstruct the main error
    # through their columns
    z = sae.pre_activation(x).detach()[:, 4:].relu()
    e_hat = z @ sae.dictionary.detach()[:, 4:].T
    error = x - sae.decode(h.detach()).detach()
    by_hand = ((e_hat - error) ** 2).sum() / ((error - error.mean(0)) ** 2).sum() / 32
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    with pytest.raises(TypeError, match="SparseAutoencoder"):
        aux(ToyModel(4, 2), x, h)
    with pytest.raises(ValueError, match="k_aux"):
        TopKAuxiliary(k_aux=0, dead_after=1)


def test_the_auxiliary_loss_revives_a_latent_that_never_makes_the_top_k():
    # Two kinds of input, 3 e1 and 3 e2, and k = 1. Latent 0 is the largest on both
    # (pre-activations 3 and 3); latent 1 is positive on the e2 inputs but always
    # smaller (0.15), so it never fires and gets no gradient from the main loss. Its
    # atom (0.6, 0.8) leans towards what latent 0 misses on the e2 inputs.
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(512, 2)
    x[0::2, 0], x[1::2, 1] = 3, 3
    x = x + 0.05 * torch.randn(512, 2, generator=g)

    def run(penalty):
        sae = SparseAutoencoder(2, 2, k=1)
        with torch.no_grad():
            for p in sae.parameters():
                p.zero_()
            sae.W_enc.copy_(torch.tensor([[1.0, 1.0], [0.0, 0.05]]))
            sae.W_dec.copy_(torch.tensor([[1.0, 0.6], [0.0, 0.8]]))
        history = fit(
            sae,
            x,
            epochs=30,
            lr=1e-2,
            batch_size=64,
            penalty=penalty,
            seed=0,
            progress=False,
        )
        fires = (sae.cpu().eval().encode(x) > 0).float().mean(dim=0)
        return sae, fires, history.train_loss[-1]

    dead_sae, dead_fires, dead_loss = run(None)
    assert dead_fires[1] == 0  # never fired: its weights are where they started
    assert torch.equal(dead_sae.W_enc[1], torch.tensor([0.0, 0.05]))
    revived_sae, fires, loss = run(TopKAuxiliary(k_aux=1, dead_after=64))
    # revived: latent 1 now wins on the e2 inputs, latent 0 on the e1 inputs
    assert fires.tolist() == [0.5, 0.5]
    assert loss < dead_loss / 100


def test_fit_trains_both_families_and_l1_makes_the_code_sparser():
    torch.manual_seed(0)
    # 16 directions in 8 dimensions
    truth = torch.nn.functional.normalize(torch.randn(8, 16), dim=0)
    acts = toy_features(2048, 16, density=0.1, seed=0) @ truth.T

    def train(penalty=None, k=None):
        torch.manual_seed(0)
        sae = SparseAutoencoder(8, 32, k=k).center(acts)
        fit(
            sae,
            acts,
            epochs=30,
            batch_size=64,
            lr=3e-3,
            penalty=penalty,
            progress=False,
        )
        return sae.cpu(), sae.cpu().encode(acts)

    (plain, h_plain), (l1, h_l1), (topk, h_topk) = (
        train(),
        train(L1Sparsity(2e-2)),
        train(k=2),
    )
    assert metrics.l0(h_l1) < 0.6 * metrics.l0(h_plain)
    assert metrics.l0(h_topk) <= 2
    for sae in (l1, topk):
        assert metrics.fvu(acts, sae(acts).detach()) < 0.2
    # the sparse dictionaries find the true directions far better than the plain one
    # does
    for sae in (l1, topk):
        assert (
            metrics.mmcs(sae.dictionary.detach(), truth)
            > metrics.mmcs(plain.dictionary.detach(), truth) + 0.15
        )


def test_cache_key_covers_the_module_of_each_models_class(tiny):
    from aebook.models import Autoencoder

    key = cache_key(SparseAutoencoder(784, 8), tiny, {"epochs": 1})
    assert set(key["code"]) == {
        "aebook.training",
        "aebook.models",
        "aebook.draws",
        "aebook.sae",
    }
    assert set(cache_key(ToyModel(784, 8), tiny, {"epochs": 1})["code"]) == {
        "aebook.training",
        "aebook.models",
        "aebook.draws",
        "aebook.superposition",
    }
    assert set(cache_key(Autoencoder([784, 8]), tiny, {"epochs": 1})["code"]) == {
        "aebook.training",
        "aebook.models",
        "aebook.draws",
    }


def test_sae_round_trips_through_the_cache(tiny, tmp_path):
    torch.manual_seed(0)
    a, _ = train_or_load(
        SparseAutoencoder(784, 16, k=4),
        tiny,
        directory=tmp_path,
        epochs=1,
        progress=False,
    )
    torch.manual_seed(0)
    b, _ = train_or_load(
        SparseAutoencoder(784, 16, k=4),
        tiny,
        directory=tmp_path,
        epochs=1,
        progress=False,
    )
    assert all(
        torch.equal(p, q)
        for p, q in zip(a.state_dict().values(), b.state_dict().values())
    )
    assert len(list(tmp_path.iterdir())) == 1


# --- the metrics, on hand-computed cases ---


def test_l0_and_dead_fraction():
    h = torch.tensor([[0.0, 2, 0, 1], [0, 0, 0, 3], [0, 1, 0, 0]])
    assert metrics.l0(h) == pytest.approx(4 / 3)
    assert metrics.dead_fraction(h) == pytest.approx(0.5)  # latents 0 and 2
    with pytest.raises(ValueError, match="width"):
        metrics.l0(torch.rand(3))


def test_fvu_is_centred():
    # variance about the mean (3, 0): 4 + 0 + 4 = 8
    x = torch.tensor([[1.0, 0], [3, 0], [5, 0]])
    assert metrics.fvu(x, x) == 0
    assert metrics.fvu(x, x.mean(0).expand_as(x)) == pytest.approx(1.0)
    assert metrics.fvu(x, x + torch.tensor([0.0, 1])) == pytest.approx(3 / 8)
    # an offset changes nothing
    assert metrics.fvu(x + 100, x + 100 + torch.tensor([0.0, 1])) == pytest.approx(
        3 / 8
    )


def test_shrinkage_is_one_unbiased_and_the_scale_of_a_shrunk_reconstruction():
    torch.manual_seed(0)
    x = torch.randn(200, 5) + 7
    m = x.mean(0)
    assert metrics.shrinkage(x, x) == pytest.approx(1.0)
    assert metrics.shrinkage(x, m + 0.8 * (x - m)) == pytest.approx(0.8, rel=1e-6)


def test_loss_recovered():
    assert metrics.loss_recovered(
        original=0.1, ablated=2.1, spliced=0.6
    ) == pytest.approx(0.75)
    assert (
        metrics.loss_recovered(0.1, 2.1, 0.1) == 1
        and metrics.loss_recovered(0.1, 2.1, 2.1) == 0
    )
    with pytest.raises(ValueError, match="nothing to recover"):
        metrics.loss_recovered(1.0, 1.0, 0.5)


def test_mmcs():
    true = torch.eye(3)  # three axes in 3-D
    # scale does not matter
    assert metrics.mmcs(torch.eye(3) * 5, true) == pytest.approx(1.0)
    learned = torch.tensor([[1.0, 1], [1, 0], [0, 0]])  # (1,1,0)/sqrt2 and (1,0,0)
    # axis 0: max(1/sqrt2, 1) = 1; axis 1: 1/sqrt2; axis 2: 0
    assert metrics.mmcs(learned, true) == pytest.approx((1 + 1 / math.sqrt(2) + 0) / 3)
    each = metrics.mmcs(learned, true, per_feature=True)
    assert each.tolist() == pytest.approx([1, 1 / math.sqrt(2), 0])
    with pytest.raises(ValueError, match="same d"):
        metrics.mmcs(torch.rand(3, 2), torch.rand(4, 2))


def test_matched_share_counts_learned_directions_that_match_a_true_one():
    true = torch.eye(3)[:, :2]  # e1, e2 in 3-D
    learned = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]).T
    learned = torch.cat([learned, torch.tensor([[1.0], [1.0], [0.0]])], dim=1)
    # e1 and 2 e2 match; e3 and (1, 1, 0) (cosine 0.71 with each) do not
    assert metrics.matched_share(learned, true) == 0.5
    assert metrics.matched_share(learned, true, threshold=0.7) == 0.75
    assert metrics.matched_share(-learned, true) == 0.0  # signed, like mmcs
    with pytest.raises(ValueError, match="same d"):
        metrics.matched_share(torch.ones(2, 3), true)


def test_top_purity():
    labels = torch.tensor([0, 0, 1, 1, 2])
    # unit 0 tops 0, 0, 1; unit 1 tops 2, 1, 1
    scores = torch.tensor([[5.0, 1], [4, 2], [3, 3], [0, 4], [1, 5]])
    assert torch.allclose(
        metrics.top_purity(scores, labels, top=3), torch.tensor([2 / 3, 2 / 3])
    )
    assert torch.allclose(
        metrics.top_purity(scores, labels, top=2), torch.tensor([1.0, 0.5])
    )
    with pytest.raises(ValueError, match="top"):
        metrics.top_purity(scores, labels, top=6)


# --- the SAE contains PCA (chapter 10's construction) ---


def _correlated(n=600, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) @ torch.randn(d, d, generator=g) + 3.0


def test_pca_topk_keeps_each_inputs_largest_coefficients():
    x = _correlated()
    pca = metrics.pca_fit(x, 12)
    comps = torch.from_numpy(pca.components_).float()
    mean = torch.from_numpy(pca.mean_).float()
    c = (x - mean) @ comps.T
    r = metrics.pca_topk_reconstruct(x, x, 3, pca)
    kept = (r - mean) @ comps.T  # the coefficients it kept, zeros elsewhere
    chosen = kept.abs() > 1e-4
    largest = torch.zeros_like(chosen).scatter(1, c.abs().topk(3, dim=1).indices, True)
    # the 3 largest |c| of each input, and only they
    assert torch.equal(chosen, largest)
    # kept as they are, sign included
    assert torch.allclose(kept[chosen], c[chosen], atol=1e-4)
    # per input it is at least as good as the first 3 components, and with all of them
    # exact
    err_top = (x - r).pow(2).sum(dim=1)
    err_first = (x - metrics.pca_reconstruct(x, x, 3, pca)).pow(2).sum(dim=1)
    assert (err_top <= err_first + 1e-3).all() and err_top.sum() < err_first.sum()
    assert torch.allclose(metrics.pca_topk_reconstruct(x, x, 12, pca), x, atol=1e-3)
    with pytest.raises(ValueError, match="between 1 and"):
        metrics.pca_topk_reconstruct(x, x, 13, pca)


def test_a_topk_sae_built_from_signed_pca_directions_is_pca():
    x = _correlated()
    pca = metrics.pca_fit(x, 12)
    u = torch.from_numpy(pca.components_).float().T  # (12, 12)
    for k in (1, 3, 5):
        first_k = SparseAutoencoder(12, 40, k=k).center(x)
        first_k.start_from(torch.cat([u[:, :k], -u[:, :k]], dim=1), others_off=True)
        with torch.no_grad():
            assert torch.allclose(
                first_k(x), metrics.pca_reconstruct(x, x, k, pca), atol=1e-3
            )
        every = SparseAutoencoder(12, 40, k=k).center(x)
        every.start_from(torch.cat([u, -u], dim=1), others_off=True)
        with torch.no_grad():
            assert torch.allclose(
                every(x), metrics.pca_topk_reconstruct(x, x, k, pca), atol=1e-3
            )
    # without others_off the other latents keep their random start and can fire
    loose = SparseAutoencoder(12, 40, k=3).center(x).start_from(u[:, :2])
    assert torch.allclose(loose.dictionary[:, :2], u[:, :2], atol=1e-6)
    assert (loose.b_enc == 0).all()
    with pytest.raises(ValueError, match="directions of shape"):
        loose.start_from(torch.randn(11, 2))
    with pytest.raises(ValueError, match="directions of shape"):
        loose.start_from(torch.randn(12, 41))
