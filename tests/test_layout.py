"""The house matches the map (shared/DESIGN.md): imports point down, front-ends stay apart, files stay small.

Read from the code's own imports with ``ast`` (every import, also those inside functions and ``TYPE_CHECKING``
blocks), so anyone can run it: ``pytest tests/test_layout.py``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"deltavlm": 0, "tools": 1, "graphs": 2, "agent": 3, "app": 4}
"""deltavlm < tools < graphs < agent < app.py: a module may import its own layer and the ones below."""
FRONT_ENDS = ("agent.cli", "agent.page", "agent.batch", "agent.scene")
FRONT_END_LIBRARIES = ("gradio", "argparse", "ray", "uvicorn")
MAX_LINES = 700


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> list[Path]:
    files = [ROOT / "app.py"]
    for package in ("deltavlm", "tools", "graphs", "agent"):
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def _imports(path: Path, module: str) -> list[str]:
    """Absolute names of every module this file imports (relative imports resolved against its package)."""
    package = module.split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names.append(".".join([*base, node.module] if node.module else base))
            else:
                names.append(node.module or "")
    return names


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


SOURCES = _sources()
IMPORTS = {_module_name(path): _imports(path, _module_name(path)) for path in SOURCES}


def test_the_checker_sees_the_whole_project():
    assert len(IMPORTS) > 80
    assert "graphs.change_graph" in IMPORTS and "agent.api" in IMPORTS and "app" in IMPORTS


def _upward(module: str, names: list[str]) -> list[str]:
    own = LAYERS[module.split(".")[0]]
    return [n for n in names if n.split(".")[0] in LAYERS and LAYERS[n.split(".")[0]] > own]


@pytest.mark.parametrize("module", sorted(IMPORTS))
def test_imports_point_down(module):
    upward = _upward(module, IMPORTS[module])
    assert not upward, f"{module} imports a layer above its own: {upward}"


def test_graphs_imports_nothing_of_agent():
    offenders = {m: [n for n in names if _within(n, "agent")] for m, names in IMPORTS.items() if _within(m, "graphs")}
    assert not {m: n for m, n in offenders.items() if n}


def _core(module: str) -> bool:
    return _within(module, "agent") and not any(_within(module, f) for f in FRONT_ENDS)


def test_the_agent_core_imports_no_front_end():
    core = [m for m in IMPORTS if _core(m)]
    assert "agent.api" in core and "agent.turn.nodes" in core
    offenders = {
        m: [
            n
            for n in IMPORTS[m]
            if any(_within(n, lib) for lib in FRONT_END_LIBRARIES) or any(_within(n, f) for f in FRONT_ENDS)
        ]
        for m in core
    }
    assert not {m: n for m, n in offenders.items() if n}


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_front_ends_never_import_each_other(front_end):
    others = [f for f in FRONT_ENDS if f != front_end]
    offenders = {
        m: [n for n in names if any(_within(n, o) for o in others)]
        for m, names in IMPORTS.items()
        if _within(m, front_end)
    }
    assert any(_within(m, front_end) for m in IMPORTS), f"no module found for {front_end}"
    assert not {m: n for m, n in offenders.items() if n}


def test_no_source_file_passes_the_size_limit():
    long = {str(p.relative_to(ROOT)): n for p in SOURCES if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these by job (limit {MAX_LINES} lines): {long}"


def test_the_checker_catches_an_upward_import(tmp_path):
    """The rules are not vacuous: a tools module importing the agent, even lazily or relatively, is flagged."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from agent.api import Agent\n    from ..graphs import nodes\n")
    names = _imports(probe, "tools.probe")
    assert _upward("tools.probe", names) == ["agent.api", "graphs"]


def _calls_up(source: str) -> list[str]:
    """Names in ``source`` that reach for a policy object: any name, attribute or argument mentioning a policy,
    and any call on the run context other than its tools (the pair store and the DeltaVLM tool)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        name = (
            node.id
            if isinstance(node, ast.Name)
            else node.attr
            if isinstance(node, ast.Attribute)
            else node.arg
            if isinstance(node, ast.arg)
            else ""
        )
        if "polic" in name.lower():
            found.append(name)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Attribute) and owner.attr == "context":
                found.append(f"context.{node.func.attr}()")
    return found


def test_graphs_never_call_up_into_a_policy():
    """The graph moves a typed state between the agent's steps; it asks nothing of the agent while it runs."""
    offenders = {
        str(p.relative_to(ROOT)): found
        for p in SOURCES
        if _within(_module_name(p), "graphs") and (found := _calls_up(p.read_text(encoding="utf-8")))
    }
    assert not offenders


def test_the_policy_check_catches_a_call_up():
    """Not vacuous: the pattern the graph used to have is flagged."""
    assert _calls_up("def node(state, runtime):\n    return runtime.context.policy.read(state.question)\n")
    assert _calls_up("def route(state, runtime):\n    return runtime.context.needs_facts(state)\n")
    assert not _calls_up("def route(state):\n    return state.request.needs_facts\n")


FRONT_END_CHROME = ("agent.cli", "agent.page")
"""The command line's and the page's own labels, help and status lines; everything an answer, a refusal or an
error in the chat says comes from ``agent.answering``."""


