"""Run a primary and a backup OpenAI simulator in their own process (away from the GIL of the
process being measured) and print their URLs as one JSON line."""

import json
import sys
import time

from reapi.testing import OpenAISimulator, SimulatorSpec, run_simulators

handle = run_simulators(
    {
        "primary": SimulatorSpec(OpenAISimulator("sk-sim"), "/v1"),
        "backup": SimulatorSpec(OpenAISimulator("sk-sim"), "/v1"),
    },
    base_port=int(sys.argv[1]) if len(sys.argv) > 1 else 0,
)
print(json.dumps({"urls": handle.provider_urls, "control": handle.control_url}), flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    handle.stop()
