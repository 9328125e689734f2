"""Ctrl-C during a hedged request on the blocking client: the attempts left running (threads
cannot be cancelled) give their routes back to the router, and never hold up the program's
exit; a losing hedge does not either."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.sdk.test_hedge_policy import slow_catalog

from reapi import ReAPI, RouterConfig
from reapi.testing import Fault

#: Where `tests` is, for the child's imports.
ROOT = str(Path(__file__).resolve().parents[2])


def client(sims) -> ReAPI:
    primary, backup = sims
    return ReAPI(
        catalog=slow_catalog(),
        provider_keys={"primary": "sk-sim", "backup": "sk-sim"},
        provider_base_urls={"primary": primary.base_url + "/v1", "backup": backup.base_url + "/v1"},
        router=RouterConfig(first_byte_timeout=30.0, hedge_after=0.05),
        max_retries=0,
    )


def ctrl_c_in(seconds: float) -> None:
    """SIGINT to this (the main) thread, as a terminal's Ctrl-C does. With Python's own
    handler: a job started in the background (CI's, `nohup ... &`) ignores SIGINT, and a
    process inherits that, so the signal would never arrive as a KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main = threading.main_thread().ident
    assert main is not None
    threading.Timer(seconds, signal.pthread_kill, (main, signal.SIGINT)).start()


@pytest.fixture
def sigint_handler():
    """The process's SIGINT handler put back after the test (`ctrl_c_in` sets Python's)."""
    before = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_during_a_hedge_gives_back_the_half_open_probe(sims, sigint_handler):
    primary, backup = sims
    with client(sims) as reapi:
        first = reapi.router.candidates(slow_catalog().models["gpt-image-2"].routes)
        primary_route = next(first)
        # The primary failed lately: its next request is the half-open probe.
        reapi.router.breakers.record_failure(
            primary_route.key, time.monotonic(), open_for=0.01, threshold=1
        )
        time.sleep(0.02)
        primary.faults.set(Fault.HANG)
        backup.faults.set(Fault.HANG)
        ctrl_c_in(0.5)
        with pytest.raises(KeyboardInterrupt):
            reapi.images.generate(model="gpt-image-2", prompt="p")
        primary.faults.clear()
        backup.faults.clear()
        # Before: the interrupted probe was never given back, so the primary was skipped by
        # every later request (the backup served it).
        served = reapi.images.generate(model="gpt-image-2", prompt="p")
        assert served.reapi.provider == "primary"


SCRIPT = """
import sys
from tests.sdk.test_ctrl_c_hedge import client, ctrl_c_in
class Sims:
    def __init__(self, url):
        self.base_url = url
reapi = client((Sims(sys.argv[1]), Sims(sys.argv[2])))
if sys.argv[3] == "interrupt":
    ctrl_c_in(0.3)
served = reapi.images.generate(model="gpt-image-2", prompt="p")
print(served.reapi.provider, flush=True)
"""


@pytest.mark.parametrize("end", ["return", "interrupt"])
def test_an_abandoned_attempt_never_holds_up_the_exit(sims, end):
    """The primary hangs (30 s to its deadline): the backup wins the hedge and the program
    ends at once; or both hang and Ctrl-C ends it at once. Before: its exit waited for the
    hung attempts' threads."""
    primary, backup = sims
    primary.faults.set(Fault.HANG)
    if end == "interrupt":  # both hang: Ctrl-C comes once both attempts run
        backup.faults.set(Fault.HANG)
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, primary.base_url, backup.base_url, end],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])},
        check=False,
    )
    elapsed = time.monotonic() - started
    if end == "return":
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == ["backup"]
    else:
        assert "KeyboardInterrupt" in run.stderr and run.returncode != 0
    assert elapsed < 12, f"the exit waited {elapsed:.1f} s on an abandoned attempt"
