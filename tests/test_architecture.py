"""House rules (docs/architecture.md), checked on the package's source.

1. Imports point one way: core <- tasks, models, data, pruning,
   sparse_training <- config (with each experiment's ``settings`` module,
   its config section) <- experiments <- cli.
2. No import cycles (lazy imports inside functions included).
3. No ``_private`` name is imported from another module.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "jaxticket"

LAYERS = {"core": 0, "tasks": 1, "models": 1, "data": 1, "pruning": 1,
          "sparse_training": 1, "subnetworks": 1, "config": 2,
          "experiments": 3, "cli": 4}


def module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
  return {module_name(p): ast.parse(p.read_text(), str(p))
          for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str, known: set[str]) -> str:
  """The module an imported name lives in (``a.b.c`` -> ``a.b`` when ``c``
  is an attribute, not a module)."""
  while name not in known and "." in name:
    name = name.rsplit(".", 1)[0]
  return name


def imports(tree: ast.Module, known: set[str]):
  """(imported module, imported names, line) of every jaxticket import."""
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        if alias.name.startswith("jaxticket"):
          yield resolve(alias.name, known), [], node.lineno
    elif isinstance(node, ast.ImportFrom) and node.module and \
        node.module.startswith("jaxticket"):
      for alias in node.names:
        full = f"{node.module}.{alias.name}"
        if full in known:  # a submodule
          yield full, [], node.lineno
        else:
          yield resolve(node.module, known), [alias.name], node.lineno


def layer(module: str) -> int | None:
  parts = module.split(".")
  if parts[1:2] == ["experiments"] and parts[-1] == "settings":
    return LAYERS["config"]  # an experiment's config section: schema
  return LAYERS.get(parts[1]) if len(parts) > 1 else None


def package(module: str) -> str:
  return module.split(".")[1] if "." in module else ""


@pytest.fixture(scope="module")
def graph():
  mods = modules()
  known = set(mods)
  return {m: list(imports(tree, known)) for m, tree in mods.items()}, mods


def test_layers_exist_as_described():
  for name in LAYERS:
    assert (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def test_imports_point_one_way(graph):
  edges, _ = graph
  bad = []
  for src, deps in edges.items():
    for dst, _, line in deps:
      a, b = layer(src), layer(dst)
      if a is None or b is None or (package(src) == package(dst)
                                     and a >= b):
        continue
      if b > a or (a == b == 1):
        bad.append(f"{src}:{line} imports {dst}")
  assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


def test_no_import_cycles(graph):
  edges, _ = graph
  adj = {m: {d for d, _, _ in deps if d != m} for m, deps in edges.items()}
  state: dict[str, int] = {}
  stack: list[str] = []

  def visit(m: str) -> list[str] | None:
    state[m] = 1
    stack.append(m)
    for d in sorted(adj.get(m, ())):
      if state.get(d) == 1:
        return stack[stack.index(d):] + [d]
      if d not in state:
        cycle = visit(d)
        if cycle:
          return cycle
    stack.pop()
    state[m] = 2
    return None

  for m in sorted(adj):
    if m not in state:
      cycle = visit(m)
      assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_private_names_across_modules(graph):
  edges, mods = graph
  bad = []
  for src, deps in edges.items():
    for dst, names, line in deps:
      bad += [f"{src}:{line} imports {dst}.{n}" for n in names
              if n.startswith("_") and dst != src]
    # module._private through an imported module alias
    aliases = {}
    for node in ast.walk(mods[src]):
      if isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
          full = (f"{node.module}.{alias.name}" if isinstance(
              node, ast.ImportFrom) else alias.name)
          if full in mods and full != src:
            aliases[alias.asname or alias.name.split(".")[-1]] = full
    for node in ast.walk(mods[src]):
      if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
          and not node.attr.startswith("__")
          and isinstance(node.value, ast.Name) and node.value.id in aliases):
        bad.append(f"{src}:{node.lineno} uses "
                   f"{aliases[node.value.id]}.{node.attr}")
  assert not bad, "private names used across modules:\n" + "\n".join(bad)


def test_the_rules_catch_violations(tmp_path):
  """The checks above do fire: a synthetic module with each violation."""
  tree = ast.parse("from jaxticket.experiments import sweep\n"
                   "from jaxticket.core.masks import _secret\n")
  known = {"jaxticket.experiments.sweep", "jaxticket.core.masks"}
  found = list(imports(tree, known))
  assert ("jaxticket.experiments.sweep", [], 1) in found
  assert ("jaxticket.core.masks", ["_secret"], 2) in found
  assert layer("jaxticket.core.step") < layer("jaxticket.experiments.sweep")
  assert layer("jaxticket.experiments.imp.settings") == layer("jaxticket.config")