def _literal_text(node: ast.AST) -> str | None:
    """The literal text of a returned expression: a string, an f-string (holes as X), a sum, a choice, a format."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else " X " for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return (_literal_text(node.left) or " X ") + (_literal_text(node.right) or " X ")
    if isinstance(node, ast.IfExp):
        return _literal_text(node.body) or _literal_text(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _literal_text(node.func.value)
    return None


def _sentences_returned(source: str) -> list[str]:
    """Sentence-like text a function returns: four or more words, starting with a capital or ending in . ? !"""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Return) and node.value is not None:
            text = _literal_text(node.value)
            if text is None:
                continue
            words = re.findall(r"[A-Za-z]{2,}", text)
            if len(words) >= 4 and (text.rstrip().endswith((".", "?", "!")) or re.match(r"\s*[A-Z][a-z]", text)):
                found.append(text.strip()[:80])
    return found


PROSE_FIELDS = ("detail", "note", "confidence_reason", "resolution", "rule", "reason", "method")
"""Fields the tools and the agent core once filled with sentences (mask provenance, pixel notes, conflicts, rules, the
reader's reason, a parse's method); they hold facts now, so a sentence passed as one of them is prose outside
``agent.answering``."""


def _sentences_passed(source: str) -> list[str]:
    """Sentence-like text (four or more words) passed as a keyword named in ``PROSE_FIELDS``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                text = _literal_text(keyword.value) if keyword.arg in PROSE_FIELDS else None
                if text is not None and " " in text.strip() and len(re.findall(r"[A-Za-z]{2,}", text)) >= 4:
                    found.append(text.strip()[:80])
    return found


def test_only_the_answering_package_returns_sentences():
    offenders = {
        str(p.relative_to(ROOT)): found
        for p in SOURCES
        if (module := _module_name(p)) != "app"
        and not _within(module, "agent.answering")
        and not any(_within(module, f) for f in FRONT_END_CHROME)
        and (
            found := _sentences_returned(p.read_text(encoding="utf-8"))
            + _sentences_passed(p.read_text(encoding="utf-8"))
        )
    }
    assert not offenders


def test_the_sentence_check_catches_prose_in_a_tool():
    """Not vacuous: the shapes the tools used to return are flagged, facts are not."""
    prose = (
        "def describe(n):\n    return f'The GeoJSON holds {n} changed cells.'\n"
        "def hint(p):\n    return 'It cannot be placed on a map; ' + p\n"
    )
    assert len(_sentences_returned(prose)) == 2
    assert not _sentences_returned("def f(n):\n    return {'cells': n}\ndef g():\n    return 'EPSG:4326'\n")
    passed = "MaskSource(detail=f'user-supplied mask read as {note}; taken as ground truth', kind='user')\n"
    assert _sentences_passed(passed) and not _sentences_passed("MaskSource(made_by=MaskMethod(method='user_file'))\n")
    assert _sentences_passed("Request(reason='asks for a number of objects')\n")  # the reader's old prose
    assert not _sentences_passed("ParsedAnswer(method='cells_for_asked_category')\n")  # a code is not a sentence


CHAT_FRONT_ENDS = ("agent.page",)
"""Front-ends whose chat and status line say sentences: each comes from ``agent.answering`` in the visitor's
language, so none is written here (component labels, buttons and progress texts are the page's own chrome)."""


def _chat_sentences(source: str) -> list[str]:
    """Literal text said in a chat or status line: ``x.reply("…")``, ``x.status = "…"`` and chat messages'
    ``"content"`` / ``"title"``, when it holds two or more words."""
    found = []
    for node in ast.walk(ast.parse(source)):
        said: list[ast.AST] = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "reply":
            said = [*node.args, *(k.value for k in node.keywords)]
        elif isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Attribute) and t.attr == "status" for t in node.targets):
                said = [node.value]
        elif isinstance(node, ast.Dict):
            said = [v for k, v in zip(node.keys, node.values, strict=True) if _literal_text(k) in ("content", "title")]
        for value in said:
            text = _literal_text(value)
            if text is not None and len(re.findall(r"[^\W\d_]{2,}", text)) >= 2:
                found.append(text.strip()[:80])
    return found


def test_the_page_says_no_sentence_of_its_own_in_the_chat_or_status():
    offenders = {
        str(p.relative_to(ROOT)): found
        for p in SOURCES
        if any(_within(_module_name(p), f) for f in CHAT_FRONT_ENDS)
        and (found := _chat_sentences(p.read_text(encoding="utf-8")))
    }
    assert not offenders


def test_the_chat_check_catches_the_pages_old_sentences():
    """Not vacuous: what the page used to write inline is flagged; catalog calls and codes are not."""
    old = (
        "def place(session, exc):\n"
        "    session.reply(f'{MARK_PROBLEM} **Could not place the pair.** {exc}.')\n"
        "    session.reply(said + ' The conversation goes on; exports from now on use this.')\n"
        "    fresh.status = f'Now upload the {missing} image.'\n"
        "    chat.append({'role': 'assistant', 'metadata': {'title': 'Working on it…', 'status': 'pending'}})\n"
    )
    assert len(_chat_sentences(old)) == 4
    new = (
        "def place(session, exc, lang):\n"
        "    session.reply(words.place_problem(str(exc), lang))\n"
        "    fresh.status = words.status('welcome', lang)\n"
        "    chat.append({'role': 'assistant', 'metadata': {'title': title, 'status': 'done'}})\n"
    )
    assert not _chat_sentences(new)
