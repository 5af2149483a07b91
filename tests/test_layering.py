"""The package's layers point one way: models <- data <- config <- train <- sweep <- laws <- cli.

Every `import scaling...` in scaling/ (function-local ones included: they are read from the syntax tree) may
name only its own layer or a lower one, and no modules import each other, directly or round a cycle.
"""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scaling")
# Lowest first. `core` is what every layer may use: files, fault points, the device mesh, run identity.
LAYERS = [
    ("core", ("scaling.io", "scaling.faults", "scaling.parallel", "scaling.runid", "scaling.errors")),
    ("models", ("scaling.models",)),
    ("data", ("scaling.data",)),
    ("baselines", ("scaling.baselines",)),
    ("config", ("scaling.config",)),
    ("train", ("scaling.train",)),
    ("sweep", ("scaling.sweep",)),
    ("laws", ("scaling.laws", "scaling.results")),
    ("cli", ("scaling.cli", "scaling.sample", "scaling")),
]


def _layer(module: str) -> int:
  best = None
  for i, (_, prefixes) in enumerate(LAYERS):
    for p in prefixes:
      if module == p or module.startswith(p + "."):
        if best is None or len(p) > best[1]:
          best = (i, len(p))
  assert best is not None, f"{module}: in no layer; add it to LAYERS"
  return best[0]


def _module(path: str) -> str:
  rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
  return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def imports() -> dict[str, set[str]]:
  out = {}
  for d, _, files in os.walk(ROOT):
    for f in files:
      if not f.endswith(".py"):
        continue
      path = os.path.join(d, f)
      mod = _module(path)
      pkg = mod if f == "__init__.py" else mod.rsplit(".", 1)[0]
      deps = set()
      for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
          deps |= {a.name for a in node.names if a.name.split(".")[0] == "scaling"}
        elif isinstance(node, ast.ImportFrom):
          base = node.module or ""
          if node.level:
            parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
            base = ".".join(parts + ([node.module] if node.module else []))
          if base.split(".")[0] != "scaling":
            continue
          for a in node.names:  # `from scaling.train import loop` imports the module scaling.train.loop
            sub = f"{base}.{a.name}"
            is_mod = os.path.exists(os.path.join(os.path.dirname(ROOT), *sub.split(".")) + ".py") or \
                os.path.isdir(os.path.join(os.path.dirname(ROOT), *sub.split(".")))
            deps.add(sub if is_mod else base)
      out[mod] = deps - {mod}
  return out


def upward(graph: dict[str, set[str]]) -> list[str]:
  return [f"{m} ({LAYERS[_layer(m)][0]}) imports {d} ({LAYERS[_layer(d)][0]})"
          for m, deps in sorted(graph.items()) for d in sorted(deps) if _layer(d) > _layer(m)]


def test_no_layer_imports_a_higher_one():
  bad = upward(imports_cache)
  assert not bad, "\n".join(bad)


def test_no_import_cycles():
  graph = {m: {d for d in deps if d in imports_cache} for m, deps in imports_cache.items()}
  # Tarjan's strongly connected components: any component of 2+ modules is a cycle.
  index, low, stack, on, comps, n = {}, {}, [], set(), [], [0]

  def visit(v):
    index[v] = low[v] = n[0]
    n[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph[v]:
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      comp = []
      while True:
        w = stack.pop()
        on.discard(w)
        comp.append(w)
        if w == v:
          break
      if len(comp) > 1:
        comps.append(sorted(comp))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  assert not comps, f"import cycles: {comps}"


imports_cache = imports()


def test_the_check_sees_what_it_must():
  """Function-local imports are read (worker imports the loop inside a function), an upward edge is reported, and
  a module in no layer is refused: a regression in any would make the two tests above vacuous."""
  assert "scaling.train.loop" in imports_cache["scaling.sweep.worker"]
  assert upward({"scaling.train.loop": {"scaling.sweep.ladders"}}) == [
      "scaling.train.loop (train) imports scaling.sweep.ladders (sweep)"]
  with pytest.raises(AssertionError):
    _layer("numpy")
