"""Nearest-neighbour search in float and binary codes, precision at k, and the baseline
hash codes."""

import numpy as np
import pytest
import torch

from aebook.models import AEConfig, Autoencoder, CodeNoise
from aebook.retrieval import (
    code_table,
    hamming_distances,
    hamming_nearest,
    lookup_within,
    nearest,
    pack_bits,
    pca_directions,
    precision_at_k,
    precision_within_radius,
    random_directions,
    sign_codes,
)


def test_nearest_matches_a_brute_force_sort():
    g = torch.Generator().manual_seed(0)
    db, q = torch.randn(300, 7, generator=g), torch.randn(20, 7, generator=g)
    got = nearest(db, q, k=5, batch_size=8)
    want = torch.cdist(q, db).argsort(dim=1)[:, :5].numpy()
    assert np.array_equal(got, want)


def test_hamming_nearest_matches_a_stable_sort_of_bit_differences():
    rng = np.random.default_rng(0)
    bits_db, bits_q = rng.integers(0, 2, (500, 20)), rng.integers(0, 2, (30, 20))
    got = hamming_nearest(pack_bits(bits_db), pack_bits(bits_q), k=10, batch_size=7)
    dist = (bits_q[:, None, :] != bits_db[None, :, :]).sum(2)
    # ties: the lower index first
    want = np.argsort(dist, axis=1, kind="stable")[:, :10]
    assert np.array_equal(got, want)
    # codes of one machine word (here 32 bits) take the fast path: the same answer
    b32_db, b32_q = rng.integers(0, 2, (500, 32)), rng.integers(0, 2, (30, 32))
    dist = (b32_q[:, None, :] != b32_db[None, :, :]).sum(2)
    assert np.array_equal(
        hamming_nearest(pack_bits(b32_db), pack_bits(b32_q), k=10),
        np.argsort(dist, axis=1, kind="stable")[:, :10],
    )
    # all of the database, and a query that is in it: itself first
    everything = hamming_nearest(pack_bits(bits_db), pack_bits(bits_db[3:4]), k=500)
    assert everything[0, 0] == 3 and sorted(everything[0]) == list(range(500))


def test_pack_bits_and_bad_input():
    assert pack_bits(np.array([[1, 0, 0, 0, 0, 0, 0, 1, 1]])).tolist() == [[129, 128]]
    with pytest.raises(ValueError, match="0s and 1s"):
        pack_bits(np.array([[0.2, 0.9]]))
    with pytest.raises(ValueError, match="k must be between"):
        nearest(torch.zeros(3, 2), torch.zeros(1, 2), k=4)
    with pytest.raises(ValueError, match="same width"):
        nearest(torch.zeros(3, 2), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="packed uint8"):
        hamming_nearest(np.zeros((3, 2)), np.zeros((1, 2)))


def test_precision_at_k_counts_matching_labels():
    neighbours = np.array([[0, 1], [2, 3]])
    assert precision_at_k(neighbours, np.array([5, 5, 5, 6]), np.array([5, 6])) == 0.75


def test_sign_codes_of_pca_and_random_directions():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g) * torch.tensor([5.0, 3.0, 1.0, 0.5, 0.1]) + 2.0
    d = pca_directions(x, 2)
    assert d.shape == (2, 5) and torch.allclose(d @ d.T, torch.eye(2), atol=1e-5)
    assert abs(d[0, 0]) > 0.95  # the widest axis comes first
    bits = sign_codes(x, d, x.mean(0))
    assert bits.dtype == torch.uint8 and set(bits.unique().tolist()) == {0, 1}
    # hyperplanes through the mean split the data
    assert abs(bits.float().mean().item() - 0.5) < 0.1
    r = random_directions(5, 16, seed=1)
    assert r.shape == (16, 5) and torch.equal(r, random_directions(5, 16, seed=1))


def test_code_noise_only_while_training_and_in_the_key():
    torch.manual_seed(0)
    ae = Autoencoder([784, 32, 8], code="sigmoid", code_noise=4.0)
    assert (
        isinstance(ae.encoder[-2], CodeNoise)
        and ae.config.to_dict()["code_noise"] == 4.0
    )
    x = torch.rand(5, 784)
    ae.eval()
    assert torch.equal(ae.encode(x), ae.encode(x))  # no noise in eval mode
    ae.train()
    assert not torch.equal(ae.encode(x), ae.encode(x))
    assert Autoencoder.from_config(ae.config.to_dict()).config == ae.config
    plain = Autoencoder([784, 32, 8], code="sigmoid")
    assert not any(isinstance(m, CodeNoise) for m in plain.encoder)
    assert set(plain.state_dict()) == set(ae.state_dict())  # the noise has no weights
    with pytest.raises(ValueError, match="code_noise"):
        AEConfig((784, 8), code_noise=-1.0)


# 12: two bytes, no machine word; 32: one word
@pytest.mark.parametrize("bits", [12, 32])
def test_hamming_distances_count_differing_bits(bits):
    rng = np.random.default_rng(2)
    db, q = rng.integers(0, 2, (50, bits)), rng.integers(0, 2, (9, bits))
    want = (q[:, None, :] != db[None, :, :]).sum(2)
    assert np.array_equal(hamming_distances(pack_bits(db), pack_bits(q)), want)


def test_precision_within_radius_by_hand():
    db = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1], [1, 1, 1, 1]])
    db_y = np.array([0, 0, 1, 1])
    q = np.array([[0, 0, 0, 0], [1, 1, 0, 0]])
    q_y = np.array([0, 1])
    # query 0: rows 0, 1 (distance 0, 1) and 2 (distance 2) -> 2 of 3 right; query 1:
    # rows 0 (2), 3 (2) -> 1 of 2
    precision, empty = precision_within_radius(
        pack_bits(db), pack_bits(q), db_y, q_y, radius=2
    )
    assert precision == pytest.approx((2 / 3 + 1 / 2) / 2) and empty == 0
    # radius 0: query 0 finds row 0 (right); query 1 finds nothing and counts 0
    precision, empty = precision_within_radius(
        pack_bits(db), pack_bits(q), db_y, q_y, radius=0
    )
    assert precision == pytest.approx(0.5) and empty == pytest.approx(0.5)
    each, _ = precision_within_radius(
        pack_bits(db), pack_bits(q), db_y, q_y, radius=2, per_query=True
    )
    assert each == pytest.approx([2 / 3, 1 / 2])


def test_address_lookup_finds_exactly_the_codes_within_the_radius():
    rng = np.random.default_rng(3)
    db = pack_bits(rng.integers(0, 2, (400, 16)))
    db[7] = db[3]  # two rows share an address
    table = code_table(db)
    assert table[db[3].tobytes()] == [3, 7]
    q = pack_bits(rng.integers(0, 2, (20, 16)))
    dist = hamming_distances(db, q)
    for i in range(len(q)):
        assert (
            sorted(lookup_within(table, q[i], radius=2))
            == np.flatnonzero(dist[i] <= 2).tolist()
        )


def test_precision_at_k_per_query():
    neighbours = np.array([[0, 1], [2, 3]])
    each = precision_at_k(
        neighbours, np.array([0, 1, 1, 1]), np.array([0, 1]), per_query=True
    )
    assert each.tolist() == [0.5, 1.0]
