"""Run several simulators at once, plus a control server that flips their faults by name."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .._settings import base_url_env
from ._http import SimServer, SimulatorApp, describe_fault, set_fault_from_json
from ._messages import Answer, json_answer

__all__ = [
    "SIMULATED_POLL_INTERVAL",
    "SIMULATOR_KEY",
    "RunningSimulators",
    "SimulatorSpec",
    "default_simulators",
    "main_loop",
    "run_simulators",
]

#: The API key every built-in simulator accepts.
SIMULATOR_KEY = "sk-reapi-sim"


#: Seconds between polls of a simulated task. Simulated tasks finish after a poll or two, so
#: the real APIs' hints (5-15 s, the adapters' defaults) would only make a demo wait.
SIMULATED_POLL_INTERVAL = 0.25


@dataclass(frozen=True, slots=True)
class SimulatorSpec:
    """A simulator app, the path its provider's base URL ends with (e.g. "/v1"), and how often
    its tasks are worth polling (a catalog's `poll_interval` for that provider)."""

    app: SimulatorApp
    path: str = ""
    poll_interval: float = SIMULATED_POLL_INTERVAL


def default_simulators(api_key: str = SIMULATOR_KEY) -> dict[str, SimulatorSpec]:
    """One simulator per catalog provider that has one, keyed by the catalog's provider name."""
    from .ark_sim import ArkSimulator
    from .dashscope_sim import DashScopeSimulator
    from .fal_sim import FalSimulator
    from .gemini_sim import GeminiSimulator
    from .openai_sim import OpenAISimulator
    from .replicate_sim import ReplicateSimulator
    from .topaz_sim import TopazSimulator
    from .vidu_sim import ViduSimulator
    from .xai_sim import XAISimulator

    return {
        "openai": SimulatorSpec(OpenAISimulator(api_key), "/v1"),
        "gemini": SimulatorSpec(GeminiSimulator(api_key), "/v1beta"),
        "byteplus": SimulatorSpec(ArkSimulator(api_key), "/api/v3"),
        "vidu": SimulatorSpec(ViduSimulator(api_key), ""),
        "fal": SimulatorSpec(FalSimulator(api_key), ""),
        "replicate": SimulatorSpec(ReplicateSimulator(api_key), "/v1"),
        "xai": SimulatorSpec(XAISimulator(api_key), "/v1"),
        "dashscope": SimulatorSpec(DashScopeSimulator(api_key), "/api/v1"),
        "topaz": SimulatorSpec(TopazSimulator(api_key), ""),
    }


@dataclass
class RunningSimulators:
    servers: dict[str, SimServer]
    paths: dict[str, str]
    control: SimServer
    api_key: str = SIMULATOR_KEY
    #: Provider name → seconds between polls of its tasks (see `SimulatorSpec`).
    poll_intervals: dict[str, float] = field(default_factory=dict)
    urls: dict[str, str] = field(init=False)
    _stopped: threading.Event = field(init=False, default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.urls = {name: server.base_url for name, server in self.servers.items()}

    @property
    def provider_urls(self) -> dict[str, str]:
        """Base URLs as the adapters expect them (with each API's path prefix)."""
        return {name: self.urls[name] + self.paths[name] for name in self.servers}

    @property
    def gateway_environment(self) -> dict[str, str]:
        """What a gateway (`reapi-server serve`) needs to use every simulator: each provider's
        key as `REAPI_PROVIDER_KEYS__<NAME>` and its URL as `REAPI_<NAME>_BASE_URL`. A provider
        without a key is never called (its models answer "no provider key"), so one key alone
        (`OPENAI_API_KEY`) would leave every other simulator unused."""
        environment = {}
        for name, url in self.provider_urls.items():
            environment[f"REAPI_PROVIDER_KEYS__{name.upper()}"] = self.api_key
            environment[base_url_env(name)] = url
        return environment

    @property
    def control_url(self) -> str:
        return self.control.base_url

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.control.stop()
        self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until `stop()` (True) or the timeout (False). Ctrl-C stops the simulators.

        Sleeps and looks, rather than `Event.wait`: a KeyboardInterrupt can land inside
        `Event.wait` just after it took its condition's lock, and then `stop()`'s `set()`
        waits for that lock forever (the command line hung after Ctrl-C, rarely, under load)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._stopped.is_set():
                left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
                if left <= 0:
                    return False
                time.sleep(left)
        except KeyboardInterrupt:
            self.stop()
        return True


class _Control:
    """`POST /faults/{name}` with `{"fault": "hang", "retry_after": 2, "count": 1}`;
    `GET /faults` for every simulator's current fault."""

    def __init__(self, servers: Mapping[str, SimServer]) -> None:
        self.servers = servers

    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        origin: str,
    ) -> Answer:
        if method == "GET" and path.rstrip("/") == "/faults":
            states = {n: describe_fault(s.faults.effective) for n, s in self.servers.items()}
            return json_answer(200, states)
        name = path.removeprefix("/faults/")
        server = self.servers.get(name)
        if method != "POST" or server is None:
            return json_answer(404, {"error": f"unknown simulator; known: {sorted(self.servers)}"})
        return set_fault_from_json(server.faults, body)


def _as_spec(spec: SimulatorSpec | SimulatorApp) -> SimulatorSpec:
    if isinstance(spec, SimulatorSpec):
        return spec
    return SimulatorSpec(spec, str(getattr(spec, "base_path", "")))


def run_simulators(
    specs: Mapping[str, SimulatorSpec | SimulatorApp],
    *,
    host: str = "127.0.0.1",
    base_port: int = 0,
    api_key: str = SIMULATOR_KEY,
) -> RunningSimulators:
    """Start each simulator on consecutive ports from `base_port` (0: any free ports), then
    the control server (`POST /faults/{name}`) on the next one.

    `specs` maps names to a `SimulatorSpec` or a bare app (its path: the app's `base_path`).
    `api_key` is only reported on the handle: each app holds the key it checks.
    """
    resolved = {name: _as_spec(spec) for name, spec in specs.items()}
    servers: dict[str, SimServer] = {}
    try:
        for index, (name, spec) in enumerate(resolved.items()):
            port = base_port + index if base_port else 0
            servers[name] = SimServer(spec.app, host, port).start()
        control_port = base_port + len(resolved) if base_port else 0
        control = SimServer(_Control(servers), host, control_port).start()
    except BaseException:  # a port was taken: leave nothing running
        for server in servers.values():
            server.stop()
        raise
    return RunningSimulators(
        servers,
        {n: s.path for n, s in resolved.items()},
        control,
        api_key,
        {n: s.poll_interval for n, s in resolved.items()},
    )


def main_loop(
    specs: Mapping[str, SimulatorSpec | SimulatorApp],
    *,
    host: str = "127.0.0.1",
    base_port: int = 0,
    api_key: str = SIMULATOR_KEY,
    on_ready: Callable[[RunningSimulators], None] | None = None,
) -> RunningSimulators:
    """`run_simulators`, then block until Ctrl-C or `stop()`; returns the stopped handle.

    Prints nothing: `on_ready(handle)` runs once everything listens (e.g. to print URLs).
    """
    handle = run_simulators(specs, host=host, base_port=base_port, api_key=api_key)
    try:
        if on_ready is not None:
            on_ready(handle)
        handle.wait()
    except KeyboardInterrupt:  # Ctrl-C before the wait began (printing the URLs): a stop too
        pass
    finally:
        handle.stop()
    return handle
