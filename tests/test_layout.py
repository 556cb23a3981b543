"""The shape of the house: what a wheel installs, and imports that run one way only.

A built wheel holds the runtime packages and the shipped weights, nothing of the harnesses in
``tools/`` or the tests; the project's modules import each other without a cycle; library
packages never import the command line (the seam to beets: tests/plugin/test_model_seam.py).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lgfn_model", "beetsplug/emotion")
LIBRARY_PACKAGES = ("model", "data", "runtime", "text", "pretrained", "training", "evaluation")
MAX_LINES = 450  # "about 400": a module a little over is not worth splitting


def project_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules ``path`` imports, anywhere in it (a lazy import inside a function
    is still an edge: it runs as soon as the function does)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            # Importing a module always runs its packages' __init__ first: not an edge back.
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(path, name, known) for name, path in modules.items()}


def test_no_import_cycle() -> None:
    graph = import_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_library_packages_never_import_the_command_line() -> None:
    # That lgfn_model never imports beets is tests/plugin/test_model_seam.py's job.
    for name, targets in import_graph().items():
        if name.split(".")[:2][-1] in LIBRARY_PACKAGES or name.startswith("lgfn_model.explain"):
            bad = sorted(t for t in targets if t.startswith("lgfn_model.cli"))
            assert not bad, f"{name} imports the command line: {bad}"


def test_modules_are_small_or_say_why() -> None:
    long = []
    for name, path in project_modules().items():
        text = path.read_text()
        lines = text.count("\n")
        head = ast.get_docstring(ast.parse(text)) or ""
        if lines > MAX_LINES and "Why this module is long" not in head:
            long.append(f"{name} ({lines} lines)")
    assert not long, (
        f"over {MAX_LINES} lines without 'Why this module is long' in the docstring: "
        + (", ".join(long))
    )


def test_wheel_holds_only_the_runtime_packages_and_weights(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for part in ("lgfn_model", "beetsplug", "tools", "tests"):
        shutil.copytree(ROOT / part, tree / part, ignore=skip)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, tree / part)
    dist = tmp_path / "dist"
    build = (
        "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", build, str(dist)], cwd=tree, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    wheel = dist / done.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [
            line
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line
        ]
    tops = {name.split("/")[0] for name in names} - {
        n.split("/")[0] for n in names if ".dist-info/" in n
    }
    assert tops == {"lgfn_model", "beetsplug"}, tops
    assert all(
        n.startswith(("lgfn_model/", "beetsplug/emotion/")) for n in names if "dist-info" not in n
    )
    harnesses = (
        "fault_catalogue",
        "plugin_bench",
        "port_musicnn",
        "port_sota_taggers",
        "tf_bundle",
        "lyric_lines",
        "jamendo_reference",
    )
    assert not [n for n in names if any(h in n for h in harnesses)]
    assert not [n for n in names if n.startswith("beetsplug/emotion/bench")]
    jamendo = ("jamendo_musicnn", "jamendo_fcn", "jamendo_crnn")
    models = ("default", "musicnn", "musicnn_msd", "musicnn_student", *jamendo)
    for model in models:
        assert f"lgfn_model/weights/{model}/model.safetensors" in names
        assert f"lgfn_model/weights/{model}/LICENSE.md" in names  # each with its licence
    weight_folders = {n.split("/")[2] for n in names if n.startswith("lgfn_model/weights/")}
    assert weight_folders == set(models), weight_folders
    assert not any(n.endswith((".pt", ".pth", ".pkl", ".ckpt")) for n in names)
    assert not any("scikit-learn" in line for line in requires), requires
