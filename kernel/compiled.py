"""The presence hot path, compiled to C with mypyc when this environment has a build of it.

The modules in ``COMPILED`` are ordinary, fully typed Python; mypyc (part of mypy, already
our type checker) turns them into C extensions that run the same code with ~15-20 % fewer
instructions per location request (docs/benchmarks.md).  ``build()`` makes them into
``<venv>/compiled/<id>/``, where ``<id>`` hashes the interpreter, mypy and every compiled
module's source.  Importing ``kernel`` installs a finder that serves those extensions only
while the sources still hash to a build's id: after any edit, the Python source runs until
the next build, never a stale extension, and never a mix (compiled modules call each other
directly in C).  Without a C compiler, or with ``WALLET_PURE_PYTHON=1``, everything runs
as plain Python; the test command runs the presence tests both ways.  ``scripts/bootstrap``
calls ``build()``.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

COMPILED = (
    "geofence.grid",
    "geofence.index",
    "geofence.nearby",
    "geofence.engine",
    "geofence.state",
    "geofence.store",
    "geofence.service",
    "kernel.direct_redis",
    "kernel.lru",
    "kernel.clock",
)
# mypy type-checks what the compiled modules import: the build copies these packages.
_PACKAGES = ("geofence", "kernel", "issuers", "push", "wallet_api")
_ROOT = Path(__file__).resolve().parents[1]
_MARKER = "complete"


def builds_dir() -> Path:
    return Path(sys.prefix) / "compiled"


def _mypy_version() -> str:
    # Read, not imported: importing mypy at every start would cost ~100 ms.
    for entry in sys.path:
        for found in Path(entry or ".").glob("mypy-*.dist-info"):
            return found.name
    return "no-mypy"


def build_id(root: Path = _ROOT, modules: Sequence[str] = COMPILED) -> str:
    """What a build was made from: interpreter, mypy and the modules' sources."""
    digest = hashlib.sha256(f"{sys.version}|{sys.platform}|{_mypy_version()}".encode())
    for name in modules:
        digest.update(name.encode() + b"\0")
        digest.update(root.joinpath(*name.split(".")).with_suffix(".py").read_bytes())
    return digest.hexdigest()[:20]


class _ExtensionFinder(importlib.abc.MetaPathFinder):
    """Serves the modules of one complete build (and mypyc's shared library) from its
    directory; every other import goes on to the usual finders."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        location = self.files.get(fullname)
        if location is None:
            return None
        return importlib.util.spec_from_file_location(fullname, location)


def _extensions(directory: Path) -> dict[str, Path]:
    """Module name -> extension file, for the compiled modules and mypyc's shared library
    (``<hash>__mypyc``) under ``directory``."""
    files: dict[str, Path] = {}
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for found in directory.rglob("*" + suffix):
            relative = found.relative_to(directory)
            name = ".".join((*relative.parts[:-1], relative.name[: -len(suffix)]))
            if name in COMPILED or (len(relative.parts) == 1 and name.endswith("__mypyc")):
                files[name] = found
    return files


def finder_for(directory: Path, expected_id: str) -> _ExtensionFinder | None:
    """The finder of the build in ``directory`` if it is complete and made from the current
    sources (its marker names ``expected_id``) with every module of ``COMPILED``."""
    marker = directory / _MARKER
    if not marker.is_file() or marker.read_text().strip() != expected_id:
        return None
    files = _extensions(directory)
    if not all(name in files for name in COMPILED):
        return None
    return _ExtensionFinder(files)


def install() -> None:
    """Called by ``kernel/__init__.py``, before any compiled module can be imported."""
    if os.environ.get("WALLET_PURE_PYTHON") or active():
        return
    try:
        current = build_id()
    except OSError:  # an installed copy without its sources: nothing to check against
        return
    finder = finder_for(builds_dir() / current, current)
    if finder is not None:
        sys.meta_path.insert(0, finder)


def active() -> bool:
    """Whether this process serves the compiled modules."""
    return any(isinstance(finder, _ExtensionFinder) for finder in sys.meta_path)


def build() -> int:
    """Build the current sources' extensions unless built already.  A failed build (no C
    compiler) is reported and leaves the service on plain Python: exit status 0 either way."""
    current = build_id()
    target = builds_dir() / current
    if finder_for(target, current) is not None:
        print(f"compiled modules: up to date ({current})")
        return 0
    print(f"compiled modules: building {len(COMPILED)} modules with mypyc (~40 s) ...")
    with tempfile.TemporaryDirectory(prefix="wallet-mypyc-") as tmp:
        work = Path(tmp)
        for package in _PACKAGES:
            shutil.copytree(
                _ROOT / package, work / package, ignore=shutil.ignore_patterns("__pycache__")
            )
        sources = [str(Path(*name.split(".")).with_suffix(".py")) for name in COMPILED]
        run = subprocess.run(
            [sys.executable, "-m", "mypyc", *sources], cwd=work, capture_output=True, text=True
        )
        built = _extensions(work)
        if run.returncode != 0 or not all(name in built for name in COMPILED):
            tail = "\n".join((run.stdout + run.stderr).splitlines()[-15:])
            print(f"compiled modules: build failed; running plain Python\n{tail}")
            return 0
        shutil.rmtree(builds_dir(), ignore_errors=True)  # earlier builds: never served again
        for location in built.values():
            destination = target / location.relative_to(work)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(location, destination)
        (target / _MARKER).write_text(current + "\n")
    print(f"compiled modules: built ({current})")
    return 0
