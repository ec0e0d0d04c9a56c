"""Property-based run against /openapi.json: no 5xx, and every answer matches the document.

Each operation of the document gets its own test and a bounded number of generated cases
(valid and invalid inputs), sent with an operator key to a real `herald api` process.
"""

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from app.api.main import create_app
from app.settings import Settings
from tests.e2e.conftest import RunningApi
from tests.support import OPERATOR_KEY

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CASES_PER_OPERATION = 25

SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(_env_file=None, operator_key=OPERATOR_KEY)).openapi()
)
OPERATIONS = {
    result.ok().label: result.ok()
    for result in SCHEMA.get_all_operations()
    if isinstance(result, Ok)
}


def test_served_document_is_the_one_under_test(api_process: RunningApi) -> None:
    served = httpx.get(f"{api_process.url}/openapi.json").json()
    assert sorted(served["paths"]) == sorted(SCHEMA.raw_schema["paths"])


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_operation_honours_the_document(label: str, api_process: RunningApi) -> None:
    operation = OPERATIONS[label]
    strategy: st.SearchStrategy[Case[Any]] = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(
        max_examples=CASES_PER_OPERATION,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case: Case[Any]) -> None:
        case.call_and_validate(
            base_url=api_process.url,
            headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
            checks=CHECKS,
        )

    run()
