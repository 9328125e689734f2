"""The deployment files (no container runtime here to build or run them) kept in step with what
the tests do run: compose.yaml's gateways run the fleet test's command with the fleet test's
environment variables, the image runs `reapi-server serve` as a non-root user with a health
check, and the systemd unit drains on SIGTERM."""

import re
from pathlib import Path

import uvicorn
import yaml
from tests.server.fleet import GATEWAY_COMMAND, GATEWAY_ENVIRONMENT

from reapi_server.config import Settings
from reapi_server.secret_files import SECRETS_DIR_ENV, file_variables

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _image_environment() -> dict[str, str]:
    """ENV of the image's last stage, REAPI_* only."""
    last_stage = re.split(r"^FROM ", _dockerfile(), flags=re.M)[-1]
    found = {}
    for block in re.findall(r"^ENV (.*?)(?<!\\)$", last_stage, flags=re.M | re.S):
        for name, value in re.findall(r"(\w+)=(\S+)", block):
            if name.startswith("REAPI_"):
                found[name] = value
    return found


def _exec_form(instruction: str) -> list[str]:
    match = re.search(rf"^{instruction} (\[.*\])$", _dockerfile(), flags=re.M)
    assert match, instruction
    return yaml.safe_load(match.group(1))


def test_compose_gateways_run_what_the_fleet_test_runs():
    services = _compose()["services"]
    gateways = [name for name in services if name.startswith("gateway-")]
    assert gateways == ["gateway-1", "gateway-2"]
    for name in gateways:
        service = services[name]
        assert _exec_form("ENTRYPOINT") + service["command"] == GATEWAY_COMMAND
        names = set(service["environment"]) | set(_image_environment())
        assert names == set(GATEWAY_ENVIRONMENT), name
    volumes = [services[name]["volumes"][0].split(":")[0] for name in gateways]
    assert len(set(volumes)) == 2  # a data dir each


def test_compose_settings_are_valid_settings_and_secrets_come_from_files():
    compose = _compose()
    gateway = compose["services"]["gateway-1"]
    known = {f"REAPI_{name.upper()}" for name in Settings.model_fields} | file_variables(Settings)
    for name, value in gateway["environment"].items():
        assert name in known or name == SECRETS_DIR_ENV, name
        if name.endswith("_FILE"):
            secret = value.removeprefix("/run/secrets/")
            assert secret in gateway["secrets"] and secret in compose["secrets"]
    # Every secret setting it uses comes from a file; none is written out in the file.
    assert not any("KEY=" in str(v) or "PASSWORD" in str(v) for v in gateway["environment"])
    caddy = compose["services"]["caddy"]["networks"]["reapi"]["ipv4_address"]
    assert gateway["environment"]["REAPI_FORWARDED_ALLOW_IPS"] == f'["{caddy}"]'
    # Docker's SIGKILL comes after the serving delay and the drain, not during them; the delay
    # lets Caddy's health check (its interval, plus a second) take the gateway out first.
    drain = float(gateway["environment"]["REAPI_DRAIN_SECONDS"])
    delay = float(gateway["environment"]["REAPI_DRAIN_DELAY_SECONDS"])
    assert float(gateway["stop_grace_period"].removesuffix("s")) > delay + drain
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    interval = re.search(r"health_interval (\d+)s", caddyfile)
    assert interval and delay > float(interval[1])
    # Caddy lets an idle connection go before the gateway does (uvicorn's keep-alive timeout,
    # which serving.py leaves at its default): a request is never sent on one closing under it.
    idle = re.search(r"^\s*keepalive (\d+)s$", caddyfile, flags=re.M)
    assert idle and float(idle[1]) < uvicorn.Config(app=None).timeout_keep_alive


def test_the_image():
    dockerfile = _dockerfile()
    assert len(re.findall(r"^FROM ", dockerfile, flags=re.M)) >= 2  # multi-stage
    assert re.search(r"^FROM python:[\d.]+-slim", dockerfile, flags=re.M)
    user = re.findall(r"^USER (\S+)$", dockerfile, flags=re.M)
    assert user and user[-1] not in ("root", "0")
    assert "/healthz" in re.search(r"^HEALTHCHECK .*?\]$", dockerfile, flags=re.M | re.S)[0]
    assert _exec_form("ENTRYPOINT") == ["reapi-server"]
    assert _exec_form("CMD") == ["serve"]
    assert "STOPSIGNAL SIGTERM" in dockerfile


def test_caddy_balances_both_gateways_on_readiness():
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy gateway-1:8000 gateway-2:8000" in caddyfile
    assert "health_uri /readyz" in caddyfile


def test_the_systemd_unit():
    unit = (ROOT / "deploy" / "reapi.service").read_text()
    lines = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0] != "#")
    assert lines["ExecStart"].endswith("reapi-server serve")
    assert lines["KillSignal"] == "SIGTERM"
    assert float(lines["TimeoutStopSec"]) > Settings().drain_seconds
    assert lines["User"] != "root"
    assert lines["Environment"] and "REAPI_SECRETS_DIR=%d" in unit
