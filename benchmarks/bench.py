"""Benchmarks for the book: they print figures, they do not pass or fail.

    make bench    # or: python benchmarks/bench.py [--skip-notebooks] [--skip-clothes]

1. Each chapter notebook, executed in a fresh kernel: wall time with an empty
   cache (first run: parses the data, trains every model) and with a warm one,
   and the peak resident memory of the largest process. For a chapter listed in
   SLOW_COMPARISONS, also the time with only those models cached (its target).
   Then each chapter once more, cold, on the clothes (AEBOOK_DATA=fashion5k): the
   time `make test` spends on its second pass over the book.
2. The warm `load_data()` time (the parsed CSV comes from the .npz cache), for the
   digits and for the clothes.
3. One epoch of `fit` against a bare PyTorch loop over the same model, data and
   batches, for a fully connected and for a convolutional autoencoder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from aebook.data import load_data  # noqa: E402 (after the sys.path line above)
from aebook.models import Autoencoder, ConvAutoencoder  # noqa: E402
from aebook.training import adam, fit, set_seed  # noqa: E402

# Models that a chapter's run-time target allows to come from the cache, by cache name
# (the file is "<name>-<16 hex digits>.pt"): a chapter's target is "under N s, with its
# slower comparisons cached". They are the end-to-end deep runs, and what the rigour
# pass added to back a claim rather than to teach: the runs from seeds 1 and 2 that give
# a probe its seed spread, the UFLDL recipe and its control, and the five-objective
# table's models that no other section of the Denoising chapter uses.
_SEEDED = [
    f"deep-{what}-seed{s}"
    for what in ("deep__end_to_end", "deep__pretrained", "one_wide_hidden_layer")
    for s in (1, 2)
]
_STACKS = [f"deep-stack-seed{s}-layer{i}" for s in (1, 2) for i in range(3)]
SLOW_COMPARISONS = {
    # seeds 1 and 2 of the probe comparison, the tied-weight pair (a control: the
    # finding with the original paper's tied weights), and exercise 1's ten-times
    # penalty
    "03_regularized": (
        *(f"overcomplete-1024{dae}-seed{s}" for dae in ("", "-dae") for s in (1, 2)),
        "sparse-plain-sigmoid-tied",
        "sparse-cae-0_003-tied",
        "cae-0_03",
    ),
    "04_sparse": ("sparse-ufldl", "sparse-ufldl-no-decay"),
    "05_denoising": (
        "sparse-plain-sigmoid",
        "sparse-l1-sig-3e-4",
        "sparse-kl-0_05",
        "sparse-cae-0_003",
        "sparse-dae-gaussian-0_3",
    ),
    "06_deep": ("deep-deep__end_to_end", "deep-e2e-early-stopping", *_SEEDED, *_STACKS),
    # the fully connected comparisons (chapter 6's models, by its recipes), the slower
    # resize-convolution decoder, and the pair retrained on shifted digits
    "07_convolutional": (
        "deep-shallow",
        "deep-one_hidden_layer",
        "deep-one_wide_hidden_layer",
        *(f"deep-stack-layer{i}" for i in range(3)),
        "deep-deep__pretrained",
        "conv-16-32-resize",
        "conv-fc-1024-shifted",
        "conv-32-64-shifted",
        # the second rigour pass: the small fully connected baselines (the linear one is
        # chapter 6's), the best model of each family from seeds 1 and 2, the
        # learning-rate check
        "deep-linear",
        "deep-conv-chapter_784-32-30",
        *(f"deep-one_wide_hidden_layer-seed{s}" for s in (1, 2)),
        *(f"conv-32-64-seed{s}" for s in (1, 2)),
        "conv-8-16-lr-0_001",
        # exercise 2's comparison: the full feature map, and two codes of 49 numbers
        "conv-8-16-spatial",
        "conv-8-16-code49-map",
        "conv-8-16-code49-dense",
    ),
}


# Each chapter's cold time (seconds, empty cache, digits, alone on the machine), as the
# last bench measured it; each chapter's first lines state it (tests/test_book.py checks
# they agree).
COLD_RECORD = ROOT / "benchmarks" / "cold.json"
COST_MARK = "*Run time:"
MACHINE = "a 2-core CPU"  # what the cost lines say the bench ran on


def secs(value: float | None) -> str:
    """A table cell: '12.3 s', or '-' for a run that was not made."""
    return "-" if value is None else f"{value:.1f} s"


def cost_phrase(seconds: float) -> str:
    """A cold time as a reader wants it: 'about 40 s' under 90 s, else
    'about 4.5 min'."""
    if seconds < 90:
        return f"about {max(10, round(seconds / 10) * 10)} s"
    return f"about {round(seconds / 30) / 2:g} min"


def cost_line(seconds: float, machine: str = MACHINE) -> str:
    """The line under a chapter's title that says what a cold run costs."""
    line = (
        f"{COST_MARK} {cost_phrase(seconds)} from a cold start (nothing cached) on "
        f"{machine}, "
        "as `make bench` measured it."
    )
    if seconds >= 90:
        line += (
            " Nearly all of it is training; a GPU runtime should shorten it (not "
            "measured "
            "here: the book's own runs are CPU-only)."
        )
    return line + "*"


