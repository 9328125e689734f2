"""Simulated providers on loopback, for tests, examples, the demo and the benchmarks.

They are test doubles of the real upstreams, speaking each one's wire format, with fault switches
(5xx, 429 + Retry-After, connection refused, reset, hang before headers, slow body, truncated
JSON, content-policy block, async task that ends failed). Never a fallback in production code.
"""

from ._faults import Fault, FaultState, FaultSwitch
from ._http import Answer, SimServer, SimulatorApp, json_answer
from ._media import is_mp4, is_png, png_bytes, sample_mp4
from ._run import (
    SIMULATOR_KEY,
    RunningSimulators,
    SimulatorSpec,
    default_simulators,
    run_simulators,
)
from .openai_sim import OpenAISimulator

__all__ = [
    "SIMULATOR_KEY",
    "Answer",
    "Fault",
    "FaultState",
    "FaultSwitch",
    "OpenAISimulator",
    "RunningSimulators",
    "SimServer",
    "SimulatorApp",
    "SimulatorSpec",
    "default_simulators",
    "is_mp4",
    "is_png",
    "json_answer",
    "png_bytes",
    "run_simulators",
    "sample_mp4",
]
