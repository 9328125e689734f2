"""`reapi simulate` prints what a gateway needs to use every simulator it runs: each provider's
key and base URL under the names the gateway reads. With only `OPENAI_API_KEY` printed, a
gateway pointed at the simulators answered "no provider key" for every other provider."""

from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from reapi.catalog import default_catalog
from reapi.cli import app
from reapi.testing import SIMULATOR_KEY, default_simulators
from reapi_server.config import Settings, unknown_variables
from reapi_server.runtime import build_runtime

HEADER = "A gateway (reapi-server serve) on the simulators needs, in its environment:"


def printed_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Run `reapi simulate` on free ports until it prints, then stop it as Ctrl-C does."""

    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("reapi.cli.time", SimpleNamespace(sleep=interrupted))
    result = CliRunner().invoke(app, ["simulate", "--port", "0"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    block = lines[lines.index(HEADER) + 1 :]
    return dict(line.strip().split("=", 1) for line in block if line.startswith("  "))


async def test_a_gateway_with_the_printed_environment_uses_every_simulator(
    monkeypatch: pytest.MonkeyPatch, tmp_path
):
    environment = printed_environment(monkeypatch)
    assert unknown_variables(environment) == []
    for provider in default_catalog().providers.values():  # no key from the shell may count
        for variable in provider.api_key_env:
            monkeypatch.delenv(variable, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    runtime = build_runtime(Settings(data_dir=tmp_path), secret=b"s" * 32)
    try:
        connections = runtime.core.connections
        assert set(connections) == set(default_simulators())
        for name, connection in connections.items():
            assert connection.api_key.reveal() == SIMULATOR_KEY
            base_url = environment[f"REAPI_{name.upper()}_BASE_URL"]
            assert connection.base_url == base_url
            assert base_url.startswith("http://127.0.0.1:")
    finally:
        await runtime.aclose()
