"""Failover in action: the primary host hangs, then refuses; the backup serves every request.

Two OpenAI-format simulators stand in for a maker's API and a second host.
"""

import time

from reapi import ReAPI, RouterConfig
from reapi.catalog import Catalog, default_catalog
from reapi.testing import Fault, OpenAISimulator, SimServer


def two_host_catalog() -> Catalog:
    base = default_catalog().models["gpt-image-2"].model_dump(mode="json")
    base["routes"] = [
        {"provider": "primary", "upstream_model": "gpt-image-2"},
        {"provider": "backup", "upstream_model": "gpt-image-2"},
    ]
    host = {"adapter": "openai", "base_url": "http://unused.invalid/v1"}
    return Catalog.model_validate(
        {"providers": {"primary": host, "backup": host}, "models": {"gpt-image-2": base}}
    )


primary_sim, backup_sim = OpenAISimulator("sk-sim"), OpenAISimulator("sk-sim")
with (
    SimServer(primary_sim) as primary,
    SimServer(backup_sim) as backup,
    ReAPI(
        catalog=two_host_catalog(),
        provider_keys={"primary": "sk-sim", "backup": "sk-sim"},
        provider_base_urls={"primary": primary.base_url + "/v1", "backup": backup.base_url + "/v1"},
        router=RouterConfig(first_byte_timeout=0.5),
    ) as client,
):
    for fault in (Fault.NONE, Fault.HANG, Fault.HANG, Fault.REFUSE):
        primary.faults.set(fault)
        started = time.perf_counter()
        result = client.images.generate(model="gpt-image-2", prompt="a red fox")
        took = (time.perf_counter() - started) * 1000
        print(
            f"primary {fault.value:<8} -> served by {result.reapi.provider:<7} "
            f"attempts={result.reapi.attempts} in {took:6.1f} ms"
        )
