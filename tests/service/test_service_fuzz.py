"""Property-based fuzzing of the OpenAPI schema against a live server: no request, valid or not,
with or without a token, may produce a server error (5xx)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from service_helpers import LiveServer, seed_sweep, start_server

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 12


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("fuzz")
    storage = f"sqlite:///{tmp / 'fuzz.db'}"
    seed_sweep(storage, "toy_chinchilla", "alice")  # the name the schema gives as example
    th, srv = start_server(storage, tmp, run_scheduler=False)
    try:
        yield srv
    finally:
        th.stop()


def test_no_operation_of_the_openapi_schema_gives_a_server_error(fuzz_server: LiveServer) -> None:
    raw = fuzz_server.client().get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    auth = {"Authorization": f"Bearer {fuzz_server.tokens['alice']}"}
    failures: list[str] = []
    n_ops = 0

    def fuzz(op) -> None:  # type: ignore[no-untyped-def]
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy())
        def run(case) -> None:  # type: ignore[no-untyped-def]
            for headers in (auth, None):
                if headers is None and case.path_parameters and "name" in case.path_parameters:
                    case.path_parameters["name"] = "toy_chinchilla"  # reach past the 404
                resp = case.call(base_url=fuzz_server.url, headers=headers, timeout=60)
                if resp.status_code >= 500:
                    failures.append(f"{op.label} -> {resp.status_code}: {case.as_curl_command()}")

        run()

    for result in schema.get_all_operations():
        n_ops += 1
        fuzz(result.ok())
    assert n_ops >= 15
    assert failures == []
