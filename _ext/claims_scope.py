"""Each finding scoped to where it holds: a chapter's check cells say, claim by claim,
whether it also held on the clothes, and a summary bullet that rests on a claim that
fails there must say so.

The chapters execute on the digits while the book builds; the clothes' run is recorded
before (``make test`` runs both passes first). At the end of the build
(``doctree-resolved``, as the claims page does), two things happen on every chapter
page:

- Every claim in a check cell's output (``claim.checked()`` and ``claim.summary()``
  mark each with ``data-claim``) gets "clothes: ✓ holds" or "clothes: ✗ does not hold"
  and the values measured there; the cell's one line gets the count on the clothes.
- The summary section's bullets are held against the bullets ``claim.summary`` recorded
  on the digits: a bullet naming a claim that fails on the clothes, and whose words do
  not scope it ("on the digits", or what the clothes do), is a build warning, and the
  book's build treats warnings as errors.
"""

from __future__ import annotations

import html
import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

from aebook.claims import OTHER, fmt_values, load_records, load_summaries
from aebook.data import DEFAULT

logger = logging.getLogger(__name__)

WORD = "clothes"  # what the reader calls the other dataset
# words that scope a bullet: it names the digits as where it holds, or says what the
# clothes do
SCOPED = re.compile(r"\bon (the )?digits\b|\bclothes\b", re.IGNORECASE)
CLAIM = re.compile(r'<(li|span) data-claim="([^"]*)">(.*?)</\1>', re.DOTALL)
LINE = re.compile(r"<summary>(.*?)</summary>", re.DOTALL)
STYLE = "color:#555;font-size:0.9em"


def mark(output: str, other: dict[str, dict[str, Any]] | None) -> str:
    """A check cell's HTML output with each marked claim's result on the other dataset
    (``other``: statement -> record; None when that dataset has no run of the chapter)
    and the count on its one line."""
    found: dict[str, bool | None] = {}  # a summary may name a claim twice

    def one(m: re.Match[str]) -> str:
        tag, statement, inner = m.group(1), html.unescape(m.group(2)), m.group(3)
        record = None if other is None else other.get(statement)
        if record is None:
            found[statement] = None
            said = f"{WORD}: not run"
        else:
            found[statement] = bool(record["holds"])
            verdict = "✓ holds" if record["holds"] else "✗ does not hold"
            said = f"{WORD}: {verdict} ({fmt_values(record['measured'])})"
        return (
            f'<{tag} data-claim="{m.group(2)}">{inner} '
            f'<span class="aebook-other" style="{STYLE}">· {html.escape(said)}</span>'
            f"</{tag}>"
        )

    output = CLAIM.sub(one, output)
    ran = [f for f in found.values() if f is not None]
    if not found:
        return output
    if not ran:
        count = f"not run on the {WORD}"
    elif all(ran) and len(ran) == len(found):
        count = (
            f"it holds on the {WORD} too"
            if len(ran) == 1
            else f"all {len(ran)} hold on the {WORD} too"
        )
    else:
        count = f"{sum(ran)} of {len(found)} hold on the {WORD}"
    return LINE.sub(
        lambda m: f"<summary>{m.group(1)} · {html.escape(count)}</summary>",
        output,
        count=1,
    )


def unscoped(
    texts: list[str],
    bullets: list[Any],
    other: dict[str, dict[str, Any]],
) -> list[str]:
    """What is wrong with a summary's scope: one message per bullet that rests on a
    claim that fails on the other dataset (``other``: statement -> record) and whose
    text (``texts``, in the order of ``bullets``, as `Claims.summary` recorded them)
    does not say so; a claim with no record there is not known to hold and counts as
    failing."""
    if len(texts) != len(bullets):
        return [
            f"the summary has {len(texts)} bullets but claim.summary checked "
            f"{len(bullets)}"
        ]
    problems = []
    for i, (text, statements) in enumerate(zip(texts, bullets), 1):
        if not isinstance(statements, list):  # a definition restates no finding
            continue
        failing = [s for s in statements if not other.get(s, {"holds": False})["holds"]]
        if failing and not SCOPED.search(text):
            problems.append(
                f"summary bullet {i} rests on claims that do not hold on the {WORD} "
                f"({'; '.join(failing)}), but does not say so: scope it with 'on the "
                f"digits', or say what the {WORD} do"
            )
    return problems


def _summary_bullets(doctree: nodes.document) -> list[str] | None:
    """The top-level bullets of the section titled Summary, as text; None without
    one."""
    for section in doctree.findall(nodes.section):
        title = section.next_node(nodes.title)
        if title is not None and title.astext().strip() == "Summary":
            lists = [c for c in section.children if isinstance(c, nodes.bullet_list)]
            if lists:
                return [item.astext() for item in lists[0].children]
    return None


def scope(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    if not docname.startswith("chapters/"):
        return
    chapter = docname.split("/", 1)[1]
    ran = load_records().get(OTHER, {}).get(chapter)
    other = None if ran is None else {r["statement"]: r for r in ran}
    for node in list(doctree.findall(nodes.raw)):
        text = node.astext()
        if node.get("format") == "html" and 'class="aebook-checked"' in text:
            new = nodes.raw("", mark(text, other), format="html")
            new["classes"] = node["classes"]
            node.replace_self(new)
    texts = _summary_bullets(doctree)
    bullets = load_summaries().get(DEFAULT, {}).get(chapter)
    if other is None or texts is None or bullets is None:
        return  # no clothes' run, or no checked summary: nothing to hold it against
    for problem in unscoped(texts, bullets, other):
        logger.warning(f"{chapter}: {problem}", location=docname)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-resolved", scope)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
