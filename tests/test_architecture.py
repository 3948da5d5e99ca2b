"""The package's shape: no import circle, no private name taken across modules.

Every module of ``lib/indi4d`` is parsed with ``ast`` (nothing is imported), and
every import of the package's own modules counts, at the top of a file or inside
a function, relative or absolute; ``from . import x`` is an import of the submodule
``x`` when ``x`` is one.
"""

import ast
from pathlib import Path

PACKAGE = "indi4d"
ROOT = Path(__file__).resolve().parents[1] / "lib" / PACKAGE

# Known exceptions: none (issue 21 removed the safety <-> io circle and io/'s private imports).
# An import listed here is left out of the graph before circles are looked for.
KNOWN_CIRCLE_IMPORTS = set()
# Private names taken by other modules: {importing module: "the names"}.
KNOWN_PRIVATE_IMPORTS = {}


def module_files():
    """Map each module's dotted name to its file.

    Returns
    -------
    dict
        ``{"indi4d.io.paths": Path(...), "indi4d.io": Path(".../io/__init__.py")}``.
    """
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _base(module, path, level, name):
    """The absolute module named by a (possibly relative) ``from`` import."""
    if level == 0:
        return name or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - (level - 1)]
    return ".".join(package + ([name] if name else []))


def _known(name, modules):
    """``name`` if it is one of the package's modules, else its longest module prefix."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module, path, modules):
    """Every import of the package's modules in one file.

    Returns
    -------
    list of (str, str or None, int)
        ``(imported module, imported name or None, line)``; the name is set for
        ``from M import name`` when ``name`` is not itself a submodule of ``M``.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, modules)
                if target:
                    found.append((target, None, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, path, node.level, node.module)
            if not (base == PACKAGE or base.startswith(PACKAGE + ".")):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    found.append((sub, None, node.lineno))
                else:
                    target = _known(base, modules)
                    if target:
                        found.append((target, alias.name, node.lineno))
    return found


def import_graph(leave_out=KNOWN_CIRCLE_IMPORTS):
    """``{module: {imported module: first line}}`` over the whole package, without the
    imports in ``leave_out``."""
    modules = module_files()
    graph = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, {})
        for target, _, line in imports_of(module, path, modules):
            if target != module and (module, target) not in leave_out:
                edges.setdefault(target, line)
    return graph


def strongly_connected(graph):
    """Tarjan's strongly connected components with more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def one_cycle(graph, component):
    """One closed path through a strongly connected component, with import lines."""
    start = min(component)
    path, seen, node = [start], {start}, start
    while True:
        nxt = min(m for m in graph[node] if m in component)
        if nxt in seen:
            cycle = path[path.index(nxt):] + [nxt]
            break
        path.append(nxt)
        seen.add(nxt)
        node = nxt
    return " -> ".join(
        f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])
    ) + f" -> {cycle[-1]}"


def test_graph_sees_relative_and_in_function_imports():
    graph = import_graph()
    # relative, at the top: inference/volumes.py does `from .tiling import ...`
    assert "indi4d.inference.tiling" in graph["indi4d.inference.volumes"]
    # `from . import x` names the submodule x: cli/main.py does `from . import data_commands, ...`
    assert "indi4d.cli.data_commands" in graph["indi4d.cli.main"]
    # inside a function: book_pages.write_generated_pages does `from . import runs`
    assert "indi4d.runs" in graph["indi4d.book.pages"]
    # absolute, inside a function, of a name: cli/common.chapter_time does `from ..book_timings import ...`
    assert "indi4d.book.timings" in graph["indi4d.cli.common"]


def test_a_circle_is_found_and_printed():
    graph = {"a": {"b": 3}, "b": {"c": 5}, "c": {"a": 7}, "d": {"a": 1}}
    (circle,) = strongly_connected(graph)
    assert circle == {"a", "b", "c"}
    assert one_cycle(graph, circle) == "a (line 3) -> b (line 5) -> c (line 7) -> a"


def test_no_import_circle():
    graph = import_graph()
    circles = strongly_connected(graph)
    assert not circles, "import circles:\n" + "\n".join(one_cycle(graph, c) for c in circles)


def test_known_circle_imports_still_exist():
    """A known exception that is gone must leave the list, so the list stays true."""
    graph = import_graph(leave_out=set())
    gone = {(a, b) for a, b in KNOWN_CIRCLE_IMPORTS if b not in graph.get(a, {})}
    assert not gone, f"no longer imported, remove from KNOWN_CIRCLE_IMPORTS: {gone}"


def private_imports():
    """``(importing module, line, imported module, name)`` of every private name taken
    from another module of the package."""
    modules = module_files()
    found = []
    for module, path in modules.items():
        for target, name, line in imports_of(module, path, modules):
            if name and name.startswith("_") and not name.startswith("__") and target != module:
                found.append((module, line, target, name))
    return found


def test_no_private_name_across_modules():
    bad = [
        f"{module}:{line} imports {name} from {target}"
        for module, line, target, name in private_imports()
        if name not in KNOWN_PRIVATE_IMPORTS.get(module, "").split()
    ]
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def test_known_private_imports_still_exist():
    """A known exception that is gone must leave the list, so the list stays true."""
    taken = {(module, name) for module, _, _, name in private_imports()}
    gone = [(m, n) for m, names in KNOWN_PRIVATE_IMPORTS.items() for n in names.split() if (m, n) not in taken]
    assert not gone, f"no longer imported, remove from KNOWN_PRIVATE_IMPORTS: {gone}"
