"""Search with codes: nearest neighbours in float codes and in packed binary codes,
precision at k, and the binary codes a practitioner would try before an autoencoder
(signs of PCA projections, random-projection hashing)."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from .metrics import pca_fit


def _as_array(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def nearest(
    database: torch.Tensor | np.ndarray,
    queries: torch.Tensor | np.ndarray,
    k: int = 10,
    batch_size: int = 1024,
) -> np.ndarray:
    """Indices (Q, k) of each query's k nearest database rows by Euclidean distance,
    nearest first.

    database (N, d), queries (Q, d), float codes or pixels. Exhaustive: every distance
    is computed.
    """
    db, q = (
        torch.as_tensor(_as_array(a), dtype=torch.float32) for a in (database, queries)
    )
    _check(db, q, k)
    # (N,): ||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2, and ||b||^2 does not change the
    # order
    sq = db.pow(2).sum(1)
    out = [
        torch.topk(sq - 2 * qb @ db.T, k, dim=1, largest=False).indices
        for qb in q.split(batch_size)
    ]
    return torch.cat(out).numpy()


def pack_bits(codes: torch.Tensor | np.ndarray) -> np.ndarray:
    """Binary codes (N, bits) of 0/1 (or booleans) packed 8 to a byte: (N, ceil(bits /
    8)) uint8."""
    c = _as_array(codes)
    if c.ndim != 2 or not np.isin(c, (0, 1)).all():
        raise ValueError(
            f"expected an (N, bits) array of 0s and 1s, got shape {c.shape}; threshold "
            "the codes first, "
            f"e.g. (h > 0.5)"
        )
    return np.packbits(c.astype(np.uint8), axis=1)


def hamming_distances(database: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Hamming distances (Q, N) int32 between packed codes: database (N, B), queries (Q,
    B) from `pack_bits`.

    Exhaustive: one XOR and one popcount per pair (per machine word, for codes of 1, 2,
    4 or 8 bytes).
    """
    _check_packed(database, queries)
    width = database.shape[1]
    if width in _WORDS:  # 1, 2, 4 or 8 bytes: one machine word per code
        database, queries = (
            np.ascontiguousarray(a).view(_WORDS[width])[:, 0]
            for a in (database, queries)
        )
    # (Q, N) or (Q, N, bytes)
    diff = np.bitwise_count(queries[:, None] ^ database[None, :])
    return (diff if diff.ndim == 2 else diff.sum(axis=2, dtype=np.int32)).astype(
        np.int32
    )


def hamming_nearest(
    database: np.ndarray, queries: np.ndarray, k: int = 10, batch_size: int = 256
) -> np.ndarray:
    """Indices (Q, k) of each query's k nearest database codes by Hamming distance,
    nearest first.

    database (N, B), queries (Q, B): codes packed by `pack_bits`. Ties keep the database
    order (the search ranks by distance, then by index), so the result is the same on
    every run.
    """
    _check_packed(database, queries)
    _check(database, queries, k)
    n = len(database)
    index = torch.arange(n, dtype=torch.int32)
    out = []
    for start in range(0, len(queries), batch_size):
        # (b, N)
        dist = torch.from_numpy(
            hamming_distances(database, queries[start : start + batch_size])
        )
        # unique keys ordered by (distance, index): ties keep database order
        keyed = dist * n + index
        out.append(
            torch.topk(keyed, k, dim=1, largest=False, sorted=True).indices.numpy()
        )
    return np.concatenate(out)


def precision_within_radius(
    database: np.ndarray,
    queries: np.ndarray,
    database_labels: torch.Tensor | np.ndarray,
    query_labels: torch.Tensor | np.ndarray,
    radius: int = 2,
    per_query: bool = False,
) -> tuple[float | np.ndarray, float]:
    """Salakhutdinov & Hinton's protocol: every database code within Hamming ``radius``
    of the query is returned, however many (no ties to break). Returns (mean precision
    over queries, a query that returns nothing counting 0, or each query's (Q,) with
    ``per_query``; the share of queries that return nothing). Packed codes as in
    `hamming_distances`."""
    db_y, q_y = _as_array(database_labels), _as_array(query_labels)
    within = hamming_distances(database, queries) <= radius  # (Q, N)
    found = within.sum(1)
    hits = (within & (db_y[None, :] == q_y[:, None])).sum(1)
    precision = np.where(found > 0, hits / np.maximum(found, 1), 0.0)
    empty = float((found == 0).mean())
    return (precision if per_query else float(precision.mean())), empty


