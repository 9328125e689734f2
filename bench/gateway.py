"""Gateway throughput: reapi-server versus LiteLLM's proxy, both in front of the same simulator.

    python bench/gateway.py [--duration 10] [--latencies 0,50] [--concurrency 1,32] [--no-litellm]
    python bench/gateway.py --key-limits [--rounds 10] [--duration 5] ...

Three targets get the same load from `wrk` (Debian; `apt-get install -y wrk`): the OpenAI simulator
called directly, reapi-server (1 worker, SQLite in a temp data dir, an account with credits and an
API key: auth, credit holds, settlement and usage rows all on) and LiteLLM's proxy (1 worker,
`litellm[proxy]` in its own venv, bench/.litellm-venv, created here if missing). Both gateways
route `gpt-image-2` (images) and `sora-2` (video create) to the simulator. The simulator runs in its
own process; each run is made once with 0 ms and once with 50 ms of upstream latency.

With taskset available and 2+ cores, the gateway is pinned to core 0 and wrk + the simulator to
core 1 (docs/benchmarks.md, "Running LiteLLM's proxy offline"). Reported: requests/s, p50/p99,
the latency each gateway adds over direct calls at the same load, non-2xx answers, and each
gateway's peak RSS (VmHWM).
If LiteLLM cannot be installed or started, reapi's half still runs and the reason is printed.

`--key-limits` measures what a key's limits cost instead: one reapi-server, two keys of one
account, one without limits and one with every limit set (a spend limit per month, a model
allowlist, an expiry, requests per minute, concurrent videos; none ever reached), loaded at the
same time by two wrk processes for `--rounds` rounds, so that both see the same machine (on a
shared, loaded one, runs one after the other differ by more than what is measured), and again
with two keys without limits (the control: the method's own noise). Reported: each key's median
req/s and the median and range of the per-round ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LITELLM_VENV = BENCH / ".litellm-venv"
SIM_KEY = "sk-bench-sim"
LITELLM_KEY = "sk-bench-litellm-master-0123456789"
EMAIL = "bench@reapi.local"
#: Every limit a key can have, none of them reached during a run.
KEY_LIMITS = [
    *("--spend-limit", str(10**14), "--period", "monthly"),
    *("--models", "gpt-image-2,sora-2", "--expires", "2099-01-01"),
    *("--rpm", str(10**9), "--max-videos", str(10**9)),
]

ENDPOINTS = {
    "images": (
        "/images/generations",
        {"model": "gpt-image-2", "prompt": "a lighthouse at dusk", "size": "1024x1024"},
    ),
    "video create": (
        "/videos",
        {"model": "sora-2", "prompt": "a lighthouse at dusk", "size": "1280x720", "seconds": "4"},
    ),
}

# The packaged catalog has no OpenAI video model: overlay one routed to the simulator's sora-2.
CATALOG_OVERLAY = {
    "models": [
        {
            "id": "sora-2",
            "kind": "video",
            "name": "Sora 2 (bench)",
            "owned_by": "openai",
            "capabilities": {
                "sizes": {
                    "1280x720": {"aspect_ratio": "16:9", "resolution": "720p"},
                    "720x1280": {"aspect_ratio": "9:16", "resolution": "720p"},
                },
                "seconds": [4, 8, 12],
                "input_reference": True,
            },
            "price": {"unit": "second", "credits": 10},
            "routes": [{"provider": "openai", "upstream_model": "sora-2"}],
        }
    ]
}


# -- the simulator process --------------------------------------------------------------------


def simulator_main() -> None:
    from reapi.testing import OpenAISimulator, SimulatorSpec, run_simulators

    handle = run_simulators({"openai": SimulatorSpec(OpenAISimulator(SIM_KEY), "/v1")})
    print(
        json.dumps({"url": handle.provider_urls["openai"], "control": handle.control_url}),
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: (handle.stop(), sys.exit(0)))
    handle.wait()


# -- helpers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(core: int | None, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if core is not None else argv


def http(
    method: str, url: str, body: dict | None = None, key: str | None = None, timeout: float = 30.0
) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("content-type", "application/json")
    if key:
        request.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def wait_ready(url: str, process: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}; log tail:\n{tail(log)}")
        try:
            if http("GET", url, timeout=2)[0] < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"not ready after {timeout:.0f} s; log tail:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return pids


def peak_rss_mib(pid: int) -> float:
    """The largest VmHWM in the process tree (uvicorn with 1 worker serves in one process)."""
    peak = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        if match:
            peak = max(peak, int(match.group(1)))
    return peak / 1024


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- wrk -------------------------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    p50: float  # ms
    p99: float  # ms
    requests: int
    bad: int  # non-2xx answers + socket errors


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unparsed wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


# With BENCH_SHOW_ERRORS=1, wrk prints the first three non-2xx answers (slightly slower runs).
_SHOW_ERRORS = """shown = 0
function response(status, headers, body)
  if status >= 300 and shown < 3 then
    shown = shown + 1
    io.write("BAD " .. status .. " " .. body:gsub("\\n", " ") .. "\\n")
  end
