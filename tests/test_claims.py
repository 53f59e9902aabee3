import html
import json

import numpy as np
import pytest
import torch

from aebook.claims import ClaimFailed, Claims, load_records, records_dir


def test_a_claim_that_holds_returns_true_and_is_recorded():
    claim = Claims("02_undercomplete", "mnist5k")
    # prints nothing
    assert (
        claim("the AE beats PCA", np.float64(0.57) < 0.8, ratio=np.float64(0.57), k=8)
        is None
    )
    record = json.loads(
        (records_dir() / "mnist5k" / "02_undercomplete.json").read_text()
    )
    assert record["chapter"] == "02_undercomplete" and record["dataset"] == "mnist5k"
    assert record["claims"] == [
        {
            "statement": "the AE beats PCA",
            "holds": True,
            "measured": {"ratio": 0.57, "k": 8},
        }
    ]


def test_on_the_default_data_a_failed_claim_fails_the_run_like_an_assert():
    claim = Claims("01_overview", "mnist5k")
    with pytest.raises(
        AssertionError, match=r"blurrier.*grey_recon = 3\.1.*grey_orig = 2"
    ) as err:
        claim("reconstructions are blurrier", False, grey_recon=3.1, grey_orig=2)
    assert isinstance(err.value, ClaimFailed)
    # recorded before raising, so the claims page shows the failure
    assert load_records()["mnist5k"]["01_overview"][0]["holds"] is False


def test_on_other_data_a_failed_claim_reports_and_goes_on(capsys):
    claim = Claims("01_overview", "fashion5k")
    with pytest.warns(
        RuntimeWarning, match="does not hold on fashion5k: width helps.*ratio = 1.234"
    ):
        claim("width helps", torch.tensor(False), ratio=torch.tensor(1.23400))
    assert load_records()["fashion5k"]["01_overview"] == [
        {
            "statement": "width helps",
            "holds": False,
            "measured": {"ratio": pytest.approx(1.234)},
        }
    ]


def test_in_a_notebook_the_report_is_shown_in_the_cell(monkeypatch):
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", shown.append)
    Claims("03_regularized", "fashion5k")(
        "the DAE gives better features", False, gain=-0.3
    )
    (out,) = shown
    assert (
        "Does not hold on fashion5k" in out.data
        and "gain = -0.3" in out.data
        and "claims page" in out.data
    )


def test_strictness_can_be_chosen():
    with pytest.raises(ClaimFailed):
        Claims("x", "fashion5k", strict=True)("s", False)
    with pytest.warns(RuntimeWarning):
        Claims("x", "mnist5k", strict=False)("s", False)


def test_rerunning_a_cell_replaces_the_claim_and_a_new_run_starts_afresh():
    claim = Claims("04_sparse", "fashion5k")
    claim("a", True, v=1.0)
    with pytest.warns(RuntimeWarning):
        claim("b", False)
    claim("a", True, v=2.0)  # the same cell run again
    assert [
        (c["statement"], c["measured"])
        for c in load_records()["fashion5k"]["04_sparse"]
    ] == [("a", {"v": 2.0}), ("b", {})]
    Claims("04_sparse", "fashion5k")  # a new run of the chapter
    assert load_records()["fashion5k"]["04_sparse"] == []


def test_a_check_cell_ends_with_one_line_that_opens_to_its_claims():
    claim = Claims("04_sparse", "fashion5k")
    claim("a", True, v=1.0)
    with pytest.warns(RuntimeWarning):
        claim("b <b>", False, v=2.0)
    summary = claim.checked().data
    assert "<summary>1 of 2 findings hold on fashion5k</summary>" in summary
    assert "✓ a <small>(v = 1)</small>" in summary
    assert "✗ does not hold: b &lt;b&gt; <small>(v = 2)</small>" in summary
    # the next check cell summarises only its own claims
    claim("c", True)
    claim("c", True)  # the same claim again counts once
    assert "<summary>✓ 1 finding checked</summary>" in claim.checked().data
    assert "<summary>✓ 0 findings checked</summary>" in claim.checked().data


def test_a_summary_names_the_claims_each_point_rests_on():
    claims = Claims("x", "mnist5k")
    claims("the model beats PCA at k = 8", True, ratio=0.6)
    claims("the model beats PCA at k = 16", True, ratio=0.7)
    claims("the code is sparse", True)
    out = claims.summary(
        claims.DEFINITION, ["the model beats PCA at k = 8", "the code"]
    ).data
    assert (
        "✓ the summary's 2 points: 1 rests on 2 findings checked above, 1 defines"
        in html.unescape(out)
    )
    assert "point 1: defines" in out
    assert 'point 2: <span data-claim="the model beats PCA at k = 8">✓ the model' in out
    # a beginning that matches two claims, or none, is a summary no check backs
    with pytest.raises(ValueError, match="matches 2"):
        claims.summary(["the model beats PCA"])
    with pytest.raises(ValueError, match="matches 0"):
        claims.summary(["the model is fast"])
    for bad in ("the code is sparse", [], None):
        with pytest.raises(ValueError, match="bullet 1"):
            claims.summary(bad)
    with pytest.raises(ValueError, match="one argument per bullet"):
        claims.summary()


