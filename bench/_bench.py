"""What the gateway benchmarks share: child processes, wrk runs, CPU time and memory from /proc."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
IMAGE_BODY = {"model": "gpt-image-2", "prompt": "a lighthouse at dusk", "size": "1024x1024"}
T = TypeVar("T")


def interleaved(
    before: str | None,
    repetitions: int,
    measure: Callable[[str | None], T],
    *,
    echo: bool = False,
) -> dict[str, list[T]]:
    """`measure` of this checkout's `src` ("this", None) and of `before`'s (if given), one after
    the other in each repetition, so that both see the machine as it is at that moment."""
    trees: dict[str, str | None] = {"this": None}
    if before:
        trees["before"] = before
    runs: dict[str, list[T]] = {name: [] for name in trees}
    for _ in range(repetitions):
        for name, src in trees.items():
            runs[name].append(measure(src))
            if echo:
                print(name, runs[name][-1], file=sys.stderr, flush=True)
    return runs


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


def unjournaled_ext4(path: Path) -> str | None:
    """The device's name when `path` is on ext4 without a journal (Linux), else None.

    There each new file's inode costs CPU in proportion to the inodes deleted nearby in the last
    one to six minutes, by any process (ext4 skips them so that a crash cannot mix an old file's
    data into a new one; with a journal it does not check): on a shared machine the output
    file's CPU then swings with what other processes delete (docs/benchmarks.md, "Seventh round:
    the output file")."""
    try:
        device = os.stat(path).st_dev
        name = Path(os.readlink(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}")).name
        journal = Path(f"/sys/fs/ext4/{name}/journal_task").read_text().strip()
    except OSError:  # not Linux, not ext4, or not a block device
        return None
    return name if journal == "<none>" else None


def unjournaled_note(path: Path) -> str | None:
    """A report line saying that `path` is on ext4 without a journal, if it is."""
    device = unjournaled_ext4(path)
    if device is None:
        return None
    return (
        f"{path} is on ext4 without a journal ({device}): each new file's inode costs CPU in "
        "proportion to what was deleted there in the last minutes, by any process; set TMPDIR "
        "to a journaled file system to leave that out"
    )


def tail(path: Path | None, lines: int = 15) -> str:
    if path is None:
        return "(no log)"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(url: str, process: subprocess.Popen, timeout: float, log: Path | None) -> None:
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


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def child_json(argv: list[str], core: int | None = None) -> tuple[subprocess.Popen, dict]:
    """Start a helper process that prints one JSON line once it serves; (process, that line)."""
    process = subprocess.Popen(pinned(core, argv), stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        stop(process)
        raise RuntimeError(f"{argv[1]} did not start")
    return process, json.loads(line)


def upstream_process(core: int | None) -> tuple[subprocess.Popen, str, str]:
    """The lean fake OpenAI upstream (bench/_upstream.py): (process, base URL, control URL)."""
    process, info = child_json([sys.executable, str(BENCH / "_upstream.py")], core)
    return process, info["url"], info["control"]


def set_delay(control: str, latency_ms: float, jitter_ms: float = 0.0) -> None:
    status, text = http("POST", control, {"latency_ms": latency_ms, "jitter_ms": jitter_ms})
    if status != 200:
        raise RuntimeError(f"could not set the upstream's latency: {status} {text}")


# -- /proc -----------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return pids


def cpu_seconds(pid: int, *, tree: bool = True) -> float:
    """User + system CPU time of a process tree (its threads included), in seconds;
    `tree=False`: of that process alone."""
    ticks = 0
    for member in process_tree(pid) if tree else [pid]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


def run_delay_seconds(pid: int) -> float | None:
    """How long the process tree's threads were runnable but not running (waiting in a run
    queue for a core), in seconds since each started; None where the kernel does not keep it
    (/proc/<pid>/task/<tid>/schedstat, CONFIG_SCHED_INFO)."""
    total = 0
    found = False
    for member in process_tree(pid):
        for task in Path(f"/proc/{member}/task").glob("*"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += int((task / "schedstat").read_text().split()[1])
                found = True
    return total / 1e9 if found else None


def _status_kib(pid: int, field: str) -> int:
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            match = re.search(rf"{field}:\s+(\d+) kB", Path(f"/proc/{member}/status").read_text())
            if match:
                total += int(match.group(1))
    return total


def rss_mib(pid: int) -> float:
    """Resident memory of a process tree now (VmRSS summed), MiB."""
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    """The tree's high-water marks (VmHWM summed), MiB."""
    return _status_kib(pid, "VmHWM") / 1024


# -- wrk -------------------------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    p50: float  # ms
    p99: float  # ms
    requests: int
    bad: int  # non-2xx answers + socket errors
    slowest: float = float("nan")  # ms


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
    script_name: str | None = None,
) -> Result:
    """`script_name`: the Lua script's file, for wrk processes run side by side."""
    script = workdir / (script_name or f"post-{os.getpid()}-{concurrency}.lua")
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
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:
        bad += sum(int(n) for n in errors.groups())
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    if "50" not in percentiles or "99" not in percentiles:  # no answer at all, or unparsed
        print("    wrk's latency lines not found:", out[-600:].replace("\n", " | "), flush=True)
        p50, p99 = (_ms(percentiles[p]) if p in percentiles else float("nan") for p in ("50", "99"))
        return Result(rps, p50, p99, requests, bad)
    slowest = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.M)
    return Result(
        rps,
        _ms(percentiles["50"]),
        _ms(percentiles["99"]),
        requests,
        bad,
        _ms(slowest.group(1)) if slowest else float("nan"),
    )


def counting_env(workdir: Path, upstream: str, source: str | None) -> dict[str, str]:
    """The environment of a one-worker gateway whose work per request is counted
    (`request_instructions`, `request_bytecodes`): SQLite in `workdir`, `upstream` as OpenAI,
    `source` (another checkout's `src`) if given, no rate limit, no metrics listener, and the
    background tasks off: the timers (outboxes, job polls, health probes, sweeps) are not a
    request's work, and under a counter's slowness they would run far more often per request."""
    from _upstream import SIM_KEY

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REAPI_")},
        "REAPI_DATA_DIR": str(workdir / "data"),
        "REAPI_PROVIDER_BASE_URLS": json.dumps({"openai": upstream}),
        "REAPI_PROVIDER_KEYS": json.dumps({"openai": SIM_KEY}),
        "REAPI_LOG_LEVEL": "WARNING",
        "REAPI_METRICS_LISTEN": "off",
        "REAPI_REQUESTS_PER_MINUTE": str(10**9),
        "REAPI_RUN_BACKGROUND_TASKS": "false",
    }
    if source is not None:
        env["PYTHONPATH"] = source
    return env


def provision_gateway(
    env: dict[str, str], email: str, keys: dict[str, list[str]]
) -> dict[str, str]:
    """Migrate a fresh reapi-server data dir, create one account with credits that no run can
    spend, and one API key per entry of `keys` (name -> extra `keys create` options); answers
    each key's secret by name."""
    cli = str(Path(sys.executable).with_name("reapi-server"))
    subprocess.run([cli, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run(
        [cli, "accounts", "create", "--email", email, "--credits", str(10**12)],
        env=env,
        check=True,
        capture_output=True,
    )
    secrets = {}
    for name, options in keys.items():
        out = subprocess.run(
            [cli, "keys", "create", "--email", email, "--name", name, *options],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        secrets[name] = re.search(r"REAPI_API_KEY=(\S+)", out).group(1)  # type: ignore[union-attr]
    return secrets
