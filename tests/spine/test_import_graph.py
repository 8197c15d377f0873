"""The floors of the house (README "Architecture"): no import cycle between yolokit's packages, box ops import
nothing of yolokit, only the command line imports the benchmarks. Imports inside functions count too: a lazy
import is still a dependency."""

import ast
import sys
from pathlib import Path

import yolokit

ROOT = Path(yolokit.__file__).parent
# modules every floor may use: the error types and small leaf helpers
LEAVES = {"errors", "report", "fileio", "__init__", "__main__"}


def _unit(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        if "configs" in path.relative_to(ROOT).parts:
            continue
        src = _unit(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] != "yolokit" or len(parts) < 2:
                    continue
                dst = parts[1]
                is_unit = (ROOT / dst).is_dir() or (ROOT / f"{dst}.py").is_file()
                if dst != src and is_unit:
                    graph.setdefault(src, set()).add(dst)
    return graph


def test_no_cycle_between_packages():
    graph = {k: v - LEAVES for k, v in _graph().items() if k not in LEAVES}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_ops_imports_nothing_of_yolokit():
    assert _graph().get("ops", set()) - {"ops"} == set()


def test_only_the_command_line_imports_the_benchmarks():
    # the benchmarks live outside the package (benchmarks/ in the checkout); only `yolokit bench` reaches them,
    # by name at run time, never with an import statement
    users = set()
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            mods = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(m.split(".")[0] == "benchmarks" for m in mods):
                users.add(str(path.relative_to(ROOT)))
    assert users == set(), users
    assert not (ROOT / "bench").exists(), "the benchmarks moved to the checkout's benchmarks/"


def test_a_cycle_would_be_found(monkeypatch):
    # the check itself can fail: a made-up back edge from ops to models is reported
    fake = _graph()
    fake.setdefault("ops", set()).add("models")
    monkeypatch.setattr(sys.modules[__name__], "_graph", lambda: fake)
    try:
        test_no_cycle_between_packages()
    except AssertionError as exc:
        assert "cycle" in str(exc)
    else:
        raise AssertionError("the made-up cycle ops -> models -> ops was not found")
