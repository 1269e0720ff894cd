"""The integrators import one way: `simulate` → `sde` → `euler` → `realize`, never back."""

from __future__ import annotations

import ast
from pathlib import Path

import oscsim

ROOT = Path(oscsim.__file__).parent
# module → the oscsim modules it must not import (directly or through its own imports)
NEVER = {
    "oscsim.sde": {"oscsim.simulate"},
    "oscsim.euler": {"oscsim.simulate", "oscsim.sde", "oscsim.nonideal"},
    "oscsim.realize": {"oscsim.simulate", "oscsim.sde", "oscsim.euler", "oscsim.nonideal"},
    "oscsim.nonideal": {"oscsim.simulate", "oscsim.sde", "oscsim.euler"},
    "oscsim.fixedpoint": {"oscsim.simulate", "oscsim.sde", "oscsim.euler", "oscsim.nonideal"},
    # the coupler's function is data: every integrator imports it, it imports none of them
    "oscsim.harmonics": {"oscsim.params", "oscsim.coupling", "oscsim.realize", "oscsim.euler", "oscsim.sde",
                         "oscsim.simulate"},
}


def _module_imports() -> dict[str, set[str]]:
    """Each oscsim module's run-time imports of oscsim modules (not under TYPE_CHECKING)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found, tree = set(), ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                node.body = []  # imports for annotations only
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("oscsim"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("oscsim")}
        out[name] = found
    return out


def test_no_module_imports_its_caller_back() -> None:
    imports = _module_imports()

    def reach(name: str) -> set[str]:
        seen, todo = set(), [name]
        while todo:
            for dep in imports.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    for module, forbidden in NEVER.items():
        for name in [m for m in imports if m == module or m.startswith(module + ".")]:
            assert not reach(name) & forbidden, f"{name} imports {sorted(reach(name) & forbidden)}"