def test_on_other_data_a_summary_says_which_points_hold(capsys):
    claims = Claims("x", "fashion5k")
    claims("holds here", True)
    claims("fails here", False)
    out = html.unescape(claims.summary(["holds here"], ["holds", "fails here"]).data)
    assert "1 of the summary's 2 findings hold on fashion5k" in out
    assert "✗ does not hold: fails here" in out


def test_records_of_several_datasets_and_chapters(tmp_path):
    Claims("01_overview", "mnist5k")("a", True)
    Claims("02_undercomplete", "mnist5k")("b", True)
    Claims("01_overview", "fashion5k")("a", True)
    # skipped, not fatal
    (records_dir() / "fashion5k" / "broken.json").write_text("{not json")
    records = load_records()
    assert set(records) == {"mnist5k", "fashion5k"}
    assert set(records["mnist5k"]) == {"01_overview", "02_undercomplete"} and set(
        records["fashion5k"]
    ) == {"01_overview"}
    assert load_records(tmp_path / "nothing-here") == {}


@pytest.mark.parametrize(
    "bad", [[[1, 2]], torch.ones(2, 3), None, {"a": 1}, [1, None], object()]
)
def test_measured_values_must_be_numbers(bad):
    with pytest.raises(TypeError, match="numbers or strings"):
        Claims("x", "mnist5k")("s", True, value=bad)


@pytest.mark.parametrize(
    "seq",
    [
        [0.5, 2],
        (0.5, 2),
        torch.tensor([0.5, 2.0]),
        np.array([0.5, 2.0]),
        (v for v in (0.5, 2)),
        {"a": 0.5, "b": 2}.values(),
    ],
)
def test_a_sequence_of_numbers_is_recorded_as_a_list(seq):
    claims = Claims("x", "mnist5k")
    claims("s", True, values=seq)
    assert load_records()["mnist5k"]["x"][0]["measured"] == {"values": [0.5, 2]}
    assert "values = [0.5, 2]" in claims.checked().data


def test_non_finite_measurements_are_recorded_as_text():
    Claims("x", "mnist5k")("s", True, value=float("nan"))
    assert load_records()["mnist5k"]["x"][0]["measured"] == {"value": "nan"}


@pytest.mark.parametrize(
    "chapter, statement", [("", "s"), ("x", ""), (None, "s"), ("x", 3)]
)
def test_bad_names(chapter, statement):
    with pytest.raises(ValueError):
        Claims(chapter, "mnist5k")(statement, True)


def test_an_unwritable_cache_warns_and_the_chapter_goes_on(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr("aebook.claims.records_dir", lambda: blocker / "claims")
    with pytest.warns(RuntimeWarning, match="could not record"):
        claim = Claims("x", "mnist5k")
    with pytest.warns(RuntimeWarning, match="could not record"):
        claim("s", True)


def test_elsewhere_lists_the_claims_that_failed_on_the_other_data():
    on_clothes = Claims("05_denoising", "fashion5k")
    on_clothes("a", True, v=1.0)
    with pytest.warns(RuntimeWarning):
        on_clothes("b & c", False, v=2.5)
    on_digits = Claims("05_denoising", "mnist5k")
    shown = on_digits.elsewhere().data
    assert "On fashion5k, 1 of this chapter's 2 claims hold; these do not:" in shown
    assert "b &amp; c" in shown and "v = 2.5" in shown and ">a <" not in shown
    # and the other way round: on clothes, "elsewhere" is the default digits
    on_digits("a", True)
    assert (
        "On mnist5k, 1 of this chapter's 1 claims hold." in on_clothes.elsewhere().data
    )


def test_elsewhere_without_a_recorded_run_says_how_to_make_one():
    shown = Claims("06_deep", "mnist5k").elsewhere().data
    assert "no recorded run on fashion5k" in shown and 'DATA = "fashion5k"' in shown


def test_a_cache_path_that_is_a_file_does_not_stop_the_chapter(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("AEBOOK_CACHE", str(blocker))
    with pytest.warns(RuntimeWarning, match="could not record.*is a file"):
        claim = Claims("x", "mnist5k")
    with pytest.warns(RuntimeWarning, match="could not record"):
        claim("s", True)
    assert load_records() == {}
    assert "no recorded run on fashion5k" in claim.elsewhere().data
