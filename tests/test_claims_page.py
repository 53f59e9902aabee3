"""The claims page's table, rendered from recorded runs (the Sphinx side is exercised by
`make book`)."""

import re
import sys
from pathlib import Path

from aebook.claims import Claims, load_records

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_ext"))
from claims_page import render


def _record_runs():
    digits = Claims("02_undercomplete", "mnist5k")
    digits("k = 8: AE < 0.8 PCA", True, ratio=0.57)
    digits("only on digits", True)
    clothes = Claims("02_undercomplete", "fashion5k", strict=False)
    clothes("k = 8: AE < 0.8 PCA", True, ratio=0.7123456)
    Claims("01_overview", "mnist5k")("a <b> & c", True, x=1)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Claims("01_overview", "fashion5k")("a <b> & c", False, x=2)


def test_one_row_per_claim_one_column_per_dataset():
    _record_runs()
    page = render(
        load_records(),
        {"01_overview": "chapters/01_overview.html"},
        {"01_overview": "1. Overview"},
    )
    header = re.search(r"<thead>(.*?)</thead>", page).group(1)
    assert header.index("digits (mnist5k)") < header.index("clothes (fashion5k)")
    rows = re.findall(
        r"<tr>(.*?)</tr>", re.search(r"<tbody>(.*)</tbody>", page).group(1)
    )
    assert len(rows) == 3
    # chapters in order, linked by their title where the build knows the page
    assert (
        '<a href="chapters/01_overview.html">1. Overview</a>' in rows[0]
        and "02_undercomplete" in rows[1]
    )
    assert (
        "a &lt;b&gt; &amp; c" in rows[0]
        and "holds" in rows[0]
        and "does not hold" in rows[0]
    )
    assert "x = 2" in rows[0]
    # four significant digits
    assert "ratio = 0.57" in rows[1] and "ratio = 0.7123" in rows[1]
    assert "only on digits" in rows[2] and "not run" in rows[2]
    assert (
        "digits (mnist5k): 3 of 3 claims hold; clothes (fashion5k): 1 of 2 claims hold"
        in page
    )


def test_no_records_says_what_to_do():
    assert "No claims were recorded" in render({}, {}, {})


def test_the_page_says_where_each_datasets_runs_computed():
    Claims("01_overview", "mnist5k", where={"device": "cpu", "torch": "2.14.1"})(
        "x", True
    )
    gpu = {"device": "cuda", "gpu": "NVIDIA L4", "torch": "2.11.0"}
    Claims("02_undercomplete", "mnist5k", where=gpu)("y", True)
    from aebook.claims import load_where

    assert load_where() == {
        "mnist5k": ["cpu, torch 2.14.1", "cuda (NVIDIA L4), torch 2.11.0"]
    }
    page = render(load_records(), {}, {}, load_where())
    assert (
        "Where the runs computed: digits on cpu, torch 2.14.1 and cuda (NVIDIA L4), "
        "torch 2.11.0." in page
    )
