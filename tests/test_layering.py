"""The package's layers import only downward (DESIGN.md), and no function is longer than 80 lines."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "netsim"
ABOVE = {
    "network": {"workload", "system", "collectives", "codecs", "sweep", "report", "simulate", "cli", "validation"},
    "collectives": {"system", "workload", "sweep", "report", "simulate", "cli", "validation"},
    "workload": {"network", "system", "collectives", "report", "simulate", "cli", "sweep", "validation"},
    "config": {"network", "system", "collectives", "workload", "codecs", "report", "simulate", "cli", "sweep"},
    "system": {"report", "simulate", "cli", "sweep", "validation"},
}


def _modules():
    for f in sorted(PKG.rglob("*.py")):
        rel = f.relative_to(PKG).parts
        yield f, (rel[0][:-3] if len(rel) == 1 else rel[0]), ast.parse(f.read_text(), str(f))


def test_no_layer_imports_a_higher_one():
    bad = []
    for f, top, tree in _modules():
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for m in names:
                parts = m.split(".")
                if parts[0] == "netsim" and len(parts) > 1 and parts[1] in ABOVE.get(top, ()):
                    bad.append(f"{f.name}:{node.lineno} {top} imports {m}")
    assert bad == []


def test_no_function_over_80_lines():
    long = [
        f"{f.name}:{node.lineno} {node.name}"
        for f, _top, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80
    ]
    assert long == []
