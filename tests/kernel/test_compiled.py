"""The compiled presence modules are served only from a build of the current sources."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernel import compiled

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _built() -> bool:
    """Whether a complete build of the current sources is on disk."""
    current = compiled.build_id()
    return compiled.finder_for(compiled.builds_dir() / current, current) is not None


def _fake_build(directory: Path, build: str, modules: tuple[str, ...]) -> None:
    for name in modules:
        path = directory.joinpath(*name.split(".")).with_name(name.split(".")[-1] + SUFFIX)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    (directory / "abc123__mypyc").with_suffix(SUFFIX).write_bytes(b"")
    (directory / "complete").write_text(build + "\n")


def test_a_build_is_served_only_for_the_sources_it_was_made_from(tmp_path: Path) -> None:
    _fake_build(tmp_path, "build-a", compiled.COMPILED)
    finder = compiled.finder_for(tmp_path, "build-a")
    assert finder is not None
    assert set(finder.files) == {*compiled.COMPILED, "abc123__mypyc"}
    assert compiled.finder_for(tmp_path, "build-b") is None  # a source changed since


def test_an_incomplete_build_is_never_served(tmp_path: Path) -> None:
    _fake_build(tmp_path / "one-missing", "build-a", compiled.COMPILED[1:])
    assert compiled.finder_for(tmp_path / "one-missing", "build-a") is None
    _fake_build(tmp_path / "unfinished", "build-a", compiled.COMPILED)
    (tmp_path / "unfinished" / "complete").unlink()  # the copy was cut short
    assert compiled.finder_for(tmp_path / "unfinished", "build-a") is None


def test_any_edit_of_a_compiled_module_changes_the_build_id(tmp_path: Path) -> None:
    for package in ("geofence", "kernel"):
        shutil.copytree(ROOT / package, tmp_path / package)
    before = compiled.build_id(tmp_path)
    assert before == compiled.build_id(ROOT)
    engine = tmp_path / "geofence" / "engine.py"
    engine.write_text(engine.read_text() + "\n# edited\n")
    assert compiled.build_id(tmp_path) != before


def test_this_process_runs_all_or_none_of_the_compiled_modules() -> None:
    files = [importlib.import_module(name).__file__ or "" for name in compiled.COMPILED]
    if compiled.active():
        assert all(f.endswith(SUFFIX) for f in files), files
    else:
        assert all(f.endswith(".py") for f in files), files
    assert compiled.active() == (_built() and not os.environ.get("WALLET_PURE_PYTHON"))


@pytest.mark.parametrize("pure", ["1", ""])
def test_plain_python_on_request(pure: str) -> None:
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import geofence.engine as e, kernel.compiled as c; print(e.__file__)",
        ],
        env={**os.environ, "WALLET_PURE_PYTHON": pure},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if pure:
        assert shown.endswith("engine.py")
    else:
        assert shown.endswith(SUFFIX if _built() else "engine.py")
