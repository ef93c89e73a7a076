"""The explicit package list in pyproject.toml matches the tree (a wheel misses nothing)."""

from __future__ import annotations

import tomllib

from .conftest import REPO


def test_every_package_folder_is_listed_for_the_wheel() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(meta["packages"])
    found = set()
    for top, name in (("daq", "daq"), ("drivers", "daq_drivers")):
        for init in (REPO / top).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / top)
            if "__pycache__" in rel.parts:
                continue
            found.add(".".join((name, *rel.parts)))
    assert found == listed, f"missing: {found - listed}, stale: {listed - found}"


def test_every_driver_folder_has_an_entry_point_sample_and_readme() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    eps = meta["project"]["entry-points"]["daq.drivers"]
    folders = {p.parent.name for p in (REPO / "drivers").glob("*/__init__.py")}
    assert folders == {target.split(":")[0].split(".")[1] for target in eps.values()}
    for folder in folders:
        assert (REPO / "drivers" / folder / "sample.yaml").exists(), folder
        assert (REPO / "drivers" / folder / "README.md").exists(), folder
