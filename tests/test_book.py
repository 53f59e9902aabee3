"""The book's structure: table of contents, notebooks, configuration, citations."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = [
    "01_overview",
    "02_undercomplete",
    "03_regularized",
    "04_sparse",
    "05_denoising",
    "06_deep",
    "07_convolutional",
    "08_variational",
    "09_applications",
    "10_sparse_dictionaries",
    "11_latent_diffusion",
]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _nb(path: Path) -> dict:
    return json.loads(path.read_text())


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _src(cell: dict) -> str:
    return "".join(cell["source"])


def test_toc_lists_the_chapters_in_order_then_the_claims_page():
    files = [c["file"] for part in TOC["parts"] for c in part["chapters"]]
    assert files[len(CHAPTERS) :] == ["claims", "bibliography"]
    assert "{claims-table}" in (ROOT / "claims.md").read_text()
    assert [
        f.removeprefix("chapters/") for f in files if f.startswith("chapters/")
    ] == CHAPTERS
    assert [p.stem for p in NOTEBOOKS] == CHAPTERS
    for f in files:
        assert any((ROOT / f).with_suffix(s).is_file() for s in (".ipynb", ".md")), f


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_lines_state_the_benched_cold_time(path):
    """The cost line under the title is the one bench.py writes from
    benchmarks/cold.json."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench import COLD_RECORD, cost_line

    cold = json.loads(COLD_RECORD.read_text())
    assert path.stem in cold, (
        "no cold time: run make bench BENCH='--cold-only --only ...'"
    )
    title, blank, line, *_ = _src(_nb(path)["cells"][0]).split("\n")
    assert title.startswith("# ") and not blank
    assert line == cost_line(cold[path.stem])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    nb = _nb(path)
    assert "widgets" not in nb["metadata"], "strip the widget state"
    for cell in _code_cells(nb):
        assert cell["outputs"] == [] and cell["execution_count"] is None, (
            f"strip outputs: {_src(cell)[:60]}"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_installs_from_the_configured_repository(path):
    url = CONFIG["repository"]["url"]
    first = _src(_code_cells(_nb(path))[0])
    tree = ast.parse(first)
    guard = next(n for n in tree.body if isinstance(n, ast.If))
    assert ast.unparse(guard.test) == "'google.colab' in sys.modules", (
        "install only on Colab"
    )
    install = ast.unparse(guard)
    assert f"aebook @ git+{url}" in install, (
        f"install cell must install aebook from {url}"
    )
    # Colab's own torch and ipywidgets stay as they are: no upgrade, no reinstall of
    # them.
    assert not re.search(
        r"torch|ipywidgets|--upgrade|-U\b|--force", install.replace("aebook @", "")
    )
    # The install is the only thing the guard does (naming the package, then pip);
    # nothing else in the cell depends on Colab.
    assert len(guard.body) <= 2 and not guard.orelse
    assert "pip" in ast.unparse(guard.body[-1])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_seeds_and_picks_a_device(path):
    # aebook.notebook.setup seeds, picks the device, loads the data, starts the claims
    first = _src(_code_cells(_nb(path))[0])
    assert re.search(
        rf'^data, device, claim = setup\("{path.stem}", DATA\b', first, re.M
    )


DRAWS = {"rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial"}


def _draws_on_a_device(source: str) -> list[str]:
    """Calls that pass a generator and a device to one draw: with fit's CPU generator
    and a GPU tensor's device, CUDA refuses them."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            keywords = {k.arg for k in node.keywords}
            if name in DRAWS and {"generator", "device"} <= keywords:
                found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_chapter_draws_with_a_generator_on_another_device(path):
    # The stand-in pass loads the CPU pass's models, so a hook defined in a chapter
    # never trains there: this is the check that sees one.
    bad = [d for c in _code_cells(_nb(path)) for d in _draws_on_a_device(_src(c))]
    assert not bad, (
        f"{path.name}: {bad} draw with a generator on the given device; fit's "
        "generator is a CPU one, so draw through aebook.draws (rand, randn, randint)"
    )


def test_a_draw_with_a_generator_on_a_device_is_caught():
    assert _draws_on_a_device("e = torch.randn(x.shape, generator=g, device=x.device)")
    assert not _draws_on_a_device("e = torch.randn(x.shape, generator=g).to(x.device)")


def _written(path: Path) -> bool:
    return _nb(path)["metadata"].get("aebook", {}).get("status") != "planned"


FOLDED = {"hide-input", "hide-cell", "remove-input", "remove-cell"}


def _open_lines(cell: dict) -> int:
    """Non-blank code lines a reader sees without unfolding anything (0 if folded)."""
    if FOLDED & set(cell.get("metadata", {}).get("tags", [])):
        return 0
    return sum(1 for line in _src(cell).splitlines() if line.strip())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cell_ids_are_unique(path):
    ids = [c.get("id") for c in _nb(path)["cells"]]
    assert len(set(ids)) == len(ids), (
        f"{path.name}: repeated cell ids {sorted({i for i in ids if ids.count(i) > 1})}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_open_cells_are_short(path):
    # Teaching code stays open in cells a reader can follow; the checks, the
    # controls behind them and the formatting of tables are folded.
    long = {
        c.get("id"): n for c in _code_cells(_nb(path)) if (n := _open_lines(c)) > 20
    }
    assert not long, f"{path.name}: open cells over 20 lines (fold or split): {long}"


def test_the_book_shows_at_most_1300_lines_of_code_unfolded():
    total = sum(_open_lines(c) for p in NOTEBOOKS for c in _code_cells(_nb(p)))
    assert total <= 1300, f"{total} open code lines across the chapters (#29: 1,300)"


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if _written(p)], ids=lambda p: p.stem
)
def test_every_summary_point_names_the_claims_it_restates(path):
    # A summary restates only what a claim above it checks: the folded cell right
    # after the summary's bullets passes claim.summary one argument per bullet, the
    # claims it rests on (or claim.DEFINITION), and the run fails if one is missing.
    cells = _nb(path)["cells"]
    at = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "markdown"
        and re.search(r"^## Summary$", _src(c), flags=re.MULTILINE)
    ]
    assert len(at) == 1, f"{path.name}: one cell with a '## Summary' heading"
    summary = _src(cells[at[0]]).split("## Summary")[1]
    bullets = re.findall(r"^- ", summary, flags=re.MULTILINE)
    check = cells[at[0] + 1]
    calls = [
        node
        for node in ast.walk(ast.parse(_src(check)))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "summary"
    ]
    assert check["cell_type"] == "code" and len(calls) == 1, (
        f"{path.name}: the cell after the summary calls claim.summary(...) once"
    )
    assert "hide-input" in check["metadata"].get("tags", [])
    assert bullets and len(calls[0].args) == len(bullets), (
        f"{path.name}: {len(bullets)} summary points, {len(calls[0].args)} arguments "
        "to claim.summary"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_takes_shared_models_from_the_recipes(path):
    # A model several chapters train is named once, in aebook.recipes; a chapter's own
    # helper has another name than `train`, and no chapter restates a recipe's cache
    # name by hand.
    from aebook.recipes import RECIPES

    code = "\n".join(_src(c) for c in _code_cells(_nb(path)))
    assert not re.search(r"^def train\(", code, flags=re.MULTILINE), (
        f"{path.name} defines its own train(); ask aebook.recipes for the model"
    )
    for r in RECIPES.values():
        assert f'name="{r.cache}"' not in code, (
            f"{path.name} trains {r.cache!r} by hand; use recipes.train"
        )


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if _written(p)], ids=lambda p: p.stem
)
def test_chapter_ends_with_exercises_and_hidden_solutions(path):
    cells = _nb(path)["cells"]
    heading = next(
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "markdown" and "## Exercises" in _src(c)
    )
    solutions = [c for c in cells[heading:] if c["cell_type"] == "code"]
    assert 2 <= len(solutions) <= 3
    for cell in solutions:
        assert "hide-cell" in cell["metadata"].get("tags", []), (
            "solutions hide behind a toggle"
        )
        assert "claim(" in _src(cell) or "show_images" in _src(cell)


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if _written(p)], ids=lambda p: p.stem
)
def test_written_chapter_checks_its_claims_and_glues_its_numbers(path):
    nb = _nb(path)
    code = "\n".join(_src(c) for c in _code_cells(nb))
    prose = "\n".join(_src(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    # glue("name", ...) or glue(f"name_{k}", ...): the f-string's fields match any word.
    patterns = [
        re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(n))
        for n in re.findall(r'glue\(\s*f?"([\w{}\[\]]+)"', code)
    ]
    used = set(re.findall(r"\{glue:text\}`(\w+)", prose))
    missing = {u for u in used if not any(re.fullmatch(p, u) for p in patterns)}
    assert used and not missing, f"prose uses numbers no cell glues: {missing}"
    assert code.count("claim(") >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_chooses_the_data_once_and_checks_claims_on_it(path):
    first = _src(_code_cells(_nb(path))[0])
    assert 'DATA = os.environ.get("AEBOOK_DATA", "mnist5k")' in first, (
        "one line chooses the data; the env var overrides"
    )
    assert f'setup("{path.stem}", DATA' in first
    code = "\n".join(_src(c) for c in _code_cells(_nb(path)))
    calls = re.findall(r"load_data\((\w*)\)", code)
    # Every cell uses the data chosen in setup (chapter 1 loads it once more, to show
    # the call); a chapter that needs a second dataset (chapter 9's out-of-distribution
    # images) names it in setup too, derived from DATA.
    assert calls.count("DATA") <= 1 and code.count("load_data(") == len(calls), (
        "every cell uses the data chosen in setup"
    )
    assert set(calls) <= {"DATA", "OTHER"} and (
        "OTHER" not in calls or re.search(r"^OTHER = .*\bDATA\b", first, re.MULTILINE)
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_glue_roles_are_well_formed(path):
    # A malformed role ({glue:text}`name:.1f}` with a brace for the closing backtick)
    # shows raw on the page.
    prose = "\n".join(
        _src(c) for c in _nb(path)["cells"] if c["cell_type"] == "markdown"
    )
    roles = re.findall(r"\{glue:\w+\}`([^`]*)`", prose)
    bad = [r for r in roles if not GLUE_ROLE.fullmatch(r)]
    assert not bad, f"malformed glue roles: {bad}"
    assert prose.count("{glue:") == len(roles), (
        "a glue role without its closing backtick"
    )


# A glue role's content: a name, then optionally ":" and a Python format spec
# ([[fill]align][sign][z][#][0][width][grouping][.precision][type]), nothing else.
GLUE_ROLE = re.compile(
    r"\w+(:(.?[<>=^])?[-+ ]?z?#?0?\d*[,_]?(\.\d+)?[bcdeEfFgGnosxX%]?)?"
)


@pytest.mark.parametrize(
    "prose",
    [
        "{glue:text}`max_plus_angle:.1f}` and more "
        "`x`",  # a brace for the closing backtick
        # no closing backtick, inline code after it
        "{glue:text}`ratio:.2f and then `code` follows",
        "{glue:text}`ratio:.2f, the rest` of it",  # prose inside the role
    ],
)
def test_malformed_glue_role_is_caught(prose):
    # the check above, on roles with the bugs it is there for
    role = re.findall(r"\{glue:\w+\}`([^`]*)`", prose)[0]
    assert not GLUE_ROLE.fullmatch(role)


@pytest.mark.parametrize(
    "role",
    ["best_fc", "ratio:.3f", "weights:,", "share:.1f", "n:>9,", "p:.0%", "x: .2e"],
)
def test_well_formed_glue_roles_pass(role):
    assert GLUE_ROLE.fullmatch(role)


def test_config_executes_and_fails_on_errors():
    assert CONFIG["execute"]["execute_notebooks"] == "force"
    assert CONFIG["execute"]["allow_errors"] is False
    assert CONFIG["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert {"dollarmath", "amsmath"} <= set(CONFIG["parse"]["myst_enable_extensions"])


def test_config_has_colab_and_repository_buttons():
    assert CONFIG["repository"]["url"].startswith("https://github.com/")
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["html"]["use_repository_button"] is True


def test_repository_url_is_written_once():
    url = CONFIG["repository"]["url"]
    hits = [
        p.relative_to(ROOT)
        for p in ROOT.rglob("*")
        if p.is_file()
        and p.suffix in {".yml", ".toml", ".md", ".py"}
        and not {".venv", "_build", ".git", "node_modules", ".cache"} & set(p.parts)
        and url in p.read_text()
    ]
    assert hits == [Path("_config.yml")]


def test_bibliography_has_the_required_works():
    bib = (ROOT / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{(\w+),", bib))
    assert {
        "goodfellow2016deep",
        "hinton2006reducing",
        "vincent2008extracting",
        "vincent2010stacked",
        "rifai2011contractive",
        "ng2011sparse",
        "baldi1989neural",
        "bengio2007greedy",
    } <= keys
    assert "references.bib" in CONFIG["bibtex_bibfiles"]
    assert "{bibliography}" in (ROOT / "bibliography.md").read_text()


def test_package_import_has_no_side_effects(tmp_path):
    # Importing every module must not create the cache, train, download or restyle
    # matplotlib.
    code = (
        "import matplotlib, matplotlib.pyplot as plt; before = dict(plt.rcParams); "
        "import aebook, aebook.data, aebook.models, aebook.training, aebook.cache, "
        "aebook.metrics, "
        "aebook.plotting, aebook.notebook, aebook.paths, aebook.claims, "
        "aebook.recipes, aebook.devices, aebook.draws, aebook.comparisons; "
        "assert dict(plt.rcParams) == before"
    )
    env = {
        "AEBOOK_CACHE": str(tmp_path / "c"),
        "PATH": "/usr/bin:/bin",
        "MPLBACKEND": "Agg",
    }
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    assert not (tmp_path / "c").exists()


def test_pyproject_fits_colab():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    spec = {re.split(r"[<>=!~ ]", d)[0]: d for d in deps}
    assert spec["torch"] == "torch>=2.4" and spec["ipywidgets"] == "ipywidgets>=7.7"
    assert not any("==" in d or "<" in d for d in deps), (
        "no pins or caps: Colab's versions must satisfy them"
    )
    reqs = (ROOT / "requirements.txt").read_text().split("\n")
    assert [r for r in reqs if r.strip()][-1] == "-e ."


def test_readme_package_table_lists_every_module_once():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## The package")
    section = readme[start : readme.index("\n## ", start + 1)]
    listed = re.findall(r"^\| `aebook\.(\w+)` \|", section, flags=re.MULTILINE)
    modules = sorted(
        p.stem for p in (ROOT / "src" / "aebook").glob("*.py") if p.stem != "__init__"
    )
    assert sorted(listed) == modules, (
        f"README's package table lists {sorted(listed)}; the package has {modules}"
    )


# The words that say two measured things are level, or that one is ahead of the
# other (#40). A claim that uses them must rest on `comparisons.level` or
# `comparisons.ahead`: its truth value calls one, or names a value one returned in
# the same cell. A bound on one quantity ("error below 0.02") is a plain claim.
TIE_WORDS = re.compile(
    r"\b(?:are|is|be|stay|stays|remain|remains|sit|sits)\s+level\b|\blevel with\b"
    r"|\ba tie\b|\b(?:are|is)\s+tied\b|\bas (?:good|well) as\b"
    r"|\bno (?:better|worse) than\b|\bequally\b|\bnearly as\b|\bof each other\b"
    r"|\beither way\b|\bdoes as well\b|\bdo as well\b",
    re.IGNORECASE,
)
ORDER_WORDS = re.compile(
    r"\b(?:beats?|beating|ahead|behind|better|worse|outperforms?)\b"
    r"|\b(?:higher|lower|closer|purer) than\b",
    re.IGNORECASE,
)
RULES = {"ahead", "level"}


def _statement(node: ast.expr) -> str:
    # an f-string's literal parts are its words
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return node.value if isinstance(node, ast.Constant) else ""


def _unruled_comparisons(*sources: str) -> list[str]:
    """The statements of claims in ``sources`` (a notebook's code cells) that use a
    tie or order word and whose truth value neither calls `ahead`/`level` (or a
    function that returns one) nor names a value bound from one, in any cell."""
    trees = [
        ast.parse(
            "\n".join(
                line
                for line in source.splitlines()
                if not line.lstrip().startswith(("%", "!"))
            )
        )
        for source in sources
    ]
    nodes = [n for tree in trees for n in ast.walk(tree)]
    rules = set(RULES)  # ahead, level, and the chapter's functions that call them

    def calls_rule(node: ast.AST) -> bool:
        return any(
            isinstance(n, ast.Call) and getattr(n.func, "id", None) in rules
            for n in ast.walk(node)
        )

    while True:  # a wrapper of a wrapper is a rule too
        more = {
            n.name for n in nodes if isinstance(n, ast.FunctionDef) and calls_rule(n)
        }
        if more <= rules:
            break
        rules |= more
    ruled = set()  # names bound from a call to a rule
    for node in nodes:
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value:
            if calls_rule(node.value):
                targets = (
                    node.targets if isinstance(node, ast.Assign) else [node.target]
                )
                ruled |= {
                    n.id
                    for t in targets
                    for n in ast.walk(t)
                    if isinstance(n, ast.Name)
                }
    found = []
    for node in nodes:
        if not (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "claim"
            and len(node.args) >= 2
        ):
            continue
        text = _statement(node.args[0])
        if not (TIE_WORDS.search(text) or ORDER_WORDS.search(text)):
            continue
        holds = node.args[1]
        names = {n.id for n in ast.walk(holds) if isinstance(n, ast.Name)}
        if not (calls_rule(holds) or names & ruled):
            found.append(text)
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_tie_and_order_words_go_through_ahead_or_level(path):
    found = _unruled_comparisons(*(_src(c) for c in _code_cells(_nb(path))))
    assert not found, (
        f"{path.name}: these claims say level, a tie or an order without "
        "comparisons.level or comparisons.ahead:\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    "source, flagged",
    [
        ('claim("A beats B", a > b)', True),
        ('claim("A and B are level (within 0.05)", abs(a - b) < 0.05)', True),
        ('claim(f"{k}: A is no better than B", a <= b)', True),
        ('v = ahead(gaps)\nclaim("A beats B", v, **v.measured())', False),
        ('claim("A beats B", ahead(gaps))', False),
        (
            "ties = {p: level(g, m) for p, g in pairs.items()}\n"
            'claim("the two are level", ties["a - b"])',
            False,
        ),
        ('claim("error below 0.02", err < 0.02)', False),  # a bound on one quantity
        (
            'def lead(a, b):\n    return ahead(a - b)\nclaim("A beats B", lead(a, b))',
            False,
        ),
        ('def lead(a, b):\n    return a > b\nclaim("A beats B", lead(a, b))', True),
        ('claim("with tied weights the code moves less", x > 1.5)', False),
    ],
)
def test_unruled_comparison_is_caught(source, flagged):
    assert bool(_unruled_comparisons(source)) is flagged
