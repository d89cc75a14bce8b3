"""The import graph runs one way and has no cycles.

Every module of the four packages is parsed with `ast`; every import counts, including
those inside functions (a lazy import is still a dependency). The layers, lowest first:

    simulator  <  examiner (the library)  <  generators, reports  <  examiner.app (the CLI)

A module may import its own layer and the layers below it, never a layer above:
`simulator` imports none of the others, the `examiner` library imports neither
`generators`, `reports` nor `examiner.app`, `generators` and `reports` do not import each
other or `examiner.app`. Only the command-line application, `examiner.app` (and the
`examiner.cli` shim kept for installed console scripts), composes them. There is no cycle
between modules (an import of a package counts as an import of its `__init__`).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("simulator", "examiner", "generators", "reports")
APP = ("examiner.app", "examiner.cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            found[module_name(path)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that `name` names or lies in."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` imports the submodule when there is one
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        for t in targets:
            m = _resolve(t, known)
            if m is not None and m != name:
                out.add(m)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def layer(module: str) -> tuple[int, str]:
    if any(module == a or module.startswith(a + ".") for a in APP):
        return 3, "examiner.app"
    top = module.split(".")[0]
    return {"simulator": (0, "simulator"), "examiner": (1, "examiner"),
            "generators": (2, "generators"), "reports": (2, "reports")}[top]


def strongly_connected(g: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm (iterative); components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    counter = 0
    for root in sorted(g):
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(g[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(comp)
    return found


def test_the_graph_sees_function_level_and_relative_imports():
    g = graph()
    assert "reports" in g["examiner.app.run"]  # `from reports import write_report` inside a function
    assert "generators.registry" in g["generators.engine"]
    assert len(g) > 100


def test_no_library_module_imports_upward():
    upward = []
    for module, deps in graph().items():
        lm, name_m = layer(module)
        for dep in deps:
            ld, name_d = layer(dep)
            if ld > lm or (ld == lm and name_d != name_m):
                upward.append(f"{module} -> {dep}")
    assert not upward, "imports against the layers (see this file's docstring):\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    cycles = [sorted(c) for c in strongly_connected(graph())]
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)
