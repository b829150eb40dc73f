"""The `mesoslite` command's launcher (`scripts/mesoslite`, issue 15): where it looks for the
package when it runs without `site`. A real run through an installed copy is
`tests/e2e/test_fastrun_installed.py`."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "mesoslite"


@pytest.fixture(scope="module")
def launcher() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("mesoslite_launcher", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)  # its `main` runs only as __main__
    return module


def test_an_installed_package_is_found_in_site_packages(launcher, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "mesoslite").mkdir()
    (tmp_path / "__editable__.mesoslite-0.1.0.pth").write_text("/elsewhere/src\n")
    assert launcher.package_paths(str(tmp_path)) == [str(tmp_path)]


def test_an_editable_install_is_found_through_its_pth_path_lines(launcher, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "__editable__.mesoslite-0.1.0.pth").write_text("# a comment\n/work/src\n\n")
    (tmp_path / "other.pth").write_text("/not/ours\n")
    assert launcher.package_paths(str(tmp_path)) == ["/work/src"]


@pytest.mark.parametrize("pth", ["import __editable___mesoslite_finder; x()\n", None])
def test_where_only_site_can_tell_nothing_is_guessed(launcher, tmp_path: Path, pth) -> None:  # type: ignore[no-untyped-def]
    # A finder-style editable install (an import line), or no install in this site dir: the
    # launcher runs `site` instead.
    if pth:
        (tmp_path / "__editable__.mesoslite-0.1.0.pth").write_text(pth)
    assert launcher.package_paths(str(tmp_path)) == []
    assert launcher.package_paths(str(tmp_path / "missing")) == []


def test_site_packages_is_the_venv_s_of_this_interpreter(launcher) -> None:  # type: ignore[no-untyped-def]
    # The test runs in a venv (or not); either way the launcher's answer is one of the
    # directories `site` put on the path.
    import site

    assert launcher.site_packages() in site.getsitepackages()
    assert launcher.package_paths(launcher.site_packages()) or sys.prefix == sys.base_prefix
