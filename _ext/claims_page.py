"""The claims page: every claim of every chapter, with whether it held on each dataset.

The directive ``{claims-table}`` leaves a placeholder that is filled in at the end of
the build (``doctree-resolved``), after every chapter has executed, from the records
that `aebook.claims` writes on each run (``<cache>/claims/<dataset>/<chapter>.json``).
So the table always shows the runs themselves: the default data from this build's
execution of the chapters, the other datasets from their runs beside or before the build
(``make book`` runs every chapter on fashion5k while the build runs them on the digits,
then builds again, which rereads only this page). Nothing in it is typed by hand.
"""

from __future__ import annotations

import html
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from aebook.claims import fmt_value, load_records, load_where
from aebook.data import DEFAULT

# The datasets shown first, in this order, with a word for the reader; others follow by
# name.
KNOWN = {DEFAULT: "digits", "fashion5k": "clothes"}


STYLE = (
    ".claims-table td{vertical-align:top} .claims-table .claim-yes{background:#f0fdf4}"
    " .claims-table .claim-no{background:#fff7ed} .claims-table .claim-none{color:#777}"
)


class claims_placeholder(nodes.General, nodes.Element):
    """Where the table goes; replaced before any writer sees it."""


class ClaimsTable(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        return [claims_placeholder()]


def _measured(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{html.escape(k)} = {html.escape(fmt_value(v))}" for k, v in values.items()
    )


def _cell(record: dict[str, Any] | None) -> str:
    if record is None:
        return '<td class="claim-none">not run</td>'
    mark, cls = (
        ("&#10004; holds", "claim-yes")
        if record["holds"]
        else ("&#10008; does not hold", "claim-no")
    )
    return (
        f'<td class="{cls}"><b>{mark}</b><br>'
        f"<small>{_measured(record['measured'])}</small></td>"
    )


def render(
    records: dict[str, dict[str, list[dict[str, Any]]]],
    link: dict[str, str],
    title: dict[str, str],
    where: dict[str, list[str]] | None = None,
) -> str:
    """The table as HTML: one row per (chapter, claim), one column per dataset that has
    records; ``where`` (`load_where`) says on what each dataset's runs computed."""
    datasets = [d for d in KNOWN if d in records] + sorted(
        d for d in records if d not in KNOWN
    )
    if not datasets:
        return (
            "<p><b>No claims were recorded:</b> run the chapters (make book runs them) "
            "and build again.</p>"
        )
    chapters = sorted({c for d in datasets for c in records[d]})
    by_statement = {
        d: {c: {r["statement"]: r for r in records[d].get(c, [])} for c in chapters}
        for d in datasets
    }
    rows, summary = [], {d: [0, 0] for d in datasets}
    for chapter in chapters:
        statements = list(
            dict.fromkeys(
                r["statement"] for d in datasets for r in records[d].get(chapter, [])
            )
        )
        name = title.get(chapter, chapter)
        head = (
            f'<a href="{link[chapter]}">{html.escape(name)}</a>'
            if chapter in link
            else html.escape(name)
        )
        for i, statement in enumerate(statements):
            first = f'<td rowspan="{len(statements)}">{head}</td>' if i == 0 else ""
            cells = []
            for d in datasets:
                record = by_statement[d][chapter].get(statement)
                cells.append(_cell(record))
                if record is not None:
                    summary[d][0] += record["holds"]
                    summary[d][1] += 1
            rows.append(
                f"<tr>{first}<td>{html.escape(statement)}</td>{''.join(cells)}</tr>"
            )
    header = "".join(
        f"<th>{html.escape(KNOWN.get(d, d))} ({html.escape(d)})</th>" for d in datasets
    )
    totals = "; ".join(
        f"{KNOWN.get(d, d)} ({d}): {held} of {ran} claims hold"
        for d, (held, ran) in summary.items()
    )
    ran_on = "; ".join(
        f"{KNOWN.get(d, d)} on {' and '.join((where or {}).get(d, ['?']))}"
        for d in datasets
    )
    return (
        f"<style>{STYLE}</style>"
        f'<p class="claims-summary"><b>{html.escape(totals)}.</b></p>'
        f'<p class="claims-where">Where the runs computed: {html.escape(ran_on)}.</p>'
        '<table class="claims-table"><thead><tr><th>chapter</th><th>claim</th>'
        f"{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


CLAIMS_PAGE = "claims"  # the page that holds the {claims-table} directive


def fill(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    placeholders = list(doctree.findall(claims_placeholder))
    if not placeholders:
        return
    records = load_records()
    chapters = {c for per in records.values() for c in per}
    link, title = {}, {}
    for chapter in chapters:
        target = f"chapters/{chapter}"
        if target in app.env.all_docs:
            link[chapter] = app.builder.get_relative_uri(docname, target)
            title[chapter] = app.env.titles[target].astext()
    table = nodes.raw("", render(records, link, title, load_where()), format="html")
    for node in placeholders:
        node.replace_self(table.deepcopy())


def reread_claims_page(app: Sphinx, env: Any, *_: Any) -> list[str]:
    """The claims page again on every build, changed or not: its table comes from the
    run records, not from its source, so an incremental build after a run (``make
    book``, once the clothes' pass is done) brings it up to date without executing any
    chapter."""
    return [CLAIMS_PAGE] if CLAIMS_PAGE in env.found_docs else []


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_node(claims_placeholder)
    app.add_directive("claims-table", ClaimsTable)
    app.connect("doctree-resolved", fill)
    app.connect("env-get-outdated", reread_claims_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
