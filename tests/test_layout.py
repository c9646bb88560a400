"""The package's shape: stages import only earlier stages, modules stay small, and reading a
stored study never loads TensorFlow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sweep"
# The pipeline, in order; the modules at the package's root come first (any stage may use
# them), then the public API of ``sweep/__init__.py`` and the CLI, which sit on top.
STAGES = ["errors", "defaults", "_lazy", "records", "study", "data", "models", "training", "trial",
          "store", "run", "launch", "report", "__init__", "commands", "cli"]
MAX_LINES = 320
MAX_FUNCTION_LINES = 60  # of code and comments: a docstring says what it needs to


def _stage(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _imports(path: Path) -> set[str]:
    """Every ``sweep.*`` module a file imports, at any depth (top level or in a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "sweep":
            found |= {f"sweep.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name == "sweep" or name.startswith("sweep.")}


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_stage_imports_only_earlier_stages(path):
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    if own == "__init__":
        return  # the public API: lazy functions over every stage
    for name in _imports(path):
        other = _stage(name)
        assert other in STAGES, f"{name}: not a stage"
        assert STAGES.index(other) <= STAGES.index(own), (
            f"sweep/{path.relative_to(PACKAGE)} ({own}) imports {name} ({other}), a later stage")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def _long_functions(tree: ast.Module) -> list[str]:
    """Functions (at any depth) longer than ``MAX_FUNCTION_LINES`` after their docstring."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0]
            docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                and isinstance(first.value.value, str)
            start = first.end_lineno + 1 if docstring and len(node.body) > 1 else node.lineno
            if node.end_lineno - start + 1 > MAX_FUNCTION_LINES:
                found.append(f"{node.name}: {node.end_lineno - start + 1} lines")
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_functions_stay_short(path):
    # issue 36: a function past a screen (cli._parser 99 lines, run_workers 91) is split
    # along its seams, never packed
    assert _long_functions(ast.parse(path.read_text())) == []


def _unannotated(tree: ast.Module) -> list[str]:
    """Public functions and methods (of public classes) with a parameter or the return type
    not annotated: ``name: param, ->``."""
    found = []

    def visit(body: list, public: bool) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, public and not node.name.startswith("_"))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and public and (
                    not node.name.startswith("_")):
                args = node.args
                bad = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)
                       if a.annotation is None and a.arg not in ("self", "cls")]
                bad += ["->"] if node.returns is None else []
                if bad:
                    found.append(f"{node.name}: {', '.join(bad)}")

    visit(tree.body, True)
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_public_functions_are_annotated(path):
    assert _unannotated(ast.parse(path.read_text())) == []


@pytest.mark.slow
def test_status_export_and_report_import_no_tensorflow(swept, tmp_path):
    # they read a stored study: Optuna, SQLAlchemy, pandas, plotly; never Keras
    _, _, url = swept
    code = (
        "import sys\nfrom sweep.cli import main\n"
        f"for argv in (['status', 'tiny'], ['export', 'tiny', '--out', 'x.csv'],\n"
        f"             ['report', 'tiny', '--out', 'r.html']):\n"
        f"    assert main([*argv, '--storage', {url!r}]) == 0, argv\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'keras_tuner') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "x.csv").is_file() and (tmp_path / "r.html").is_file()


def test_the_parent_of_local_workers_imports_no_tensorflow():
    code = ("import sys; import sweep.cli, sweep.run.local, sweep.run.worker; "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
