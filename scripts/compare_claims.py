"""Compare two recorded runs of the chapters claim by claim: the CPU pass and a pass on
another device (``make standin``, ``make gpu-check``).

    python scripts/compare_claims.py FIRST SECOND [--dataset D] [--exact] [--skip ...]

FIRST and SECOND are claim-record folders (``<cache>/claims``, holding one folder per
dataset). Every claim of either run must be in the other and hold or fail as there.
With ``--exact`` (the stand-in, which computes on the CPU bit for bit) every measured
value must be equal too, to float32's rounding (a relative 1e-5: the CPU's own sums
change in the seventh digit between one thread and two), except in claims about wall
time (``claim(..., timing=True)``). Without it (a GPU, whose sums round differently)
the values that differ are listed side by side. Exits 1 on any difference, or when a
chapter of the first run is missing from the second.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from aebook.claims import fmt_value, load_records

RELATIVE = 1e-5


def same(a: object, b: object) -> bool:
    """Equal, or numbers (or lists of them) within a relative `RELATIVE`."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=RELATIVE, abs_tol=1e-12)
    return a == b


def compare(
    base: dict[str, list[dict]], other: dict[str, list[dict]], exact: bool
) -> tuple[list[str], list[str]]:
    """(differences, report lines) between two runs' {chapter: [claims]}."""
    diffs, lines = [], []
    for chapter, claims in sorted(base.items()):
        if chapter not in other:
            diffs.append(f"{chapter}: not in the second run")
            continue
        theirs = {c["statement"]: c for c in other[chapter]}
        ours = {c["statement"] for c in claims}
        diffs += [
            f"{chapter}: only in the second run: {s}" for s in theirs if s not in ours
        ]
        agree, details = 0, []
        for c in claims:
            o = theirs.get(c["statement"])
            if o is None:
                diffs.append(f"{chapter}: missing claim: {c['statement']}")
                continue
            if o["holds"] != c["holds"]:
                diffs.append(
                    f"{chapter}: holds {c['holds']} -> {o['holds']}: {c['statement']}"
                )
            changed = [
                k
                for k in c["measured"]
                if not same(o["measured"].get(k), c["measured"][k])
                and not (exact and c.get("timing"))
            ]
            if exact and changed:
                diffs.append(
                    f"{chapter}: values differ ({', '.join(changed)}): {c['statement']}"
                )
            for k in changed:
                details.append(
                    f"  {chapter} | {c['statement'][:70]} | {k}: "
                    f"{fmt_value(c['measured'][k])} -> "
                    f"{fmt_value(o['measured'].get(k))}"
                )
            agree += o["holds"] == c["holds"]
        lines += [f"{chapter}: {agree} of {len(claims)} claims as in the first run"]
        lines += details
    return diffs, lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first", help="the reference run's records, e.g. .cache/claims")
    ap.add_argument("second", help="the other run's records")
    ap.add_argument("--dataset", default="mnist5k", help="the dataset compared")
    ap.add_argument("--exact", action="store_true", help="values must be equal too")
    ap.add_argument("--skip", nargs="*", default=[], help="chapters not compared")
    ap.add_argument("--report", help="also write the comparison to this file")
    args = ap.parse_args()
    base = {
        ch: v
        for ch, v in load_records(Path(args.first)).get(args.dataset, {}).items()
        if ch not in args.skip
    }
    other = load_records(Path(args.second)).get(args.dataset, {})
    if not base:
        print(f"no records in {args.first}: run the chapters first", file=sys.stderr)
        return 1
    diffs, lines = compare(base, other, args.exact)
    text = "\n".join(
        [f"{args.second} against {args.first} ({args.dataset}):", *lines, *diffs]
        + [f"{len(diffs)} differences"]
    )
    print(text)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text + "\n")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
