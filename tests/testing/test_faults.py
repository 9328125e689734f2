"""FaultSwitch on its own: counts, latency, validation, app-level faults handed to the app."""

import threading

import pytest

from reapi.testing import Fault, FaultState, FaultSwitch


def test_a_counted_fault_runs_out_and_keeps_its_latency():
    switch = FaultSwitch()
    changes = []
    switch.on_change(changes.append)
    switch.set(Fault.ERROR_500, count=2, latency=0.5)
    assert [switch.take().fault for _ in range(3)] == [Fault.ERROR_500] * 2 + [Fault.NONE]
    assert switch.state == FaultState(latency=0.5)
    assert [c.fault for c in changes] == [Fault.ERROR_500, Fault.NONE]  # set, then expiry


def test_an_uncounted_fault_stays_until_cleared():
    switch = FaultSwitch()
    switch.set("hang")
    assert all(switch.take().fault is Fault.HANG for _ in range(5))
    switch.clear()
    assert switch.take() == FaultState()


@pytest.mark.parametrize(
    "kwargs", [{"count": 0}, {"retry_after": -1}, {"latency": -0.1}, {"fault": "melt"}]
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        FaultSwitch().set(**{"fault": Fault.ERROR_500, **kwargs})


def test_app_level_faults_are_handed_to_the_app_switch():
    app = FaultSwitch()
    server = FaultSwitch(app)
    server.set(Fault.TASK_FAILS, count=1, latency=0.2)
    assert app.state.fault is Fault.TASK_FAILS and app.state.count == 1
    assert server.state == FaultState(latency=0.2)
    assert server.effective.fault is Fault.TASK_FAILS and server.effective.latency == 0.2
    server.set(Fault.HANG)  # one fault at a time per simulator
    assert app.state.fault is Fault.NONE and server.effective.fault is Fault.HANG


def test_counting_is_thread_safe():
    switch = FaultSwitch()
    switch.set(Fault.ERROR_503, count=500)
    seen = []

    def worker():
        seen.extend(switch.take().fault for _ in range(100))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen.count(Fault.ERROR_503) == 500 and seen.count(Fault.NONE) == 300
