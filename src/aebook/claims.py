"""The book's findings, checked where they are made: ``claim(statement, holds,
**measured)``.

A finding (as opposed to a fact true by construction, which stays a plain ``assert``) is
checked against the data it was measured on. On the book's default data (`data.DEFAULT`)
a claim that does not hold fails the run, exactly like an ``assert``, so CI keeps every
claim honest. On any other data it does not stop the notebook: it shows the reader,
right there, that the claim does not hold on their data, with the measured values.

Every claim is also recorded, with its measured values, in
``<cache>/claims/<dataset>/<chapter>.json``; the book's claims page is built from these
files.
"""

from __future__ import annotations

import html
import json
import math
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import __version__
from .data import DEFAULT
from .paths import atomic_write, cache_dir

OTHER = "fashion5k"  # the second dataset every chapter also runs on


class ClaimFailed(AssertionError):
    """A claim that does not hold on the default data (an AssertionError, as a bare
    assert raised)."""


def records_dir() -> Path:
    """``<cache>/claims``: one folder per dataset, one JSON file per chapter."""
    return cache_dir() / "claims"


# a summary bullet that defines or explains, and so restates no finding
DEFINITION = "definition"


class Claims:
    """The claims of one chapter run on one dataset.

    A chapter's setup cell gets ``claim = Claims("02_undercomplete", DATA)`` from
    `aebook.notebook.setup`; then, where the text makes a finding: ``claim("the
    nonlinear AE beats PCA at k = 8", r < 0.8, ratio=r)``, and at the end of each check
    cell ``claim.checked()``. ``strict`` (default: the dataset is the default one)
    decides whether a failed claim raises.
    """

    # so that a notebook writes claim.summary(claim.DEFINITION, [...])
    DEFINITION = DEFINITION

    def __init__(
        self,
        chapter: str,
        dataset: str,
        *,
        strict: bool | None = None,
        where: Mapping[str, str] | None = None,
    ) -> None:
        if not chapter or not isinstance(chapter, str):
            raise ValueError(
                "chapter must be a non-empty name such as '02_undercomplete', got "
                f"{chapter!r}"
            )
        self.chapter, self.dataset = chapter, dataset
        # where the run computes (`devices.describe`): recorded, and on the claims page
        self.where = dict(where or {})
        self.strict = dataset == DEFAULT if strict is None else strict
        # statement -> record, in the order first checked
        self.results: dict[str, dict[str, Any]] = {}
        # statements checked since the last checked(), which summarises them
        self._since: list[str] = []
        # the summary's bullets, as `summary` resolved them: statements, or DEFINITION
        self.bullets: list[str | list[str]] = []
        # a new run starts a new record: no claim left over from an older run
        self._save()

    def __call__(
        self, statement: str, holds: Any, *, timing: bool = False, **measured: Any
    ) -> None:
        """Check one finding.

        ``holds`` is anything with a truth value (a bool, a 0-d tensor or array);
        ``measured`` are the numbers it rests on, shown to the reader and recorded for
        the claims page. ``timing=True`` marks a claim about wall-clock time, whose
        values change from run to run (two runs are compared on everything else).
        Re-running a cell replaces the claim's earlier record. Returns None, so that a
        claim on a cell's last line prints nothing.
        """
        if not statement or not isinstance(statement, str):
            raise ValueError(f"a claim needs its statement in words, got {statement!r}")
        ok = bool(holds)
        values = {name: _plain(v) for name, v in measured.items()}
        self.results[statement] = {
            "statement": statement,
            "holds": ok,
            "measured": values,
            **({"timing": True} if timing else {}),
        }
        self._save()
        if statement not in self._since:
            self._since.append(statement)
        if ok:
            return
        if self.strict:
            raise ClaimFailed(
                f"{statement} (measured on {self.dataset}: {fmt_values(values)})"
            )
        _show_failure(statement, self.dataset, values)

    def checked(self) -> Any:
        """The claims checked since the last call, as one line that opens to their
        values.

        For the last line of a folded check cell: "✓ 3 findings checked" (or "2 of 3
        findings hold on fashion5k"), a ``<details>`` whose items are the statements and
        their measured values. Returns IPython's HTML, or the line as text without
        IPython.
        """
        records = [self.results[s] for s in self._since]
        self._since = []
        held = sum(r["holds"] for r in records)
        noun = "finding" if len(records) == 1 else "findings"
        line = (
            f"✓ {held} {noun} checked"
            if held == len(records)
            else f"{held} of {len(records)} {noun} hold on {self.dataset}"
        )
        items = "".join(
            f"<li {_mark(r)}>{'✓' if r['holds'] else '✗ does not hold:'} "
            f"{html.escape(r['statement'])} "
            f"<small>({html.escape(fmt_values(r['measured']))})</small></li>"
            for r in records
        )
        return _opening(line, items)

    def summary(self, *bullets: str | list[str]) -> Any:
        """Check a chapter's summary against the claims above it: one argument per
        bullet, in order.

        A bullet that restates findings names the claims it rests on, as a list of
        their statements, each given by a beginning that matches one claim of this
        run; a bullet that only defines or explains passes ``DEFINITION``. A name that
        matches no claim, or several, raises ValueError: the summary would state what
        no check backs. On the default data a named claim that does not hold has
        already failed the run; elsewhere the line says how many bullets hold.

        Returns, like `checked`, one line ("✓ the summary's 5 points: 4 rest on 12
        findings checked above, 1 defines") that opens to each bullet's claims.
        """
        if not bullets:
            raise ValueError("a summary check needs one argument per bullet")
        resting = []
        for i, bullet in enumerate(bullets, 1):
            if bullet == DEFINITION:
                resting.append(None)
                continue
            if isinstance(bullet, str) or not bullet:
                raise ValueError(
                    f"bullet {i}: pass a list of the claims it restates (beginnings "
                    f"of their statements), or DEFINITION; got {bullet!r}"
                )
            records = []
            for start in bullet:
                found = [r for s, r in self.results.items() if s.startswith(start)]
                if len(found) != 1:
                    raise ValueError(
                        f"bullet {i}: {start!r} matches {len(found)} of this "
                        "chapter's claims; it must name exactly one claim checked "
                        "above"
                    )
                records.append(found[0])
            resting.append(records)
        # recorded, so that the build can hold each bullet against the other data's run
        self.bullets = [
            DEFINITION if rs is None else [r["statement"] for r in rs] for rs in resting
        ]
        self._save()
        findings = [rs for rs in resting if rs is not None]
        held = sum(all(r["holds"] for r in rs) for rs in findings)
        n_claims = len({r["statement"] for rs in findings for r in rs})
        defines = len(bullets) - len(findings)
        line = (
            f"✓ the summary's {len(bullets)} points: {len(findings)} "
            f"{'rests' if len(findings) == 1 else 'rest'} on "
            f"{n_claims} findings checked above"
            if held == len(findings)
            else f"{held} of the summary's {len(findings)} findings hold on "
            f"{self.dataset}"
        ) + (
            f", {defines} {'defines' if defines == 1 else 'define'}" if defines else ""
        )
        items = "".join(
            f"<li>point {i}: defines, checks nothing</li>"
            if rs is None
            else f"<li>point {i}: "
            + "; ".join(
                f"<span {_mark(r)}>{'✓' if r['holds'] else '✗ does not hold:'} "
                f"{html.escape(r['statement'])}</span>"
                for r in rs
            )
            + "</li>"
            for i, rs in enumerate(resting, 1)
        )
        return _opening(line, items)

    def elsewhere(self, dataset: str | None = None) -> Any:
        """How this chapter's claims fared in the last recorded run on another dataset,
        as HTML.

        ``dataset`` defaults to the clothes (``"fashion5k"``), or to the default digits
        when this run is on clothes. The record is whatever that run left in the cache
        (``make fashion`` writes the clothes' before the book is built); it is read,
        never recomputed here.
        """
        from IPython.display import HTML

        other = dataset or (OTHER if self.dataset == DEFAULT else DEFAULT)
        claims = load_records().get(other, {}).get(self.chapter)
        if claims is None:
            return HTML(
                f"<p><i>This chapter has no recorded run on {html.escape(other)} yet: "
                "run it with "
                f'<code>DATA = "{html.escape(other)}"</code> to see which of its '
                "claims hold there.</i></p>"
            )
        failed = [c for c in claims if not c["holds"]]
        items = "".join(
            f"<li>{html.escape(c['statement'])} <small>(measured: "
            f"{html.escape(fmt_values(c['measured']))})</small></li>"
            for c in failed
        )
        verdict = (
            f"<b>On {html.escape(other)}, {len(claims) - len(failed)} of this "
            f"chapter's {len(claims)} "
            f"claims hold{'.' if not failed else '; these do not:'}</b>"
        )
        return HTML(
            f'<div class="aebook-elsewhere">{verdict}<ul>{items}</ul></div>'
            if failed
            else f'<div class="aebook-elsewhere">{verdict}</div>'
        )

    def _save(self) -> None:
        record = {
            "chapter": self.chapter,
            "dataset": self.dataset,
            "aebook": __version__,
            **({"where": self.where} if self.where else {}),
            "claims": list(self.results.values()),
            **({"summary": self.bullets} if self.bullets else {}),
        }
        try:  # records_dir() raises too when the cache path is a file
            path = records_dir() / self.dataset / f"{self.chapter}.json"
            atomic_write(path, lambda f: f.write(json.dumps(record, indent=1).encode()))
        except OSError as err:  # an unwritable cache must not stop the chapter
            warnings.warn(
                f"could not record the claims of {self.chapter} ({err})",
                RuntimeWarning,
                stacklevel=3,
            )


