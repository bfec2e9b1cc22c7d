"""The package layout the project keeps: one-way dependencies and small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "overnet"
#: a module past this many lines has more than one job (see the redesign issue)
MAX_MODULE_LINES = 500


def module_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (not inside functions or TYPE_CHECKING blocks)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
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
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CONSTRUCTOR_LINES:
                    long[f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"] = lines
    assert long == {}