def record_cold(cold: dict[str, float], machine: str = MACHINE) -> None:
    """Keep ``cold`` (chapter -> seconds) in COLD_RECORD and write each chapter's cost
    line."""
    record = json.loads(COLD_RECORD.read_text()) if COLD_RECORD.exists() else {}
    record.update({name: round(seconds, 1) for name, seconds in cold.items()})
    COLD_RECORD.write_text(json.dumps(dict(sorted(record.items())), indent=1) + "\n")
    for name, seconds in cold.items():
        path = ROOT / "chapters" / f"{name}.ipynb"
        nb = nbformat.read(path, as_version=4)
        title, *rest = nb.cells[0].source.split("\n")
        rest = [line for line in rest if not line.startswith(COST_MARK)]
        while rest and not rest[0].strip():
            rest.pop(0)
        nb.cells[0].source = "\n".join(
            [title, "", cost_line(seconds, machine), "", *rest]
        )
        nbformat.write(nb, path)


class NotebookFailed(RuntimeError):
    """A benchmarked notebook raised (a claim, a cell timeout on a shared machine): its
    chapter gets no row."""


def notebook_run(path: Path, cache: str, data: str = "mnist5k") -> tuple[float, float]:
    """(seconds, the kernel's peak RSS in MiB) of executing ``path`` on ``data`` in a
    child process with AEBOOK_CACHE=cache."""
    env = {**os.environ, "AEBOOK_CACHE": cache, "AEBOOK_DATA": data}
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_notebook.py"), str(path)],
        env=env,
        capture_output=True,
        text=True,
    )
    # the last lines of the child's traceback say which cell and why
    if out.returncode != 0:
        raise NotebookFailed(
            f"{path.stem} on {data}: {' | '.join(out.stderr.strip().splitlines()[-3:])}"
        )
    seconds, peak_mib = out.stdout.strip().splitlines()[-1].split()
    return float(seconds), float(peak_mib)


def slow_cached_run(path: Path, warm_cache: str) -> float | None:
    """Seconds of a run whose cache holds only the chapter's SLOW_COMPARISONS (None if
    it has none)."""
    names = SLOW_COMPARISONS.get(path.stem)
    if not names:
        return None
    with tempfile.TemporaryDirectory(prefix="aebook-bench-") as cache:
        pattern = re.compile(f"({'|'.join(map(re.escape, names))})-[0-9a-f]{{16}}\\.pt")
        kept = [
            f
            for f in (Path(warm_cache) / "models").glob("*.pt")
            if pattern.fullmatch(f.name)
        ]
        if len(kept) != len(names):
            raise RuntimeError(
                f"expected one cached model per name {names}, found "
                f"{[f.name for f in kept]}"
            )
        (Path(cache) / "models").mkdir()
        for f in kept:
            shutil.copy(f, Path(cache) / "models" / f.name)
        return notebook_run(path, cache)[0]


