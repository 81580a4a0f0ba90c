"""The package's layers: imports only go down, from the study to the commands to the library, with no circle."""

import ast

from common_utils import REPO

PACKAGE = REPO / "audiocraft_mmd"
COMMANDS = {"audio_distance", "compare_patterns", "dependence", "export", "grid", "listen", "plot", "prepare_data"}
# The study's harness, and the deprecated name of one of its commands.
STUDY = {"study", "independence_report"}


def module_names():
    """Every module of the package (the grids and config links left out), by dotted name."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(REPO)
        if relative.parts[1] in ("grids", "config"):
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def import_graph():
    """``module -> modules of the package it imports`` (lazy imports inside functions included). ``from X
    import y`` is an edge to ``X.y`` where that is a module, else to ``X``; importing a package's module
    is not counted as importing the package's ``__init__``."""
    modules = module_names()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                source = ".".join(base + ([node.module] if node.module else []))
                named = [f"{source}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in named:
                if target.startswith("audiocraft_mmd.grids"):
                    edges.add("audiocraft_mmd.grids")
                    continue
                while target and target not in modules:  # ``from X import name``: an edge to X
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def layer(name: str) -> str:
    parts = name.split(".")
    if name == "audiocraft_mmd.grids":
        return "grids"
    if len(parts) > 1 and parts[1] in STUDY:
        return "study"
    if len(parts) > 1 and (parts[1] in COMMANDS or parts[1] == "benchmarks"):
        return "command"
    return "library"


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(target):] + [target]))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_imports_only_go_down_the_layers():
    allowed = {"library": {"library"}, "command": {"library"}, "study": {"library", "command", "study"}}
    wrong = []
    for source, targets in import_graph().items():
        for target in targets:
            if layer(target) not in allowed[layer(source)] and source != "audiocraft_mmd.grid":
                wrong.append(f"{source} ({layer(source)}) imports {target} ({layer(target)})")
    assert not wrong, wrong


def test_commands_import_no_other_command():
    graph = import_graph()
    crossing = [(source, target) for source, targets in graph.items() for target in targets
                if layer(source) == layer(target) == "command" and source.split(".")[1] != target.split(".")[1]]
    assert not crossing


def test_the_registries_are_at_the_bottom():
    assert import_graph()["audiocraft_mmd.registry"] == set()


def test_the_checker_sees_a_circle_and_a_command_import(monkeypatch):
    """The tests above would pass on an empty graph: check that they can fail."""
    import sys
    import pytest
    monkeypatch.setattr(sys.modules[__name__], "import_graph", lambda: {
        "audiocraft_mmd.losses.mmd": {"audiocraft_mmd.dependence"},
        "audiocraft_mmd.dependence": {"audiocraft_mmd.losses.mmd"}})
    with pytest.raises(AssertionError, match="import circle"):
        test_the_import_graph_has_no_circle()
    with pytest.raises(AssertionError, match="losses.mmd \\(library\\) imports audiocraft_mmd.dependence"):
        test_imports_only_go_down_the_layers()


def test_scripts_import_the_package_by_its_name():
    """`scripts/` run as files (no parent package): a relative import there fails only when its line runs,
    e.g. on the GPU machine."""
    relative = [f"{path.name}:{node.lineno}" for path in sorted((REPO / "scripts").glob("*.py"))
                for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom) and node.level]
    assert not relative, f"relative imports in scripts/: {relative}"
