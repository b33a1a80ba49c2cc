"""The dependency direction holds: kernel <- issuers, push <- geofence <- wallet_api."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {
    "kernel": set(),
    "issuers": {"kernel"},
    "push": {"kernel"},
    "geofence": {"kernel", "issuers", "push"},
    "wallet_api": {"kernel", "issuers", "push", "geofence"},
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_packages_import_only_downward() -> None:
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in (ROOT / package).rglob("*.py"):
            ours = imported_packages(path) & set(ALLOWED)
            for target in ours - allowed - {package}:
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert wrong == []


def test_only_wallet_api_imports_litestar() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in ALLOWED
        if package != "wallet_api"
        for path in (ROOT / package).rglob("*.py")
        if "litestar" in imported_packages(path)
    ]
    assert offenders == []


def test_the_checker_sees_a_wrong_way_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from wallet_api.app import create_app\nimport geofence.engine\n")
    assert imported_packages(bad) >= {"wallet_api", "geofence"}
