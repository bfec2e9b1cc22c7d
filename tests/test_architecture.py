"""The package layout the project keeps: one-way dependencies and small modules."""

from __future__ import annotations

import ast
import concurrent.futures
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "overnet"
#: a module past this many lines has more than one job (see the redesign issue)
MAX_MODULE_LINES = 500


def parse_module(path: Path) -> ast.Module:
    """``ast.parse`` of one file, in a thread of its own: at the end of a full run CPython
    3.11.7 once raised "SystemError: AST constructor recursion depth mismatch" from
    ast.parse in the main thread, whose recursion bookkeeping the tests before it (torch
    export and compile, Playwright's greenlets) had been through; a new thread starts
    with its own."""
    source = path.read_text(encoding="utf-8")
    with concurrent.futures.ThreadPoolExecutor(1) as parser:
        return parser.submit(ast.parse, source).result()


def module_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (not inside functions or TYPE_CHECKING blocks)."""
    tree = parse_module(path)
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                test = ast.unparse(node.test)
                if "TYPE_CHECKING" not in test:
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, (ast.Try, ast.With)):
                visit(node.body)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return found


def package_modules(name: str) -> list[Path]:
    return sorted((PACKAGE / name).rglob("*.py"))


def importers_of(package: str, target: str) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in package_modules(package)
        for module in sorted(module_level_imports(path))
        if module == f"overnet.{target}" or module.startswith(f"overnet.{target}.")
    ]


@pytest.mark.parametrize(("package", "target"), [("runtime", "export"), ("export", "runtime")])
def test_runtime_and_export_do_not_import_each_other(package, target):
    assert importers_of(package, target) == []


def test_formats_and_cuda_import_neither_side():
    for package in ("formats", "cuda"):
        for target in ("runtime", "export", "weights", "model"):
            assert importers_of(package, target) == [], (package, target)


def test_runtime_never_imports_torch_at_module_level():
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for path in package_modules("runtime")
        if any(m == "torch" or m.startswith("torch.") for m in module_level_imports(path))
    ]
    assert offenders == []


def test_the_import_reader_sees_module_level_imports(tmp_path):
    # the checks above are only as good as this reader: it must see what it should
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\nimport overnet.export.graph\n"
        "if TYPE_CHECKING:\n    import overnet.runtime.base\n"
        "def f():\n    import overnet.runtime.registry\n",
        encoding="utf-8",
    )
    found = module_level_imports(sample)
    assert "overnet.export.graph" in found
    assert not any(m.startswith("overnet.runtime") for m in found)


def test_no_module_over_the_size_limit():
    sizes = {
        str(path.relative_to(PACKAGE.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


#: constructors set up state from what was loaded; loading belongs in a function
MAX_CONSTRUCTOR_LINES = 45


def test_constructors_stay_small():
    long = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(parse_module(path)):
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CONSTRUCTOR_LINES:
                    long[f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"] = lines
    assert long == {}


# --- One-way dependencies: every import under overnet/, at module level and in functions.

#: the layer of each top-level name under overnet/ (a package, or a module of its own):
#: a module imports its own package, the same rank or a lower one, never a higher one
LAYERS = {
    # 1. base (``_version``: the version, which ``overnet/__init__.py`` re-exports)
    **dict.fromkeys(("errors", "units", "config", "_atomic", "cache", "_optional"), 10),
    **dict.fromkeys(("paper", "_version", "cpu", "shared", "trt_logger"), 10),
    # 2. model files, pixels, metrics, CUDA
    **dict.fromkeys(("formats", "imaging", "metrics", "cuda"), 20),
    # 3. the torch model, and its weights (checkpoints, pretrained weights by name)
    **dict.fromkeys(("model", "weights"), 30),
    # 4. the runtime, then export (which may run the runtime to check what it wrote)
    "runtime": 40,
    "export": 41,
    # 5. the job core, then the applications, then the distributed ones (Ray Data, Serve)
    "jobs": 50,
    **dict.fromkeys(("video", "eval", "bench", "train"), 51),
    **dict.fromkeys(("scaleout", "serve"), 52),
    # 6. the command line and the top-level glue (``__init__``: overnet/__init__.py)
    **dict.fromkeys(("cli", "demo", "info", "__init__", "__main__"), 60),
}

#: (importer, imported) pairs allowed to go up, each with why; the test below fails when
#: one of them is gone, so this list only shrinks
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` (both modules of the package) at ``path``:``line``."""

    source: str
    target: str
    path: str
    line: int
    where: str  # "module level", "in a function" or "under TYPE_CHECKING"

    @property
    def lazy(self) -> bool:
        """Not run when ``source`` is imported (still a dependency)."""
        return self.where != "module level"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} -> {self.target} ({self.where})"


def module_files(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the package in folder ``root``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _longest_module(name: str, modules: dict[str, Path]) -> str | None:
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def _file_edges(source: str, path: Path, modules: dict[str, Path], shown: str) -> list[Edge]:
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    edges: dict[tuple[str, int], Edge] = {}

    def add(names: Iterable[str], line: int, where: str) -> None:
        for name in names:
            target = _longest_module(name, modules)
            if target is not None and target != source:
                edges.setdefault((target, line), Edge(source, target, shown, line, where))

    def visit(node: ast.AST, where: str) -> None:
        if isinstance(node, ast.Import):
            add((alias.name for alias in node.names), node.lineno, where)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                parts = package.split(".")
                up = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{up}.{base}" if base else up
            # ``from a import b`` imports the module a.b when there is one, else a
            names = [f"{base}.{alias.name}" for alias in node.names]
            add((name if name in modules else base for name in names), node.lineno, where)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for child in ast.iter_child_nodes(node):
                visit(child, "in a function")
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, "under TYPE_CHECKING" if where == "module level" else where)
            for child in node.orelse:
                visit(child, where)
        else:
            for child in ast.iter_child_nodes(node):
                visit(child, where)

    visit(parse_module(path), "module level")
    return list(edges.values())