def bench_notebooks(
    clothes_too: bool = True,
    only: list[str] | None = None,
    cold_only: bool = False,
) -> list[tuple[str, float, float | None, float | None, float, float | None]]:
    paths = sorted((ROOT / "chapters").glob("*.ipynb"))
    unknown = set(only or ()) - {p.stem for p in paths}
    if unknown:
        raise SystemExit(
            f"no chapter named {sorted(unknown)}; choose from {[p.stem for p in paths]}"
        )
    rows = []
    for path in (p for p in paths if not only or p.stem in only):
        # one failing chapter does not cost the others' figures, measured until then
        try:
            with tempfile.TemporaryDirectory(prefix="aebook-bench-") as cache:
                cold, mem = notebook_run(path, cache)
                slow_cached = None if cold_only else slow_cached_run(path, cache)
                warm = None if cold_only else notebook_run(path, cache)[0]
            clothes = None
            if clothes_too and not cold_only:
                with tempfile.TemporaryDirectory(prefix="aebook-bench-") as cache:
                    clothes, _ = notebook_run(path, cache, data="fashion5k")
        except NotebookFailed as err:
            print(f"  {path.stem}: FAILED, no figures: {err}", flush=True)
            continue
        rows.append((path.stem, cold, slow_cached, warm, mem, clothes))
        extra = (
            f", slow comparisons cached {slow_cached:.1f} s"
            if slow_cached is not None
            else ""
        )
        print(
            f"  {path.stem}: cold {cold:.1f} s{extra}, warm {secs(warm)}, peak "
            f"{mem:.0f} MiB; "
            f"cold on clothes {secs(clothes)}",
            flush=True,
        )
    return rows