def _runs(directory: Path | None) -> list[dict[str, Any]]:
    """Every readable record in ``directory`` (default: `records_dir`)."""
    if directory is None:
        try:
            directory = records_dir()
        except OSError:  # no usable cache: nothing was recorded
            return []
    out = []
    for path in sorted(directory.glob("*/*.json")):
        try:
            record = json.loads(path.read_text())
            (
                record["dataset"],
                record["chapter"],
                list(record["claims"]),
            )  # every run has
        except (OSError, ValueError, KeyError, TypeError):
            continue
        out.append(record)
    return out


def load_records(
    directory: Path | None = None,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every recorded run: ``{dataset: {chapter: [claim records]}}``; unreadable files
    are skipped."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for record in _runs(directory):
        out.setdefault(record["dataset"], {})[record["chapter"]] = list(
            record["claims"]
        )
    return out


def load_summaries(directory: Path | None = None) -> dict[str, dict[str, list[Any]]]:
    """The summaries that `Claims.summary` recorded: ``{dataset: {chapter: bullets}}``,
    each bullet its claims' statements or `DEFINITION`."""
    out: dict[str, dict[str, list[Any]]] = {}
    for record in _runs(directory):
        if "summary" in record:
            out.setdefault(record["dataset"], {})[record["chapter"]] = record["summary"]
    return out


def load_where(directory: Path | None = None) -> dict[str, list[str]]:
    """Where the runs of `load_records` computed, per dataset: each distinct device
    and torch version, as ``"cpu, torch 2.14.1"`` or ``"cuda (NVIDIA L4), torch
    2.11.0"``."""
    out: dict[str, set[str]] = {}
    for record in _runs(directory):
        w = record.get("where") or {}
        device = w.get("device", "device not recorded")
        gpu = f" ({w['gpu']})" if "gpu" in w else ""
        torch_version = f", torch {w['torch']}" if "torch" in w else ""
        out.setdefault(record["dataset"], set()).add(f"{device}{gpu}{torch_version}")
    return {d: sorted(v) for d, v in out.items()}


def _plain(value: Any) -> Any:
    """A JSON-able number or string, or a list of them, from a Python, NumPy or
    PyTorch value: a 1-D array or tensor, a list, a tuple or a generator of numbers
    becomes a list."""
    if hasattr(value, "ndim") and getattr(value, "ndim") == 1:
        value = value.tolist()
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        items = [_plain(v) for v in value]
        if all(not isinstance(v, list) for v in items):
            return items
    raise TypeError(
        "measured values must be numbers or strings, or a flat sequence of them, got "
        f"{type(value).__name__}: {value!r}"
    )


def fmt_value(value: Any) -> str:
    """A measured value as the reader sees it: four significant digits for floats, a
    list as its items in brackets."""
    if isinstance(value, list):
        return "[" + ", ".join(fmt_value(v) for v in value) + "]"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _opening(line: str, items: str) -> Any:
    """One line that opens to a list (``items``: ``<li>`` elements), as IPython's HTML
    ``<details>``; the line as plain text without IPython."""
    try:
        from IPython.display import HTML
    except ImportError:
        return line
    return HTML(
        f'<details class="aebook-checked"><summary>{html.escape(line)}</summary>'
        f"<ul>{items}</ul></details>"
    )


def _mark(record: dict[str, Any]) -> str:
    """The attribute by which the build finds a claim in a check cell's output, to add
    how it fared on the other dataset (_ext/claims_scope.py)."""
    return f'data-claim="{html.escape(record["statement"], quote=True)}"'


def fmt_values(values: dict[str, Any]) -> str:
    """Measured values as the reader sees them: ``name = value``, comma-separated."""
    return (
        ", ".join(f"{k} = {fmt_value(v)}" for k, v in values.items())
        or "no values recorded"
    )


def _show_failure(statement: str, dataset: str, values: dict[str, Any]) -> None:
    """Tell the reader, in the notebook, that a claim of the text does not hold on their
    data."""
    text = (
        f"This claim of the text does not hold on {dataset}: {statement} "
        f"(measured: {fmt_values(values)}). The text was written for {DEFAULT}; "
        f"the book's claims page lists every claim on both datasets."
    )
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        warnings.warn(text, RuntimeWarning, stacklevel=3)
        return
    display(
        HTML(
            '<div class="aebook-claim-failed" style="border-left:4px solid '
            "#d97706;background:#fff7ed;"
            'padding:0.5em 0.8em;margin:0.5em 0">'
            f"<b>Does not hold on {html.escape(dataset)}:</b> "
            f"{html.escape(statement)}<br>"
            f"<small>measured: {html.escape(fmt_values(values))}. The text was "
            f"written for {DEFAULT}; "
            "the claims page of the book lists every claim on both "
            "datasets.</small></div>"
        )
    )
