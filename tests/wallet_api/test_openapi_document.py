from __future__ import annotations

import json
from pathlib import Path

from wallet_api.cli import OPENAPI_PATH, openapi_document

ROOT = Path(__file__).resolve().parents[2]


def test_committed_openapi_is_current() -> None:
    committed = (ROOT / OPENAPI_PATH).read_text()
    assert committed == openapi_document(), "openapi/ is stale: run `wallet openapi` and commit it"


def test_a_changed_route_makes_the_committed_document_stale() -> None:
    document = json.loads(openapi_document())
    document["paths"]["/healthz"]["get"]["summary"] = "changed"
    assert json.dumps(document, indent=2, sort_keys=True) + "\n" != openapi_document()


def test_every_operation_is_documented() -> None:
    document = json.loads(openapi_document())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), f"{where} has no summary"
            assert operation.get("operationId"), f"{where} has no operationId"
            assert operation.get("description"), f"{where} has no description"
            if path not in {"/healthz", "/metrics"}:
                errors = [s for s in operation["responses"] if s.startswith(("4", "5"))]
                assert errors, f"{where} documents no error responses"