def import_edges(root: Path) -> list[Edge]:
    """Every import of one of the package's own modules (absolute or relative), with
    where it is made. Importing ``a.b.c`` also runs ``a`` and ``a.b``: those implied
    imports of a module's own parents are not edges."""
    modules = module_files(root)
    return [
        edge
        for source, path in modules.items()
        for edge in _file_edges(source, path, modules, str(path.relative_to(root.parent)))
    ]


def unit_of(module: str) -> str:
    """The top-level name a module belongs to: ``overnet.runtime.base`` -> ``runtime``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def upward_edges(edges: Iterable[Edge]) -> list[str]:
    """Imports of a higher layer, and of names LAYERS does not place."""
    found = []
    for edge in edges:
        source, target = unit_of(edge.source), unit_of(edge.target)
        if source == target:
            continue
        missing = [name for name in (source, target) if name not in LAYERS]
        if missing:
            found.append(f"{edge}: overnet.{missing[0]} has no layer in LAYERS")
        elif LAYERS[source] < LAYERS[target]:
            found.append(f"{edge}: {source} (layer {LAYERS[source]}) imports {target} "
                         f"(layer {LAYERS[target]})")  # fmt: skip
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one node, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def import_cycles(edges: Iterable[Edge], node: Callable[[str], str]) -> list[str]:
    """Each cycle among the ``node(module)`` of the edges, with the imports that make it."""
    edges = [edge for edge in edges if node(edge.source) != node(edge.target)]
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(node(edge.source), set()).add(node(edge.target))
    report = []
    for component in strongly_connected(graph):
        inside = [
            f"  {edge}"
            for edge in edges
            if node(edge.source) in component and node(edge.target) in component
        ]
        report.append(" <-> ".join(component) + ":\n" + "\n".join(inside))
    return report


def dependency_problems(root: Path, known: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Upward imports (module level or not), cycles among modules (module-level imports)
    and cycles among top-level packages (every import); ``known`` edges left out."""
    known = set(known)
    edges = [edge for edge in import_edges(root) if (edge.source, edge.target) not in known]
    problems = [f"upward: {line}" for line in upward_edges(edges)]
    module_level = [edge for edge in edges if not edge.lazy]
    problems += [f"module cycle: {text}" for text in import_cycles(module_level, str)]
    problems += [f"package cycle: {text}" for text in import_cycles(edges, unit_of)]
    return problems


def test_dependencies_go_one_way():
    problems = dependency_problems(PACKAGE, KNOWN_UPWARD)
    assert not problems, "imports against the layers (see LAYERS):\n" + "\n".join(problems)


def test_known_upward_imports_still_exist():
    edges = {(edge.source, edge.target) for edge in import_edges(PACKAGE)}
    gone = sorted(set(KNOWN_UPWARD) - edges)
    assert not gone, f"no longer imported, remove from KNOWN_UPWARD: {gone}"
    assert all(unit_of(a) != unit_of(b) and LAYERS[unit_of(a)] < LAYERS[unit_of(b)]
               for a, b in KNOWN_UPWARD)  # fmt: skip


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "overnet" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "overnet"


def test_the_dependency_check_sees_upward_imports_and_cycles(tmp_path):
    # the check above is only as good as this: each problem planted here must be found
    clean = {
        "__init__.py": "",
        "errors.py": "",
        "runtime/__init__.py": "from overnet.runtime.base import Session\n",
        "runtime/base.py": "from overnet import errors\nSession = object\n",
        "export/__init__.py": "",
        "export/onnx.py": "def f():\n    from overnet.runtime import Session\n",
    }
    assert dependency_problems(_package(tmp_path / "clean", clean)) == []

    planted = {
        **clean,
        # upward, in a function and relative: base -> cli; runtime -> export
        "errors.py": "def f():\n    from .cli import main\n",
        "cli/__init__.py": "main = None\n",
        "runtime/base.py": "from overnet import errors\nfrom ..export import onnx\n",
        # a module-level cycle inside one package, one side relative
        "model/__init__.py": "",
        "model/a.py": "from overnet.model import b\n",
        "model/b.py": "from . import a\n",
        # a package cycle made only of imports in functions (both layer 3: not upward)
        "weights/__init__.py": "def f():\n    import overnet.model.a\n",
        "model/c.py": "def f():\n    from overnet.weights import g\n",
        # type-only imports do not make a module cycle
        "formats/__init__.py": "",
        "formats/x.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from overnet.formats import y\n",
        "formats/y.py": "from overnet.formats import x\n",
    }
    problems = dependency_problems(_package(tmp_path / "planted", planted))
    text = "\n".join(problems)
    assert "upward: overnet/errors.py:2: overnet.errors -> overnet.cli (in a function)" in text
    assert "overnet.runtime.base -> overnet.export.onnx (module level)" in text
    assert "module cycle: overnet.model.a <-> overnet.model.b" in text
    assert "package cycle: model <-> weights" in text
    assert "overnet/model/c.py:2: overnet.model.c -> overnet.weights (in a function)" in text
    assert "package cycle: export <-> runtime" in text  # the upward edge closes a loop
    assert "overnet.formats" not in text
    assert len(problems) == 5, text
    # a known edge is left out of every check: its upward import and the loop it closes
    known = {("overnet.runtime.base", "overnet.export.onnx")}
    left = dependency_problems(tmp_path / "planted" / "overnet", known)
    assert len(left) == 3 and "export" not in "\n".join(left)