def bench_data_load(name: str = "mnist5k", repeats: int = 20) -> float:
    load_data(name)  # make sure the array cache exists
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        load_data(name)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bare_epoch(
    model: torch.nn.Module,
    x: torch.Tensor,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    batch_size: int,
) -> None:
    """The loop a reader would write by hand: no hooks, no progress bar, no
    bookkeeping."""
    model.train()
    for idx in torch.randperm(len(x), generator=gen).split(batch_size):
        xb = x[idx]
        loss = F.mse_loss(model(xb), xb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def bench_fit(
    x: torch.Tensor,
    make_model: Callable[[], torch.nn.Module],
    rounds: int = 15,
    batch_size: int = 128,
) -> tuple[float, float, float]:
    """(median seconds per epoch of fit, of the bare loop, median of the paired ratios
    fit / bare).

    The two alternate, one epoch each per round. The machine's speed drifts by up to a
    factor of two within minutes, so the overhead is the median of each round's own
    ratio, not a ratio of medians taken over different moments (which read +17% and -14%
    in one run).
    """
    set_seed(0)
    bare_model = make_model()
    # the same optimizer as fit: this measures the loop, not Adam
    bare_opt = adam(bare_model, lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    set_seed(0)
    fit_model = make_model()
    fit(fit_model, x, epochs=1, progress=False)  # warm-up for both paths
    bare_epoch(bare_model, x, bare_opt, gen, batch_size)
    fit_times, bare_times = [], []
    for _ in range(rounds):
        fit_times.append(
            fit(
                fit_model,
                x,
                epochs=1,
                batch_size=batch_size,
                device="cpu",
                progress=False,
            ).seconds
        )
        start = time.perf_counter()
        bare_epoch(bare_model, x, bare_opt, gen, batch_size)
        bare_times.append(time.perf_counter() - start)
    return (
        statistics.median(fit_times),
        statistics.median(bare_times),
        statistics.median(f / b for f, b in zip(fit_times, bare_times)),
    )


def speed_reference(x: torch.Tensor, epochs: int = 7) -> float:
    """Median seconds of one fit epoch of 784-256-32 on x: the machine's speed at this
    moment.

    Timed after the notebooks (``bench_fit`` times the same epoch just before them), so
    that a table says how fast the machine was while it ran (179 ms and 106 ms within
    five minutes on this machine).
    """
    set_seed(0)
    model = Autoencoder([784, 256, 32])
    fit(model, x, epochs=1, progress=False)  # warm-up
    return statistics.median(
        fit(model, x, epochs=1, progress=False).seconds for _ in range(epochs)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--skip-notebooks",
        action="store_true",
        help="only the data-load and fit benchmarks",
    )
    parser.add_argument(
        "--skip-clothes",
        action="store_true",
        help="leave out the notebooks' cold runs on clothes",
    )
    parser.add_argument(
        "--cold-only",
        action="store_true",
        help="each notebook once, cold, on the digits (no warm, cached or clothes "
        "runs): the figure "
        "that benchmarks/cold.json keeps and each chapter's first lines state",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="STEM",
        help="only these notebooks, e.g. --only 03_regularized",
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        flush=True,
    )

    warm, warm_clothes = bench_data_load(), bench_data_load("fashion5k")
    x = load_data().train_x
    fit_s, bare_s, fit_ratio = bench_fit(x, lambda: Autoencoder([784, 256, 32]))
    conv_fit_s, conv_bare_s, conv_ratio = bench_fit(
        x, lambda: ConvAutoencoder((32, 64), 30), rounds=7
    )
    lines = [
        "| measurement | result | target |",
        "|---|---|---|",
        f"| warm `load_data()` | {warm * 1000:.1f} ms | < 100 ms |",
        f'| warm `load_data("fashion5k")` | {warm_clothes * 1000:.1f} ms | < 100 ms |',
        f"| one `fit` epoch, 784-256-32 on 4,000 images | {fit_s * 1000:.0f} ms | |",
        f"| one bare PyTorch epoch, same model and batches | {bare_s * 1000:.0f} ms | "
        "|",
        "| `fit` overhead over the bare loop (median of paired rounds) | "
        f"{100 * (fit_ratio - 1):+.1f}% | within 10% |",
        "| one `fit` epoch, convolutional (32, 64 channels, k = 30) on 4,000 images | "
        f"{conv_fit_s * 1000:.0f} ms | |",
        f"| one bare PyTorch epoch, same model and batches | {conv_bare_s * 1000:.0f} "
        "ms | |",
        "| `fit` overhead over the bare loop, convolutional (median of paired rounds) "
        f"| {100 * (conv_ratio - 1):+.1f}% "
        f"| within 10% |",
    ]
    if not args.skip_notebooks:
        before = fit_s  # bench_fit's median fit epoch of 784-256-32, timed just now
        print(
            f"speed reference before the notebooks: {before * 1000:.0f} ms per fit "
            "epoch of 784-256-32",
            flush=True,
        )
        print(
            "notebooks (each in a fresh kernel; cold = empty cache, warm = second "
            "run):",
            flush=True,
        )
        rows = bench_notebooks(
            clothes_too=not args.skip_clothes, only=args.only, cold_only=args.cold_only
        )
        after = speed_reference(x)
        lines += [
            "| speed reference: one `fit` epoch of 784-256-32 (median), before / "
            "after the notebooks | "
            f"{before * 1000:.0f} ms / {after * 1000:.0f} ms | |"
        ]
        lines += [
            "",
            "| notebook | cold run | slow comparisons cached | warm run | peak memory "
            "| cold on clothes |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| `{name}` | {cold:.1f} s | {secs(slow)} | {secs(warm_s)} | "
            f"{mem:.0f} MiB | {secs(clothes)} |"
            for name, cold, slow, warm_s, mem, clothes in rows
        ]
        # --cold-only runs no clothes' pass: nothing to add up
        clothes = [r[5] for r in rows]
        clothes_total = "-" if None in clothes else f"{sum(clothes):.0f} s"
        lines += [
            f"| all chapters | {sum(r[1] for r in rows):.0f} s | | "
            f"{'-' if args.cold_only else f'{sum(r[3] for r in rows):.0f} s'} | | "
            f"{clothes_total} |"
        ]
        record_cold({name: cold for name, cold, *_ in rows})
    report = "\n".join(lines)
    print("\n" + report)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
