"""The one-shot GPU check (``make gpu-check``), for a machine with a CUDA GPU.

    python benchmarks/gpu_check.py [--chapters 01 02 ...] [--report PATH]

1. Prints torch, CUDA, the GPU, and the cuDNN and TF32 flags the book sets.
2. Runs the device tests on CUDA (`tests/test_devices.py`, and the device-parametrised
   tests of the package's modules, their ``[cuda]`` cases).
3. Runs every chapter (or those named) cold on the digits with AEBOOK_DEVICE=cuda, in a
   fresh cache, each in its own kernel, timing each.
4. Writes one report (default ``benchmarks/gpu-check.md``), rewritten after each step
   so that a run cut short keeps what it did: the versions, the tests' result, each
   chapter's wall time, and its claims against the CPU's records (``--cpu-records``,
   default this checkout's ``.cache/claims``, from ``make test`` or ``make book``;
   carry them to the GPU machine), holds and values side by side where they differ.

No GPU has run it yet, so its time is unknown; ``--chapters`` splits it into calls, and
a chapter that runs past ``--timeout`` or stops with an error is reported with its
error while the rest still run. It exits 1 when a test or a chapter fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

DEVICE_TESTS = [
    "tests/test_devices.py",
    "tests/test_training.py",
    "tests/test_metrics.py",
    "tests/test_diffusion.py",
    "tests/test_sparse_dictionaries.py",
    "tests/test_cache.py",
    "tests/test_recipes.py",
    "tests/test_vae.py",
    "tests/test_tracking_and_judging.py",
]


def versions(device: str) -> list[str]:
    import torch

    from aebook import devices

    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "gpu-check needs a CUDA GPU: torch.cuda.is_available() is False"
        )
    if device != "cuda":  # a dry run on the stand-in (tests/standin.py)
        return [f"- torch {torch.__version__}, device {device} (a dry run, no GPU)"]
    devices.resolve_device("cuda")  # sets the flags the chapters run under
    return [
        f"- torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
        f"{torch.backends.cudnn.version()}",
        f"- GPU: {torch.cuda.get_device_name(0)}",
        f"- cuDNN deterministic {torch.backends.cudnn.deterministic}, benchmark "
        f"{torch.backends.cudnn.benchmark}; TF32 matmul "
        f"{torch.backends.cuda.matmul.allow_tf32}, cuDNN TF32 "
        f"{torch.backends.cudnn.allow_tf32}; deterministic algorithms "
        f"{torch.are_deterministic_algorithms_enabled()}; CUBLAS_WORKSPACE_CONFIG "
        f"{os.environ.get('CUBLAS_WORKSPACE_CONFIG')}",
    ]


def device_tests(device: str) -> tuple[str, int]:
    """The device rules' own tests, then the package's tests on ``device``."""
    tail, rc = [], 0
    for args in (DEVICE_TESTS[:1], ["-k", device, *DEVICE_TESTS[1:]]):
        out = subprocess.run(
            [sys.executable, "-m", "pytest", *args],  # pyproject's -q: a summary line
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        tail += (out.stdout + out.stderr).strip().splitlines()[-8:]
        rc = rc or out.returncode
    return "\n".join(tail), rc


def run_chapter(
    name: str, cache: Path, device: str, timeout: float
) -> tuple[float, str]:
    """(seconds, "" or the error) of chapter ``name`` run cold on ``device``."""
    env = {
        **os.environ,
        "AEBOOK_DEVICE": device,
        "AEBOOK_CACHE": str(cache),
        "AEBOOK_DATA": "mnist5k",
        # the kernels import this checkout's package
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    path = ROOT / "chapters" / f"{name}.ipynb"
    start = time.perf_counter()
    try:
        out = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "run_notebook.py"), str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, f"stopped after {timeout:.0f} s"
    seconds = time.perf_counter() - start
    if out.returncode == 0:
        return seconds, ""
    lines = [ln for ln in out.stderr.strip().splitlines() if "Error" in ln]
    return seconds, (lines or out.stderr.strip().splitlines() or ["failed"])[-1][:300]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chapters", nargs="*", help="chapter numbers (default: all)")
    ap.add_argument("--report", default=str(ROOT / "benchmarks" / "gpu-check.md"))
    ap.add_argument("--cpu-records", default=str(ROOT / ".cache" / "claims"))
    ap.add_argument("--timeout", type=float, default=600, help="seconds per chapter")
    ap.add_argument(
        "--device",
        default="cuda",
        help="standin: a dry run of this script on a machine without a GPU (needs "
        "IPYTHONDIR set as make standin sets it)",
    )
    args = ap.parse_args()
    from compare_claims import compare

    from aebook.claims import load_records

    report = Path(args.report)
    lines = ["# GPU check", "", *versions(args.device), ""]
    report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    tests, rc = device_tests(args.device)
    lines += [f"## Device tests on {args.device}", "", "```", tests, "```", ""]
    report.write_text("\n".join(lines) + "\n")
    print(tests, flush=True)
    names = sorted(p.stem for p in (ROOT / "chapters").glob("*.ipynb"))
    if args.chapters:
        names = [n for n in names if n[:2] in args.chapters]
    cpu = load_records(Path(args.cpu_records)).get("mnist5k", {})
    table = ["## Chapters, cold, on the digits", "", "| chapter | s | claims |"]
    table += ["|---|---|---|"]
    details: list[str] = []
    failed = False
    with tempfile.TemporaryDirectory() as cache:
        for name in names:
            seconds, error = run_chapter(name, Path(cache), args.device, args.timeout)
            runs = load_records(Path(cache) / "claims").get("mnist5k", {})
            claims = runs.get(name, [])
            held = sum(c["holds"] for c in claims)
            verdict = error or f"{held} of {len(claims)} hold"
            table.append(f"| {name} | {seconds:.1f} | {verdict} |")
            if name in cpu and claims:
                diffs, lines_ = compare({name: cpu[name]}, {name: claims}, exact=False)
                details += lines_ + diffs
            elif name not in cpu:
                details.append(f"{name}: no CPU records to compare with")
            failed = failed or bool(error)
            print(table[-1], flush=True)
            report.write_text(
                "\n".join(
                    lines
                    + table
                    + ["", "## Claims against the CPU's records", "", "```"]
                    + details
                    + ["```"]
                )
                + "\n"
            )
    print(f"report: {report}")
    return int(bool(rc) or failed)


if __name__ == "__main__":
    sys.exit(main())
