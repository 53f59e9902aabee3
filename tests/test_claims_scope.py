"""_ext/claims_scope.py: check cells say how each claim fared on the clothes, and a
summary bullet that rests on a claim failing there must say so (the Sphinx side runs in
the book build)."""

import re
import sys
import warnings
from pathlib import Path

from aebook.claims import Claims, load_records, load_summaries

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_ext"))
from claims_scope import SCOPED, mark, unscoped


def _runs():
    digits = Claims("04_sparse", "mnist5k")
    digits("KL holds the mean activation near rho", True, mean=0.05)
    digits("units are local <strokes>", True, r=0.3)
    checked = digits.checked().data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clothes = Claims("04_sparse", "fashion5k", strict=False)
        clothes("KL holds the mean activation near rho", True, mean=0.051)
        clothes("units are local <strokes>", False, r=0.6)
    other = {r["statement"]: r for r in load_records()["fashion5k"]["04_sparse"]}
    return digits, checked, other


def test_each_claim_of_a_check_cell_gets_its_result_on_the_clothes():
    _, checked, other = _runs()
    out = mark(checked, other)
    items = re.findall(r"<li .*?</li>", out)
    assert len(items) == 2
    assert "clothes: ✓ holds (mean = 0.051)" in items[0]
    # the statement is found through its escaped attribute
    assert "units are local &lt;strokes&gt;" in items[1]
    assert "clothes: ✗ does not hold (r = 0.6)" in items[1]
    line = re.search(r"<summary>(.*?)</summary>", out).group(1)
    assert line == "✓ 2 findings checked · 1 of 2 hold on the clothes"


def test_a_chapter_not_run_on_the_clothes_says_so():
    _, checked, other = _runs()
    assert "clothes: not run" in mark(checked, None)
    assert "not run on the clothes" in mark(checked, None)
    everything = {s: {**r, "holds": True} for s, r in other.items()}
    assert "all 2 hold on the clothes too" in mark(checked, everything)
    alone = Claims("05_denoising", "mnist5k")
    alone("one finding", True)
    held = {"one finding": {"statement": "one finding", "holds": True, "measured": {}}}
    line = "✓ 1 finding checked · it holds on the clothes too"
    assert line in mark(alone.checked().data, held)


def test_the_summary_check_records_its_bullets_and_marks_their_claims():
    digits, _, other = _runs()
    out = digits.summary(Claims.DEFINITION, ["KL holds", "units are local"]).data
    assert digits.bullets == [
        "definition",
        ["KL holds the mean activation near rho", "units are local <strokes>"],
    ]
    # the record keeps the resolved statements, for the build
    assert load_summaries()["mnist5k"]["04_sparse"] == digits.bullets
    assert "04_sparse" not in load_summaries().get("fashion5k", {})
    marked = mark(out, other)
    assert marked.count("clothes: ✓ holds") == 1
    assert marked.count("clothes: ✗ does not hold") == 1
    assert "1 of 2 hold on the clothes" in marked


def test_a_bullet_on_a_claim_failing_on_the_clothes_must_say_so():
    digits, _, other = _runs()
    digits.summary(Claims.DEFINITION, ["KL holds"], ["units are local"])
    texts = [
        "Sparsity is a penalty.",
        "KL holds the mean activation.",  # holds on both: nothing to say
        "The units are local strokes.",  # fails on the clothes, says nothing
    ]
    problems = unscoped(texts, digits.bullets, other)
    assert len(problems) == 1 and problems[0].startswith("summary bullet 3 rests on")
    assert "units are local <strokes>" in problems[0]
    for scoped in (
        "On the digits, the units are local strokes.",
        "The units are local strokes (not on the clothes).",
    ):
        assert unscoped(texts[:2] + [scoped], digits.bullets, other) == []
    # a claim with no record on the clothes is not known to hold there
    assert len(unscoped(texts, digits.bullets, {})) == 2
    # the bullets of the page and of the check must agree in number
    assert "has 2 bullets" in unscoped(texts[:2], digits.bullets, other)[0]


def test_the_scope_words():
    for said in ("on the digits", "On digits", "the clothes do not"):
        assert SCOPED.search(said)
    for unsaid in ("digits in general", "in all cases", "clothing"):
        assert not SCOPED.search(unsaid)


def _build(tmp_path, summary_text):
    """A two-page Sphinx project whose chapter has a check cell's output and a
    summary; returns (return code, warnings, the chapter's HTML)."""
    from sphinx.cmd.build import build_main

    src = tmp_path / "src"
    (src / "chapters").mkdir(parents=True)
    ext = Path(__file__).resolve().parents[1] / "_ext"
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ext)!r})\nextensions = ['claims_scope']\n"
    )
    (src / "index.rst").write_text(
        "Book\n====\n\n.. toctree::\n\n   chapters/04_sparse\n"
    )
    digits, checked, _ = _runs()
    digits.summary(Claims.DEFINITION, ["units are local"])
    output = "\n".join("   " + line for line in checked.splitlines())
    (src / "chapters" / "04_sparse.rst").write_text(
        "Sparse\n======\n\n.. raw:: html\n\n"
        f"{output}\n\nSummary\n-------\n\n- Sparsity is a penalty.\n- {summary_text}\n"
    )
    warnings_file = tmp_path / "warnings.txt"
    code = build_main(
        [str(src), str(tmp_path / "out"), "-q", "-W", "-w", str(warnings_file)]
    )
    page = tmp_path / "out" / "chapters" / "04_sparse.html"
    return code, warnings_file.read_text(), page.read_text() if page.exists() else ""


def test_the_build_marks_check_cells_and_fails_on_an_unscoped_bullet(tmp_path):
    code, said, page = _build(tmp_path / "a", "The units are local strokes.")
    assert code != 0
    assert "summary bullet 2 rests on claims that do not hold on the clothes" in said
    code, said, page = _build(tmp_path / "b", "On the digits the units are local.")
    assert code == 0, said
    assert "clothes: ✗ does not hold (r = 0.6)" in page
    assert "1 of 2 hold on the clothes" in page
