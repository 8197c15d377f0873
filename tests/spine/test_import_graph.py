"""The floors of the house (README "Architecture"): no import cycle between yolokit's packages or (beyond the known
ones) between its modules, no arrow up a floor, box ops import nothing of yolokit, nothing in the package imports
the benchmarks; modules over 450 lines and functions over 80 are printed, and only the listed ones may stay.
Imports inside functions count too: a lazy import is still a dependency (``if TYPE_CHECKING:`` ones are not)."""

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


# ----------------------------------------------------------------------------- floors, module circles, sizes
#: The floors of README "Architecture", bottom (0) to top: a unit imports only units on its floor or below.
FLOORS = {
    "ops": 0,
    "settings": 1,
    "models": 2,
    "data": 3, "track": 3,
    "loss": 4,
    "eval": 5,
    "engine": 6,
    "hog": 7,
    "apps": 8,
    "cli": 9,
}
#: Module import circles that are known and owned elsewhere (each a set the found circle must fit in); a new
#: circle anywhere else fails.
KNOWN_CIRCLES: list[set[str]] = []
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
#: Modules and functions over the limits, owned elsewhere; may only shrink.
LONG_MODULES: set[str] = set()
LONG_FUNCTIONS: set[str] = set()


def _modules() -> dict[str, Path]:
    """``"models.darknet" -> path`` (a package is its ``__init__``; the top package is ``""``)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if "configs" in rel.parts:
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(tree) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:``: annotations only, never imported at run time."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


def _module_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("yolokit"):
                base = node.module.removeprefix("yolokit").lstrip(".")
                for a in node.names:
                    sub = f"{base}.{a.name}".lstrip(".")
                    targets.append(sub if sub in mods else base)  # `from yolokit.models import layers`
            elif isinstance(node, ast.Import):
                targets += [a.name.removeprefix("yolokit").lstrip(".") for a in node.names
                            if a.name.split(".")[0] == "yolokit"]
            graph.setdefault(name, set()).update(t for t in targets if t in mods and t != name)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected parts of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = set()
            while True:
                w = stack.pop()
                part.add(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(part)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_new_import_circle_between_modules():
    new = [c for c in _circles(_module_graph()) if not any(c <= known for known in KNOWN_CIRCLES)]
    assert not new, "import circles: " + "; ".join(" <-> ".join(sorted(c)) for c in new)


def test_a_module_circle_would_be_found():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_arrow_up_a_floor():
    graph = _graph()
    units = set(graph) | {d for ds in graph.values() for d in ds}
    assert units - LEAVES <= set(FLOORS), f"units without a floor: {sorted(units - LEAVES - set(FLOORS))}"
    up = [f"{src} ({FLOORS[src]}) -> {dst} ({FLOORS[dst]})" for src, dsts in graph.items() if src in FLOORS
          for dst in dsts if dst in FLOORS and FLOORS[dst] > FLOORS[src]]
    assert not up, "imports up a floor: " + ", ".join(sorted(up))
    leaves = {src: dsts - LEAVES for src, dsts in graph.items() if src in LEAVES - {"__init__", "__main__"}}
    assert not any(leaves.values()), f"leaf modules importing floors: {leaves}"


def _sizes() -> tuple[dict[str, int], dict[str, int]]:
    modules, functions = {}, {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("configs/"):
            continue
        text = path.read_text()
        modules[rel] = len(text.splitlines())
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions[f"{rel}:{node.name}"] = node.end_lineno - node.lineno + 1
    return modules, functions


def test_module_and_function_sizes():
    modules, functions = _sizes()
    long_modules = {m: n for m, n in modules.items() if n > MAX_MODULE_LINES}
    long_functions = {f: n for f, n in functions.items() if n > MAX_FUNCTION_LINES}
    print(f"\nmodules over {MAX_MODULE_LINES} lines:", *(f"  {m}: {n}" for m, n in sorted(long_modules.items())),
          f"functions over {MAX_FUNCTION_LINES} lines:",
          *(f"  {f}: {n}" for f, n in sorted(long_functions.items())), sep="\n")
    assert set(long_modules) <= LONG_MODULES, f"new modules over {MAX_MODULE_LINES} lines: " \
                                              f"{sorted(set(long_modules) - LONG_MODULES)}"
    assert set(long_functions) <= LONG_FUNCTIONS, f"new functions over {MAX_FUNCTION_LINES} lines: " \
                                                  f"{sorted(set(long_functions) - LONG_FUNCTIONS)}"
