"""Schemathesis over the gateway's own OpenAPI document, against a live server with a valid key:
no 5xx, no answer outside the documented schemas, statuses and content types.

`positive_data_acceptance` is left out on purpose: the catalog refuses values the schema cannot
express (a size a model does not make, an unknown model id), with a documented 400/404.

Parameters are also sent out of their documented bounds (negative data): every answer is a
documented status, never a 500 (a `before` past 2^63 once was)."""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from tests.server.live import LiveGateway, live_gateway


@pytest.fixture(scope="module")
def live(tmp_path_factory, migrated_template) -> Iterator[LiveGateway]:
    with live_gateway(
        tmp_path_factory.mktemp("schemathesis"),
        migrated_template,
        requests_per_minute=1_000_000,
        max_concurrent_videos=1_000_000,
    ) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def api_schema(live):
    return schemathesis.openapi.from_url(f"{live.base_url}/openapi.json")


def test_every_operation(api_schema, live):
    # Driven by hand rather than schemathesis' pytest plugin, which does not load on pytest 9.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 11
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case) -> None:
            case.call_and_validate(
                base_url=live.base_url,
                headers={"Authorization": f"Bearer {live.key}"},
                excluded_checks=[positive_data_acceptance],
                timeout=10,
            )

        exercise()


def test_every_parameter_out_of_its_bounds_is_refused(api_schema, live):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    with_parameters = [
        op for op in operations if op.definition.raw.get("parameters") and not op.body
    ]
    assert len(with_parameters) >= 8
    for operation in with_parameters:

        @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def refuse(case) -> None:
            # Unknown query parameters are ignored (as OpenAI does), which this check calls an
            # acceptance of invalid data; what it is about is in tests/server/test_caller_input.
            case.call_and_validate(
                base_url=live.base_url,
                headers={"Authorization": f"Bearer {live.key}"},
                excluded_checks=[positive_data_acceptance, negative_data_rejection],
                timeout=10,
            )

        refuse()
