"""The package layers import downwards only (apg_jax <- warp_bridge <- experiments), no two modules
import each other (directly or through a cycle), and ``apg_jax.config`` imports without JAX."""
import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ["apg_jax", "warp_bridge", "experiments"]  #: lowest first


def module_imports() -> dict[str, set[str]]:
    """``{module: {imported project modules}}`` from the source (every import statement, also local ones)."""
    graph = {}
    for package in LAYERS:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".").removesuffix(".__init__")
                found = set()
                for node in ast.walk(ast.parse(open(path).read())):
                    if isinstance(node, ast.Import):
                        found |= {a.name for a in node.names}
                    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                        found.add(node.module)
                        found |= {f"{node.module}.{a.name}" for a in node.names}
                graph[module] = {m for m in found if m.split(".")[0] in LAYERS}
    return {m: {i for i in imports if i in graph} for m, imports in graph.items()}


def upward_imports(graph) -> list[str]:
    rank = {p: i for i, p in enumerate(LAYERS)}
    return [f"{m} imports {i}" for m, imports in graph.items() for i in imports
            if rank[i.split(".")[0]] > rank[m.split(".")[0]]]


def cycles(graph) -> list[list[str]]:
    """Import cycles between modules (a package's ``__init__`` importing its own submodules excepted)."""
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if node.startswith(nxt + ".") or nxt.startswith(node + "."):
                continue  # package <-> its own submodule: Python's normal package structure
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_upward_imports_and_no_cycles():
    graph = module_imports()
    assert "apg_jax.rundir" in graph and "experiments.warp_backend" in graph  # the walk found the tree
    assert upward_imports(graph) == []
    assert cycles(graph) == []


def test_the_checks_can_fail():
    graph = {"apg_jax.a": {"warp_bridge.b"}, "warp_bridge.b": {"apg_jax.a"}}
    assert upward_imports(graph) == ["apg_jax.a imports warp_bridge.b"]
    assert cycles(graph) == [["apg_jax.a", "warp_bridge.b", "apg_jax.a"]]


def test_config_imports_without_jax():
    code = "import sys, apg_jax.config; assert 'jax' not in sys.modules, 'jax was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
