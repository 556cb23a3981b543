"""The one seam: ``lgfn_model`` never imports beets (or the plugin), so the model can be used,
trained and tested without a beets installation, and the plugin is its only beets-side user."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import lgfn_model

PACKAGE = Path(lgfn_model.__file__).resolve().parent
FORBIDDEN = ("beets", "beetsplug", "mediafile", "confuse")
"""beets and the libraries that come with it (the model reads audio and tags on its own)."""


def _forbidden(name: str) -> bool:
    return name.split(".")[0] in FORBIDDEN


def test_no_module_of_lgfn_model_names_beets_in_an_import() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [f"{path.relative_to(PACKAGE)}:{node.lineno}: {n}" for n in names]
    assert [line for line in found if _forbidden(line.rsplit(": ", 1)[1])] == []


# Imports every module of the package (those that need an optional extra that is missing are
# left out), then says which beets-side modules got loaded on the way.
IMPORT_ALL = """
import importlib, pkgutil, sys
import lgfn_model
for info in pkgutil.walk_packages(lgfn_model.__path__, "lgfn_model."):
    if info.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(info.name)
    except ImportError:
        pass
print(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:])))
"""


def test_importing_every_module_of_lgfn_model_loads_no_beets() -> None:
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(PACKAGE.parent), *filter(None, [environ.get("PYTHONPATH")])]
    )
    ran = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, *FORBIDDEN],
        capture_output=True,
        text=True,
        timeout=300,
        env=environ,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip().splitlines()[-1] == "[]", ran.stdout