end
"""


def wrk(
    url: str,
    body: dict,
    key: str,
    concurrency: int,
    duration: float,
    workdir: Path,
    core: int | None,
    script_name: str = "post.lua",
) -> Result:
    script = workdir / script_name
    payload = json.dumps(body).replace("\\", "\\\\").replace("'", "\\'")
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{payload}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        + (_SHOW_ERRORS if os.environ.get("BENCH_SHOW_ERRORS") else "")
    )
    argv = pinned(
        core,
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{duration:g}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            str(script),
            url,
        ],
    )
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    for line in re.findall(r"^BAD .*$", out, re.M):
        print("   ", line[:300], flush=True)
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if len(percentiles) < 2:
        raise RuntimeError(f"wrk printed no latency percentiles:\n{out[-1500:]}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:
        bad += sum(int(n) for n in errors.groups())
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Result(rps, _ms(percentiles["50"]), _ms(percentiles["99"]), requests, bad)


# -- the targets -----------------------------------------------------------------------------


class Target:
    name = ""
    key = ""
    base = ""  # ends with /v1
    process: subprocess.Popen | None = None
    log: Path | None = None

    def stop(self) -> None:
        stop(self.process)


class Direct(Target):
    name = "direct"
    key = SIM_KEY

    def __init__(self, sim_url: str) -> None:
        self.base = sim_url


class ReapiServer(Target):
    name = "reapi"

    def __init__(self, sim_url: str, workdir: Path, core: int | None) -> None:
        data = workdir / "reapi-data"
        overlay = workdir / "catalog.json"
        overlay.write_text(json.dumps(CATALOG_OVERLAY))
        port = free_port()
        env = {
            **os.environ,
            "REAPI_DATA_DIR": str(data),
            "REAPI_CATALOG_PATH": str(overlay),
            "REAPI_PROVIDER_BASE_URLS": json.dumps({"openai": sim_url}),
            "REAPI_PROVIDER_KEYS": json.dumps({"openai": SIM_KEY}),
            "REAPI_LOG_LEVEL": "WARNING",
            "REAPI_METRICS_LISTEN": "off",
            # Limits that would otherwise answer 429 under a benchmark's load.
            "REAPI_REQUESTS_PER_MINUTE": str(10**9),
            "REAPI_MAX_CONCURRENT_VIDEOS": str(10**9),
            # Video jobs are created, not polled to completion: polling is off the create path.
            "REAPI_POLL_INTERVAL": "3600",
        }
        cli = str(Path(sys.executable).with_name("reapi-server"))
        subprocess.run([cli, "migrate"], env=env, check=True, capture_output=True)
        subprocess.run(
            [cli, "accounts", "create", "--email", EMAIL, "--credits", str(10**12)],
            env=env,
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            [cli, "keys", "create", "--email", EMAIL, "--name", "bench"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        self.key = re.search(r"REAPI_API_KEY=(\S+)", out).group(1)  # type: ignore[union-attr]
        out = subprocess.run(
            [cli, "keys", "create", "--email", EMAIL, "--name", "limited", *KEY_LIMITS],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        #: A key of the same account with every limit set (`--key-limits`).
        self.limited_key = re.search(r"REAPI_API_KEY=(\S+)", out).group(1)  # type: ignore[union-attr]
        out = subprocess.run(
            [cli, "keys", "create", "--email", EMAIL, "--name", "control"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        #: A second key without limits: the control of `--key-limits` (the method's own noise).
        self.control_key = re.search(r"REAPI_API_KEY=(\S+)", out).group(1)  # type: ignore[union-attr]
        self.log = workdir / "reapi.log"
        self.process = subprocess.Popen(
            pinned(core, [cli, "serve", "--port", str(port), "--workers", "1"]),
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{port}/v1"
        wait_ready(f"http://127.0.0.1:{port}/healthz", self.process, 60, self.log)


def ensure_litellm() -> Path:
    """bench/.litellm-venv/bin/litellm, installing `litellm[proxy]` there if needed."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    print(f"installing litellm[proxy] into {LITELLM_VENV} ...", flush=True)
    subprocess.run(["python3", "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = subprocess.run(
        [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0 or not exe.exists():
        raise RuntimeError(
            "pip install 'litellm[proxy]' failed: "
            + (pip.stderr.strip().splitlines() or ["(no output)"])[-1]
        )
    return exe


class LiteLLMProxy(Target):
    name = "litellm"
    key = LITELLM_KEY

    def __init__(self, sim_url: str, workdir: Path, core: int | None) -> None:
        exe = ensure_litellm()
        version = subprocess.run(
            [
                str(LITELLM_VENV / "bin" / "python"),
                "-c",
                "import importlib.metadata as m; print(m.version('litellm'))",
            ],
            capture_output=True,
            text=True,
        ).stdout.strip()
        self.version = version or "?"
        config = workdir / "litellm.yaml"
        models = []
        for name in ("gpt-image-2", "sora-2"):
            models += [
                f"  - model_name: {name}",
                "    litellm_params:",
                f"      model: openai/{name}",
                f"      api_base: {sim_url}",
                f"      api_key: {SIM_KEY}",
            ]
        config.write_text(
            "\n".join(
                [
                    "model_list:",
                    *models,
                    "general_settings:",
                    "  master_key: os.environ/LITELLM_MASTER_KEY",
                    "litellm_settings:",
                    "  set_verbose: false",
                    "",
                ]
            )
        )
        port = free_port()
        env = {
            **os.environ,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_MASTER_KEY": LITELLM_KEY,
            "LITELLM_LOG": "ERROR",
        }
        env.pop("DATABASE_URL", None)
        self.log = workdir / "litellm.log"
        self.process = subprocess.Popen(
            pinned(
                core,
                [
                    str(exe),
                    "--config",
                    str(config),
                    "--port",
                    str(port),
                    "--host",
                    "127.0.0.1",
                    "--num_workers",
                    "1",
                ],
            ),
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        self.base = f"http://127.0.0.1:{port}/v1"
        wait_ready(f"http://127.0.0.1:{port}/health/liveliness", self.process, 180, self.log)


# -- the run -----------------------------------------------------------------------------------


def replace_key(target: Target, key: str) -> Target:
    """The same target, called with another key."""
    other = Target()
    other.base, other.key = target.base, key
    return other


def check(target: Target, endpoint: str) -> str | None:
    """One request (also the warm-up): None if it succeeds, else why not."""
    path, body = ENDPOINTS[endpoint]
    status, text = http("POST", target.base + path, body, target.key, timeout=60)
    return None if status < 300 else f"HTTP {status}: {text[:300]}"


def set_latency(control: str, ms: float) -> None:
    status, text = http("POST", f"{control}/faults/openai", {"latency": ms / 1000})
    if status != 200:
        raise RuntimeError(f"could not set simulator latency: {status} {text}")


def measure(
    target: Target,
    endpoints: list[str],
    latencies: list[float],
    levels: list[int],
    args: argparse.Namespace,
    control: str,
    workdir: Path,
    core: int | None,
    results: dict,
) -> None:
    for latency in latencies:
        set_latency(control, latency)
        for endpoint in endpoints:
            path, body = ENDPOINTS[endpoint]
            # warm up (LiteLLM's first request takes ~0.5 s)
            wrk(target.base + path, body, target.key, 4, 2, workdir, core)
            for level in levels:
                result = wrk(
                    target.base + path, body, target.key, level, args.duration, workdir, core
                )
                results[(target.name, latency, endpoint, level)] = result
                if result.bad and target.log is not None:
                    print(
                        f"  {result.bad} bad answers; {target.name} log tail:\n"
                        + tail(target.log, 5),
                        flush=True,
                    )
                print(
                    f"  {target.name:8} {latency:>3.0f} ms upstream  {endpoint:12} c={level:<3} "
                    f"{result.rps:8.1f} req/s  p50 {result.p50:7.2f} ms  p99 {result.p99:7.2f} "
                    f"ms  bad {result.bad}/{result.requests}",
                    flush=True,
                )


def report(
    results: dict,
    latencies: list[float],
    levels: list[int],
    notes: dict,
    rss: dict[str, float],
    skipped: dict[str, str],
) -> str:
    have_litellm = any(k[0] == "litellm" for k in results)
    head = [
        "upstream",
        "request",
        "conc.",
        "direct req/s",
        "direct p50/p99 (ms)",
        "reapi req/s",
        "reapi added p50/p99 (ms)",
    ]
    if have_litellm:
        head += ["LiteLLM req/s", "LiteLLM added p50/p99 (ms)", "reapi ÷ LiteLLM"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def added(r: Result | None, d: Result) -> str:
        if r is None:
            return "—"
        flag = f" ({r.bad} non-2xx)" if r.bad else ""
        return f"{r.p50 - d.p50:+.2f} / {r.p99 - d.p99:+.2f}{flag}"

    for latency in latencies:
        for endpoint in ENDPOINTS:
            for level in levels:
                d = results.get(("direct", latency, endpoint, level))
                if d is None:
                    continue
                r = results.get(("reapi", latency, endpoint, level))
                row = [
                    f"{latency:g} ms",
                    endpoint,
                    str(level),
                    f"{d.rps:,.0f}",
                    f"{d.p50:.2f} / {d.p99:.2f}",
                    f"{r.rps:,.0f}" if r else "—",
                    added(r, d),
                ]
                if have_litellm:
                    lt = results.get(("litellm", latency, endpoint, level))
                    row += [
                        f"{lt.rps:,.0f}" if lt else "—",
                        added(lt, d),
                        f"{r.rps / lt.rps:.1f}x" if r and lt and lt.rps else "—",
                    ]
                lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for name, mib in rss.items():
        lines.append(f"- peak RSS of {name}: {mib:.0f} MiB (VmHWM)")
    for name, why in skipped.items():
        lines.append(f"- {name} skipped: {why}")
    for name, note in notes.items():
        lines.append(f"- {name}: {note}")
    return "\n".join(lines)


def measure_key_limits(
    reapi: ReapiServer,
    endpoints: list[str],
    latencies: list[float],
    levels: list[int],
    args: argparse.Namespace,
    control: str,
    workdir: Path,
    core: int | None,
) -> str:
    """The same load, at the same time, with a key without limits and one with every limit:
    two wrk processes side by side against one server, each with `level` connections, for
    `args.rounds` rounds (which one starts first alternates). Measured together, both see the
    same machine: on a shared, loaded one, runs one after the other differ by more than what is
    measured. Each case is measured again with two keys without limits (the control: what the
    method reads when there is no difference). A table of the medians and per-round ratios."""
    pairs = {
        "limits": (reapi.key, reapi.limited_key),
        "control": (reapi.key, reapi.control_key),
    }
    head = ["upstream", "request", "conc. (each)", "pair", "rounds", "A req/s", "B req/s"]
    head += ["B ÷ A (median)", "range of the rounds", "non-2xx"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    names = {"limits": "A no limits, B limits", "control": "A, B both without limits"}

    def run(key: str, name: str, url: str, body: dict, level: int, duration: float) -> Result:
        return wrk(url, body, key, level, duration, workdir, core, f"{name}.lua")

    with ThreadPoolExecutor(2) as pool:
        for latency in latencies:
            set_latency(control, latency)
            for endpoint in endpoints:
                path, body = ENDPOINTS[endpoint]
                url = reapi.base + path
                for key in (reapi.key, reapi.limited_key, reapi.control_key):  # warm up
                    run(key, "warm", url, body, 4, 2)
                for level in levels:
                    for pair, (a, b) in pairs.items():
                        rps: dict[str, list[float]] = {"a": [], "b": []}
                        bad = 0
                        for round_ in range(args.rounds):
                            order = [("a", a), ("b", b)]
                            if round_ % 2:
                                order.reverse()
                            runs = {
                                side: pool.submit(run, key, side, url, body, level, args.duration)
                                for side, key in order
                            }
                            for side, future in runs.items():
                                result = future.result()
                                rps[side].append(result.rps)
                                bad += result.bad
                            print(
                                f"  {latency:>3.0f} ms upstream  {endpoint:12} c={level:<3} "
                                f"{pair:8} round {round_ + 1}: A {rps['a'][-1]:8.1f} req/s, "
                                f"B {rps['b'][-1]:8.1f} req/s",
                                flush=True,
                            )
                        ratios = sorted(y / x for x, y in zip(rps["a"], rps["b"], strict=True) if x)
                        row = [
                            f"{latency:g} ms",
                            endpoint,
                            str(level),
                            names[pair],
                            str(args.rounds),
                            f"{statistics.median(rps['a']):,.0f}",
                            f"{statistics.median(rps['b']):,.0f}",
                            f"{statistics.median(ratios):.3f}",
                            f"{ratios[0]:.3f} to {ratios[-1]:.3f}",
                            str(bad),
                        ]
                        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--latencies", default="0,50", help="upstream latencies in ms")
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument(
        "--key-limits",
        action="store_true",
        help="compare a key with every limit set to one without (reapi only, interleaved)",
    )
    parser.add_argument("--rounds", type=int, default=10, help="rounds of --key-limits")
    parser.add_argument("--simulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simulator:
        simulator_main()
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    latencies = [float(x) for x in args.latencies.split(",")]
    levels = [int(x) for x in args.concurrency.split(",")]
    pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    gw_core, load_core = (0, 1) if pin else (None, None)
    print(
        f"cores: {os.cpu_count()}; pinning: "
        + ("gateway on core 0, wrk + simulator on core 1" if pin else "off"),
        flush=True,
    )

    results: dict = {}
    notes: dict[str, str] = {}
    rss: dict[str, float] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="reapi-bench-") as tmp:
        workdir = Path(tmp)
        sim = subprocess.Popen(
            pinned(load_core, [sys.executable, __file__, "--simulator"]),
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            assert sim.stdout is not None
            info = json.loads(sim.stdout.readline())
            sim_url, control = info["url"], info["control"]
            if args.key_limits:
                reapi = ReapiServer(sim_url, workdir, gw_core)
                try:
                    for endpoint in ENDPOINTS:
                        for key in (reapi.key, reapi.limited_key, reapi.control_key):
                            problem = check(replace_key(reapi, key), endpoint)
                            if problem:
                                sys.exit(f"reapi refused {endpoint}: {problem}")
                    print("reapi-server, a key without limits and one with every limit:")
                    table = measure_key_limits(
                        reapi,
                        list(ENDPOINTS),
                        latencies,
                        levels,
                        args,
                        control,
                        workdir,
                        load_core,
                    )
                finally:
                    reapi.stop()
                print()
                print(table)
                return
            direct = Direct(sim_url)
            for endpoint in ENDPOINTS:
                problem = check(direct, endpoint)
                if problem:
                    sys.exit(f"the simulator refused {endpoint}: {problem}")
            print("direct to the simulator:", flush=True)
            measure(
                direct,
                list(ENDPOINTS),
                latencies,
                levels,
                args,
                control,
                workdir,
                load_core,
                results,
            )

            reapi = ReapiServer(sim_url, workdir, gw_core)
            try:
                endpoints = []
                for endpoint in ENDPOINTS:
                    problem = check(reapi, endpoint)
                    if problem:
                        notes[f"reapi {endpoint}"] = f"not measured: {problem}"
                    else:
                        endpoints.append(endpoint)
                print("reapi-server:", flush=True)
                measure(
                    reapi, endpoints, latencies, levels, args, control, workdir, load_core, results
                )
                assert reapi.process is not None
                rss["reapi-server"] = peak_rss_mib(reapi.process.pid)
            finally:
                reapi.stop()

            if args.no_litellm:
                skipped["LiteLLM"] = "--no-litellm given"
            else:
                litellm = None
                try:
                    litellm = LiteLLMProxy(sim_url, workdir, gw_core)
                    endpoints = []
                    for endpoint in ENDPOINTS:
                        problem = check(litellm, endpoint)
                        if problem:
                            notes[f"LiteLLM {endpoint}"] = f"not measured: {problem}"
                        else:
                            endpoints.append(endpoint)
                    print(f"LiteLLM proxy {litellm.version}:", flush=True)
                    measure(
                        litellm,
                        endpoints,
                        latencies,
                        levels,
                        args,
                        control,
                        workdir,
                        load_core,
                        results,
                    )
                    assert litellm.process is not None
                    rss[f"LiteLLM proxy {litellm.version}"] = peak_rss_mib(litellm.process.pid)
                except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
                    skipped["LiteLLM"] = str(error)
                    print(f"LiteLLM skipped: {error}", flush=True)
                finally:
                    if litellm is not None:
                        litellm.stop()
        finally:
            stop(sim)
    print()
    print(report(results, latencies, levels, notes, rss, skipped))


if __name__ == "__main__":
    main()
