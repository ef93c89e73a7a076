"""daq/gnss is laid out by stage: no import cycles, each subpackage imports what its README allows.

Every import counts, the ones inside functions and under ``TYPE_CHECKING`` too: a cycle
hidden behind a lazy import is still two modules that cannot be understood apart. The
allowed imports are read from the ``**May import:**`` line of each README.md (backquoted
module or package names; a package allows its submodules), so the rule a newcomer reads is
the rule the suite checks.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .conftest import REPO

DAQ = REPO / "daq"
GNSS = DAQ / "gnss"
STAGES = ("streams", "rinex", "solver", "sessions", "replay", "cli")


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    out.add(sub)
                elif target in known:
                    out.add(target)
    out.discard(name)
    return out


def graph(root: Path) -> dict[str, set[str]]:
    files = [p for p in root.rglob("*.py") if "__pycache__" not in p.parts]
    known = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, known) for p in files}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def allowed(readme: Path) -> list[str]:
    """The backquoted names of the ``**May import:**`` item (it may wrap over lines)."""
    text = readme.read_text()
    assert "**May import:**" in text, f"{readme} has no **May import:** line"
    item = text.split("**May import:**", 1)[1]
    item = re.split(r"\n\s*(?:- |\||\n)", item, maxsplit=1)[0]
    return re.findall(r"`([\w.]+)`", item)


def test_no_import_cycles_between_gnss_modules() -> None:
    assert cycles(graph(GNSS)) == []


def test_the_cycle_check_sees_a_cycle(tmp_path: Path) -> None:
    """The checker itself: a lazy import back is a cycle."""
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]


@pytest.mark.parametrize("stage", ["", *STAGES])
def test_each_stage_imports_only_what_its_readme_allows(stage: str) -> None:
    folder = GNSS / stage if stage else GNSS
    readme = folder / "README.md"
    assert readme.exists(), f"{folder} needs a README.md"
    own = module_name(folder / "__init__.py")
    ok = [own, *allowed(readme)] if stage else allowed(readme)   # root: exact names only
    files = sorted(folder.glob("*.py"))
    known = {module_name(p) for p in DAQ.rglob("*.py") if "__pycache__" not in p.parts}
    bad = []
    for path in files:
        for target in sorted(imports_of(path, known)):
            if target == "daq.gnss":
                continue   # the package itself (its __init__ holds only a docstring)
            if not any(target == a or (stage and target.startswith(a + ".")) for a in ok):
                bad.append(f"{module_name(path)} → {target}")
    assert bad == [], f"imports not allowed by {readme.relative_to(REPO)}: {bad}"


def test_package_root_keeps_only_the_shared_model_and_configuration() -> None:
    """The stages live in subpackages; the root holds what every stage shares."""
    assert sorted(p.name for p in GNSS.glob("*.py")) == ["__init__.py", "gnss_config.py",
                                                          "obs.py"]
    assert sorted(p.name for p in GNSS.iterdir() if (p / "__init__.py").exists()) == \
        sorted(STAGES)


def test_the_gnss_commands_load_numpy_and_the_solver_only_when_they_run() -> None:
    """``daq gnss … --help`` (and every command that parses its arguments) registers the
    GNSS commands without numpy, Numba or the solver: they load inside the command."""
    import subprocess
    import sys

    probe = ("import sys, argparse\n"
             "from daq.gnss.cli import decode, replay, sessions, solve\n"
             "p = argparse.ArgumentParser().add_subparsers()\n"
             "for m in (decode, replay, sessions, solve):\n"
             "    m.register(p)\n"
             "print(sorted({'.'.join(m.split('.')[:3]) for m in sys.modules"
             " if m.split('.')[0] in ('numpy', 'numba')"
             " or m.startswith(('daq.gnss.solver', 'daq.gnss.sessions'))}))\n")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       timeout=300, check=True)
    assert r.stdout.strip() == "[]", r.stdout
