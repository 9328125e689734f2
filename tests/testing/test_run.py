"""run_simulators: named simulators on consecutive ports, and the control server that switches
any simulator's fault by name (including REFUSE, which a simulator's own port cannot clear)."""

import socket
import threading

import httpx
import openai
import pytest

from reapi.testing import (
    OpenAISimulator,
    SimulatorSpec,
    default_simulators,
    main_loop,
    run_simulators,
)

AUTH = {"authorization": "Bearer sk-sim"}


@pytest.fixture
def sims():
    handle = run_simulators({"openai": OpenAISimulator(), "openai-backup": OpenAISimulator()})
    yield handle
    handle.stop()


def free_port_block(size: int) -> int:
    """A first port whose next `size` ports are free (good enough on loopback)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + size >= 65535:
            continue
        try:
            for port in range(first, first + size):
                with socket.socket() as taken:
                    taken.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError("no free port block")


def test_bare_apps_get_their_base_path(sims):
    assert set(sims.urls) == {"openai", "openai-backup"}
    assert sims.provider_urls["openai"] == sims.urls["openai"] + "/v1"
    for url in sims.provider_urls.values():
        client = openai.OpenAI(base_url=url, api_key="sk-sim", max_retries=0)
        assert client.images.generate(model="gpt-image-2", prompt="p").data


def test_control_server_switches_faults_by_name(sims):
    control = sims.control_url
    answer = httpx.post(control + "/faults/openai", json={"fault": "error_503", "count": 1})
    assert answer.json()["fault"] == "error_503"
    assert httpx.get(sims.urls["openai"] + "/v1/videos", headers=AUTH).status_code == 503
    assert httpx.get(sims.urls["openai-backup"] + "/v1/videos", headers=AUTH).status_code == 200
    httpx.post(control + "/faults/openai-backup", json={"fault": "task_fails"})
    assert httpx.get(control + "/faults").json()["openai-backup"]["fault"] == "task_fails"
    assert httpx.post(control + "/faults/nope", json={}).status_code == 404


def test_refuse_is_set_and_cleared_through_the_control_server(sims):
    url = sims.urls["openai"] + "/v1/videos"
    httpx.post(sims.control_url + "/faults/openai", json={"fault": "refuse"})
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, headers=AUTH, timeout=1)
    httpx.post(sims.control_url + "/faults/openai", json={"fault": "none"})
    assert httpx.get(url, headers=AUTH).status_code == 200


def test_consecutive_ports_from_base_port():
    base = free_port_block(3)
    handle = run_simulators(
        {"a": SimulatorSpec(OpenAISimulator(), "/v1"), "b": OpenAISimulator()}, base_port=base
    )
    try:
        assert [s.port for s in handle.servers.values()] == [base, base + 1]
        assert handle.control.port == base + 2
    finally:
        handle.stop()


def test_a_taken_port_leaves_nothing_running():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        with pytest.raises(OSError):
            run_simulators({"a": OpenAISimulator(), "b": OpenAISimulator()}, base_port=taken - 1)
    with pytest.raises(httpx.ConnectError):  # "a" was started, then stopped again
        httpx.get(f"http://127.0.0.1:{taken - 1}/__sim__/health", timeout=1)


def test_main_loop_blocks_until_stopped():
    ready = threading.Event()
    handles = []

    def on_ready(handle):
        handles.append(handle)
        ready.set()

    thread = threading.Thread(
        target=lambda: handles.append(main_loop(default_simulators(), on_ready=on_ready))
    )
    thread.start()
    assert ready.wait(10)
    running = handles[0]
    assert httpx.get(running.urls["openai"] + "/__sim__/health").json()["ok"]
    assert thread.is_alive()
    running.stop()
    thread.join(10)
    assert not thread.is_alive() and handles[1] is running


def test_ctrl_c_before_the_wait_stops_the_simulators_as_one_during_it():
    """Ctrl-C can come while `on_ready` still prints the URLs: the command line stops as
    cleanly (exit 0), not with a KeyboardInterrupt."""
    seen = []

    def interrupted(handle):
        seen.append(handle)
        raise KeyboardInterrupt

    stopped = main_loop(default_simulators(), on_ready=interrupted)
    assert stopped is seen[0] and stopped.wait(0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(stopped.urls["openai"] + "/__sim__/health", timeout=1)


def test_wait_times_out_then_returns_once_stopped(sims):
    assert sims.wait(0.05) is False
    threading.Timer(0.1, sims.stop).start()
    assert sims.wait(10) is True
