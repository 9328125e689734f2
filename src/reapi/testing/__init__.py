"""Simulated providers on loopback, for tests, examples, the demo and the benchmarks.

They are test doubles of the real upstreams, speaking each one's wire format, with fault switches
(5xx, 429 + Retry-After, connection refused, reset, hang before headers, slow body, truncated
JSON, content-policy block, quota exhausted, async task that ends failed). Never a fallback in
production code.

    with SimServer(OpenAISimulator()) as sim:        # a background thread, any free port
        client = openai.OpenAI(base_url=sim.base_url + "/v1", api_key="sk-sim")
        sim.faults.set(Fault.RATE_LIMIT, retry_after=3, count=1)
"""

from ._faults import Fault, FaultState, FaultSwitch
from ._http import SimServer, SimulatorApp
from ._jpeg import is_jpeg, jpeg_bytes
from ._media import is_mp4, is_png, is_webp, png_bytes, sample_mp4, webp_bytes
from ._messages import Answer, FormPart, SimRequest, SimResponse, json_answer, parse_multipart
from ._run import (
    SIMULATOR_KEY,
    RunningSimulators,
    SimulatorSpec,
    default_simulators,
    main_loop,
    run_simulators,
)
from .openai_sim import OpenAISimulator

__all__ = [
    "SIMULATOR_KEY",
    "Answer",
    "Fault",
    "FaultState",
    "FaultSwitch",
    "FormPart",
    "OpenAISimulator",
    "RunningSimulators",
    "SimRequest",
    "SimResponse",
    "SimServer",
    "SimulatorApp",
    "SimulatorSpec",
    "default_simulators",
    "is_jpeg",
    "is_mp4",
    "is_png",
    "is_webp",
    "jpeg_bytes",
    "json_answer",
    "main_loop",
    "parse_multipart",
    "png_bytes",
    "run_simulators",
    "sample_mp4",
    "webp_bytes",
]
