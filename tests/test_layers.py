"""Imports run one way: no module of ``dislab`` imports one of a higher layer, and no import circle, counting the
imports inside functions too (they are the ones that creep upward)."""

from __future__ import annotations

import ast

from conftest import ROOT

SRC = ROOT / "src"
# lowest first; a module belongs to the layer of its longest matching prefix; within a layer any direction
LAYERS = [
    ("dislab", "dislab.atomic", "dislab.lock", "dislab.conf"),        # tools every layer may use
    ("dislab.data", "dislab.data.download", "dislab.nets", "dislab.objectives"),  # the ground floor
    ("dislab.validate",),                                         # one rule per knob
    ("dislab.models", "dislab.pack.engine"),
    ("dislab.metrics",),
    ("dislab.viz",),                                              # pure pictures of metrics' arrays
    ("dislab.evaluate", "dislab.load", "dislab.pictures", "dislab.rundir"),
    ("dislab.callbacks", "dislab.trackers", "dislab.console"),
    ("dislab.train", "dislab.rescore", "dislab.cli", "dislab.preview", "dislab.pack"),
    ("dislab.sweep",),
    ("dislab.report",),
]


def layer(module: str) -> int:
    best = max(((len(p), i) for i, prefixes in enumerate(LAYERS) for p in prefixes
                if module == p or module.startswith(p + ".")), default=None)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[1]


def graph() -> dict[str, set[str]]:
    """module -> the dislab modules it imports (anywhere in its file)."""
    modules = {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (SRC / "dislab").rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found |= {n for n in names if n in modules and n != name}
        edges[name] = found
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_runs_upward_and_none_goes_round():
    edges = graph()
    up = sorted(f"{a} -> {b}" for a, bs in edges.items() for b in bs if layer(b) > layer(a))
    assert not up, "imports from a lower layer to a higher one:\n" + "\n".join(up)
    assert not circles(edges), circles(edges)


def test_the_checks_catch_an_upward_import_and_a_circle():
    assert layer("dislab.data.toy") < layer("dislab.models.vae") < layer("dislab.train") < layer("dislab.report")
    edges = {"dislab.cli": {"dislab.validate"}, "dislab.validate": {"dislab.cli"}, "dislab.atomic": set()}
    assert circles(edges) == [["dislab.cli", "dislab.validate"]]
    assert circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