def code_table(database: np.ndarray) -> dict[bytes, list[int]]:
    """The database's packed codes (N, B) as addresses: code -> the indices of the rows
    that have it."""
    table: dict[bytes, list[int]] = {}
    for i, row in enumerate(database):
        table.setdefault(row.tobytes(), []).append(i)
    return table


def lookup_within(
    table: dict[bytes, list[int]], query: np.ndarray, radius: int
) -> list[int]:
    """Database indices whose code is within Hamming ``radius`` of one packed query code
    (B,), found by visiting every address that differs from the query in at most
    ``radius`` bits: no comparison with the stored codes, so the time depends on the
    number of addresses, not on the database size."""
    bits = np.unpackbits(query)
    found: list[int] = []
    for r in range(radius + 1):
        for flip in itertools.combinations(range(len(bits)), r):
            b = bits.copy()
            b[list(flip)] ^= 1
            found += table.get(np.packbits(b).tobytes(), [])
    return found


_WORDS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _check_packed(database: np.ndarray, queries: np.ndarray) -> None:
    if (
        database.dtype != np.uint8
        or queries.dtype != np.uint8
        or database.shape[1:] != queries.shape[1:]
    ):
        raise ValueError(
            "expected two packed uint8 code arrays (from pack_bits) with the same "
            "number of bytes"
        )


def _check(database, queries, k: int) -> None:
    if database.ndim != 2 or queries.ndim != 2 or database.shape[1] != queries.shape[1]:
        raise ValueError(
            f"expected a database (N, d) and queries (Q, d) of the same width, got "
            f"{tuple(database.shape)} and {tuple(queries.shape)}"
        )
    if not 1 <= k <= len(database):
        raise ValueError(
            f"k must be between 1 and the database size {len(database)}, got {k}"
        )


def precision_at_k(
    neighbours: np.ndarray,
    database_labels: torch.Tensor | np.ndarray,
    query_labels: torch.Tensor | np.ndarray,
    per_query: bool = False,
) -> float | np.ndarray:
    """The share of the neighbours (Q, k) whose label is their query's: mean precision
    at k, in [0, 1] (or each query's, (Q,), with ``per_query``: for paired comparisons
    of two searches)."""
    db_y, q_y = _as_array(database_labels), _as_array(query_labels)
    if len(neighbours) != len(q_y):
        raise ValueError(
            f"need one row of neighbours per query label, got {len(neighbours)} and "
            f"{len(q_y)}"
        )
    each = (db_y[neighbours] == q_y[:, None]).mean(1)
    return each if per_query else float(each.mean())


def sign_codes(
    x: torch.Tensor, directions: torch.Tensor, mean: torch.Tensor
) -> torch.Tensor:
    """Bits (N, bits) of 0/1: which side of each hyperplane through ``mean`` normal to
    ``directions`` (bits, D) each row of x (N, D) lies on."""
    return ((x - mean) @ directions.T > 0).to(torch.uint8)


def pca_directions(train_x: torch.Tensor, bits: int) -> torch.Tensor:
    """The top ``bits`` principal directions of train_x (N, D): (bits, D), orthonormal
    rows (the book's one PCA fit)."""
    return torch.from_numpy(pca_fit(train_x, bits).components_).float()


def random_directions(dim: int, bits: int, seed: int = 0) -> torch.Tensor:
    """``bits`` random Gaussian directions in ``dim`` dimensions, (bits, dim): sign
    random projections, the locality-sensitive hashing of angles (Charikar, 2002)."""
    return torch.randn(bits, dim, generator=torch.Generator().manual_seed(seed))
