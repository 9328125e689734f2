"""Gateway throughput, latency, CPU and memory: reapi-server against LiteLLM's proxy and a lean
aiohttp pass-through, all in front of one fake OpenAI upstream, in one run.

    python bench/gateway.py                      # the whole table (about 10 min per repetition)
    python bench/gateway.py --repetitions 3 --duration 10 --litellm-venv /path/to/venv
    python bench/gateway.py --targets direct,reapi --upstreams 0 --concurrency 32   # a slice
    python bench/gateway.py --before /tmp/reapi-before/src   # also an earlier version's code

The upstream (bench/_upstream.py, aiohttp) answers `gpt-image-2` with a real 4.2 KB PNG as
`b64_json`, instantly, after 50 ms, or after 50 ± 25 ms (uniform). Targets, each given the same
`wrk` load (Debian's wrk, one thread):

- `direct`: the upstream itself (the ceiling at each latency);
- `lean`: bench/_passthrough.py, an aiohttp proxy that checks one key and forwards (the floor of
  a Python gateway's cost);
- `lean-burn` (with `--lean-burn MS`): the same proxy spending MS of CPU per request on its
  event loop (half before the upstream call, half after): what reapi's CPU per request alone
  costs a gateway at each latency, whatever the code spends it on;
- `reapi`: `reapi-server serve`, 1 worker, SQLite in a fresh data dir, everything on (auth, rate
  limit, credit hold and settlement, usage row, output stored on local disk, access log at
  WARNING, metrics);
- `reapi-h1`, `reapi-aiohttp`: the same as `reapi` with `upstream_client` set to `h1` or
  `aiohttp` (the two upstream transports, side by side in one run);
- `reapi-before` (with `--before SRC`): the same as `reapi`, running another checkout's `src`
  (say `git archive <commit> src | tar -x -C /tmp/reapi-before`) in this venv: before and after
  a change, in one run;
- `reapi-pg`: the same on PostgreSQL (Debian's, started here, fsync on, `synchronous_commit=off`
  like SQLite's `synchronous=NORMAL`: a crash may lose the last commits, never corrupt);
  with `--before`, also `reapi-pg-before` (the earlier code, on a database of its own there);
- `reapi-w2`: the SQLite gateway with `--workers 2`, not pinned (both cores); it brings
  `reapi-unpinned`, the one-worker gateway not pinned either, so that one and two workers are
  also compared in the same topology (both share both cores with wrk and the upstream);
- `reapi-w2-before` (with `--before`): the same with the earlier code;
- `reapi-pg-w2`: `--workers 2` on PostgreSQL, not pinned;
- `litellm`: LiteLLM's proxy, 1 worker, no database (it then checks only the master key and
  writes no spend rows), in its own venv (`--litellm-venv`, made if missing).

With `--disk-load`, another process writes big files to the gateways' file system through every
measured run (bench/_disk_load.py: `dd ... conv=fdatasync` in a loop, pinned with the load), and
a probe asks each reapi target's `/healthz` every 10 ms: the table "Event-loop stalls" gives its
slowest and 99th-percentile answer and wrk's slowest (`--loop-probe`: the probe alone, to
compare with a quiet disk); the py-spy run then has the busy disk too, profiles `reapi-before`
as well, and says for how long each one's event-loop thread was in each bucket.

With taskset and 2+ cores, the single-process gateways are pinned to core 0 and wrk, the upstream
and PostgreSQL to core 1. Each repetition runs every scenario (upstream by concurrency) once per
target, the targets one after the other (their order rotated each repetition), so ratios are taken
within a repetition, at the same moment; the tables give medians and the range over repetitions.
CPU per request is the gateway's process-tree CPU time over a run divided by its answers (and
the time its threads waited for a core, runnable but not running, from /proc's schedstat: on a
shared machine, at one connection, as much of the added latency as the CPU itself); the
load's (wrk's and the upstream's) is measured alike, and with them what two cores can give two
workers (the `--workers 2` table). Idle
RSS is measured after start-up and one warm-up request; under load, the high-water mark. At the
end, py-spy samples reapi at 32 connections with an instant upstream and the samples are split by
the code they were in (the time split). Exit status 0 even when a target could not run: the report
says why. `--timeline DIR`: reapi and reapi-before keep a per-request timeline (when the head was
parsed, the hold and the settlement committed, the upstream answered, the answer went), read with
`bench/timeline.py DIR/*`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _bench import (
    BENCH,
    CLOCK_TICKS,
    IMAGE_BODY,
    ROOT,
    Result,
    child_json,
    cpu_seconds,
    free_port,
    http,
    peak_rss_mib,
    pinned,
    process_tree,
    provision_gateway,
    rss_mib,
    run_delay_seconds,
    set_delay,
    stop,
    tail,
    unjournaled_note,
    upstream_process,
    wait_ready,
    wrk,
)
from _disk_load import DiskLoad, LoopProbe
from _upstream import SIM_KEY

LITELLM_KEY = "sk-bench-litellm-master-0123456789"
LEAN_KEY = "sk-bench-lean-proxy"
EMAIL = "bench@reapi.local"
PATH = "/images/generations"
ALL_TARGETS = (
    "direct",
    "lean",
    "lean-burn",
    "reapi",
    "reapi-h1",
    "reapi-aiohttp",
    "reapi-before",
    "reapi-pg",
    "reapi-pg-before",
    "reapi-w2",
    "reapi-w2-before",
    "reapi-unpinned",
    "reapi-pg-w2",
    "litellm",
)
LABELS = {
    "direct": "direct",
    "lean": "lean aiohttp",
    "lean-burn": "lean + burn",
    "reapi": "reapi",
    "reapi-h1": "reapi h1",
    "reapi-aiohttp": "reapi aiohttp",
    "reapi-before": "reapi before",
    "reapi-pg": "reapi PostgreSQL",
    "reapi-pg-before": "reapi PostgreSQL before",
    "reapi-w2": "reapi --workers 2",
    "reapi-w2-before": "reapi --workers 2 before",
    "reapi-unpinned": "reapi unpinned",
    "reapi-pg-w2": "reapi PostgreSQL --workers 2",
    "litellm": "LiteLLM",
}


# -- targets ---------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    base: str
    key: str
    process: subprocess.Popen | None = None
    log: Path | None = None
    version: str = ""
    idle_rss: float | None = None
    extra: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.base + PATH

    def stop(self) -> None:
        stop(self.process)
        for process in self.extra:
            stop(process)


def reapi_target(
    name: str,
    upstream: str,
    workdir: Path,
    core: int | None,
    *,
    workers: int = 1,
    database_url: str | None = None,
    source: Path | None = None,
    upstream_client: str | None = None,
    timeline: Path | None = None,
) -> Target:
    """`source`: another checkout's `src` directory, run instead of this one's (same venv);
    `upstream_client`: the setting's value (its default when None); `timeline`: a folder the
    gateway writes its per-request timeline to at exit (`bench/_timeline`)."""
    data = workdir / f"{name}-data"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REAPI_")},
        "REAPI_DATA_DIR": str(data),
        "REAPI_PROVIDER_BASE_URLS": json.dumps({"openai": upstream}),
        "REAPI_PROVIDER_KEYS": json.dumps({"openai": SIM_KEY}),
        "REAPI_LOG_LEVEL": "WARNING",
        "REAPI_METRICS_LISTEN": "off",
        # A limit that would otherwise answer 429 under a benchmark's load.
        "REAPI_REQUESTS_PER_MINUTE": str(10**9),
    }
    if database_url is not None:
        env["REAPI_DATABASE_URL"] = database_url
    paths = [str(BENCH / "_timeline")] if timeline is not None else []
    if source is not None:
        paths.append(str(source))
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    if timeline is not None:
        env["BENCH_TIMELINE_OUT"] = str(timeline / name)
    if upstream_client is not None:
        env["REAPI_UPSTREAM_CLIENT"] = upstream_client
    key = provision_gateway(env, EMAIL, {"bench": []})["bench"]
    cli = str(Path(sys.executable).with_name("reapi-server"))
    log = workdir / f"{name}.log"
    process = subprocess.Popen(
        pinned(core, [cli, "serve", "--port", str(port), "--workers", str(workers)]),
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    target = Target(name, f"http://127.0.0.1:{port}/v1", key, process, log)
    wait_ready(f"http://127.0.0.1:{port}/healthz", process, 90, log)
    return target


def lean_target(upstream: str, core: int | None, burn_ms: float | None = None) -> Target:
    argv = [sys.executable, str(BENCH / "_passthrough.py"), upstream, SIM_KEY, LEAN_KEY]
    if burn_ms is not None:
        argv.append(str(burn_ms))
    process, info = child_json(argv, core)
    return Target("lean" if burn_ms is None else "lean-burn", info["url"], LEAN_KEY, process)


def ensure_litellm(venv: Path) -> Path:
    """<venv>/bin/litellm, installing `litellm[proxy]` there if needed."""
    exe = venv / "bin" / "litellm"
    if exe.exists():
        return exe
    print(f"installing litellm[proxy] into {venv} ...", flush=True)
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0 or not exe.exists():
        raise RuntimeError(
            "pip install 'litellm[proxy]' failed: "
            + (pip.stderr.strip().splitlines() or ["(no output)"])[-1]
        )
    return exe


def litellm_target(upstream: str, workdir: Path, core: int | None, venv: Path) -> Target:
    exe = ensure_litellm(venv)
    version = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()
    config = workdir / "litellm.yaml"
    config.write_text(
        "\n".join(
            [
                "model_list:",
                "  - model_name: gpt-image-2",
                "    litellm_params:",
                "      model: openai/gpt-image-2",
                f"      api_base: {upstream}",
                f"      api_key: {SIM_KEY}",
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
    log = workdir / "litellm.log"
    argv = [str(exe), "--config", str(config), "--port", str(port), "--host", "127.0.0.1"]
    process = subprocess.Popen(
        pinned(core, [*argv, "--num_workers", "1"]),
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    target = Target("litellm", f"http://127.0.0.1:{port}/v1", LITELLM_KEY, process, log, version)
    wait_ready(f"http://127.0.0.1:{port}/health/liveliness", process, 180, log)
    return target


class Postgres:
    """Debian's PostgreSQL in a temp dir, durable (fsync on), pinned with the load tools."""

    def __init__(self, core: int | None, synchronous_commit: bool) -> None:
        sys.path.insert(0, str(ROOT))
        from tests.server.postgres import PostgresServer, pg_bin

        bindir = pg_bin()
        if bindir is None:
            raise RuntimeError("no PostgreSQL binaries: apt-get install -y postgresql")
        self.server = PostgresServer(bindir)
        server = self.server
        options = (
            f"-p {server.port} -k {server.base} -c listen_addresses=127.0.0.1"
            f" -c max_connections=200 -c synchronous_commit={'on' if synchronous_commit else 'off'}"
        )
        run = [*server.as_user]
        subprocess.run(
            [*run, f"{server.bindir}/initdb", "-D", server.data, "-A", "trust", "-U", "reapi"],
            check=True,
            capture_output=True,
        )
        log = os.path.join(server.base, "log")
        pg_ctl = [f"{server.bindir}/pg_ctl", "-D", server.data, "-o", options, "-w", "-l", log]
        subprocess.run(pinned(core, [*run, *pg_ctl, "start"]), check=True, capture_output=True)
        self._made: set[str] = set()

    def database(self, name: str) -> str:
        """The URL of database `name` on this server, made on first use (one per target)."""
        if name not in self._made:
            self.server.execute(f"CREATE DATABASE {name}")
            self._made.add(name)
        return self.server.url(name)

    def pids(self) -> list[int]:
        """The postmaster's (its backends are its children), if it runs."""
        try:
            first = Path(self.server.data, "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return []
        return [int(first)] if first.strip().isdigit() else []

    def stop(self) -> None:
        self.server.stop()


# -- the runs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upstream:
    latency: float
    jitter: float

    @property
    def label(self) -> str:
        if not self.latency:
            return "instant"
        return f"{self.latency:g} ms" + (f" ± {self.jitter:g}" if self.jitter else "")


@dataclass
class Run:
    result: Result
    cpu_ms: float | None  # per answer
    #: wrk's and the upstream's CPU per answer: what the load itself took of the machine.
    load_ms: float | None = None
    #: Every core's busy time per answer (the gateway, the load and whatever else ran).
    machine_ms: float | None = None
    #: Each worker's share of the gateway's CPU (several workers), largest first.
    shares: tuple[float, ...] = ()
    #: The /healthz probe's slowest and 99th-percentile answer (ms), when it ran.
    probe: tuple[float, float] | None = None
    #: How long the gateway's threads waited for a core per answer (ms): runnable, not running.
    waited_ms: float | None = None


def warm(target: Target, workdir: Path, core: int | None) -> str | None:
    status, text = http("POST", target.url, IMAGE_BODY, target.key, timeout=60)
    if status >= 300:
        return f"HTTP {status}: {text[:300]}"
    wrk(target.url, IMAGE_BODY, target.key, 4, 1, workdir, core)
    return None


def _busy_ticks() -> int:
    """All cores' non-idle time since boot, in clock ticks (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # idle, iowait


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    target: Target,
    concurrency: int,
    duration: float,
    workdir: Path,
    core: int | None,
    load_pids: list[int],
    *,
    disk_load: bool = False,
    loop_probe: bool = False,
) -> Run:
    """`load_pids`: the processes (trees) that serve the gateway besides wrk: the upstream, and
    PostgreSQL for its targets. `disk_load`: a busy disk through the run; `loop_probe`: the
    /healthz probe (reapi targets)."""
    with contextlib.ExitStack() as stack:
        if disk_load:
            stack.enter_context(DiskLoad(workdir, core))
        probe = None
        if loop_probe and target.name.startswith("reapi"):
            probe = stack.enter_context(LoopProbe(target.base.removesuffix("/v1")))
        run = _measure(target, concurrency, duration, workdir, core, load_pids)
    if probe is not None:
        run.probe = probe.figures()
    return run


def _measure(
    target: Target,
    concurrency: int,
    duration: float,
    workdir: Path,
    core: int | None,
    load_pids: list[int],
) -> Run:
    pid = target.process.pid if target.process is not None and target.name != "direct" else None
    members = process_tree(pid) if pid else []
    before = {member: cpu_seconds(member, tree=False) for member in members}

    def load_cpu() -> float:
        return sum(cpu_seconds(p) for p in load_pids) + _children_cpu()

    load_before = load_cpu()
    busy_before = _busy_ticks()
    waited_before = run_delay_seconds(pid) if pid else None
    result = wrk(target.url, IMAGE_BODY, target.key, concurrency, duration, workdir, core)
    waited_after = run_delay_seconds(pid) if pid else None
    busy = (_busy_ticks() - busy_before) / CLOCK_TICKS
    load = load_cpu() - load_before
    used = {member: cpu_seconds(member, tree=False) - before[member] for member in members}
    cpu = sum(used.values()) if pid else None
    answered = max(result.requests, 1)
    shares: tuple[float, ...] = ()
    if cpu:
        # The supervisor and multiprocessing's helper use next to nothing: workers only.
        shares = tuple(sorted((u / cpu for u in used.values() if u > 0.05 * cpu), reverse=True))
    return Run(
        result,
        cpu / answered * 1000 if cpu is not None else None,
        # `direct`: the upstream is the target, its CPU is not load on top.
        None if pid is None else load / answered * 1000,
        busy / answered * 1000,
        shares if len(shares) > 1 else (),
        waited_ms=None
        if waited_before is None or waited_after is None
        else (waited_after - waited_before) / answered * 1000,
    )


# -- the time split --------------------------------------------------------------------------

#: (bucket, substrings of a frame's file path); the first frame from the leaf up that matches
#: one decides the sample's bucket. Modules not listed (asyncio, anyio, pydantic, the standard
#: library's helpers) pass the sample on to their caller.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "database and group commit",
        (
            "sqlalchemy/",
            "aiosqlite/",
            "asyncpg/",
            "sqlite3/",
            "reapi_server/group_commit.py",
            "reapi_server/db.py",
            "reapi_server/sqlite_inline.py",
            "reapi_server/lock_order.py",
            "reapi_server/wal_bound.py",
            "reapi_server/writer_turn.py",
            "repository.py",
        ),
    ),
    ("writing the output file", ("reapi_server/mirror/",)),
    ("logging and metrics", ("/logging/", "prometheus_client/", "reapi_server/observability/")),
    ("JSON", ("/json/", "orjson")),
    (
        # py-spy names a file by its path under sys.path: the SDK's are `reapi/...` (its other
        # modules, such as `reapi/_detached.py`, pass the sample on to their caller).
        "upstream call (transport, adapter, router)",
        (
            "aiohttp/",
            "yarl/",
            "multidict/",
            "reapi/_engine.py",
            "reapi/_local.py",
            "reapi/_sse.py",
            "reapi/providers/",
            "reapi/router/",
            "reapi/catalog/",
            "reapi_server/upstream",
        ),
    ),
    # The event loop's own work (uvloop's I/O and callbacks, in C) shows as the frame that runs
    # the loop: uvicorn's, which is not uvicorn's protocol at work.
    ("event loop and other", ("uvicorn/_compat.py", "uvicorn/server.py")),
    ("uvicorn, Starlette, FastAPI", ("uvicorn/", "starlette/", "fastapi/", "httptools/", "h11/")),
    ("reapi's request, credit and usage code", ("reapi_server/",)),
)


def classify(stack: list[str]) -> str:
    for frame in reversed(stack):
        path = frame.rpartition("(")[2]
        for bucket, needles in BUCKETS:
            if any(needle in path for needle in needles):
                return bucket
    return "event loop and other"


def bucket_samples(raw: Path, *, loop_only: bool = False) -> Counter[str]:
    """py-spy's raw (collapsed) samples per bucket; `loop_only`: the event loop's thread's
    (stacks that start in `threading`'s bootstrap are other threads': the output writer's, the
    worker threads')."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if frames and frames[0].startswith("process "):
            frames = frames[1:]
        if frames and frames[0].startswith("thread "):
            frames = frames[1:]
        if loop_only and frames and "(threading.py" in frames[0]:
            continue
        counts[classify(frames)] += int(count)
    return counts


def time_split(raw: Path) -> list[tuple[str, float]]:
    """py-spy's raw (collapsed) samples → share of samples per bucket, largest first."""
    counts = bucket_samples(raw)
    total = sum(counts.values()) or 1
    return [(bucket, n / total) for bucket, n in counts.most_common()]


def profile(
    target: Target, duration: float, workdir: Path, core: int | None, *, disk_load: bool = False
) -> str:
    """`disk_load`: with the busy disk, and what held the event loop's thread, in seconds."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists() or target.process is None:
        return "time split skipped: py-spy not found (pip install py-spy)"
    raw = workdir / f"{target.name}.spy"
    recorder = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(target.process.pid),
            "--duration",
            f"{duration:g}",
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    with DiskLoad(workdir, core) if disk_load else contextlib.nullcontext():
        time.sleep(1)
        wrk(target.url, IMAGE_BODY, target.key, 32, duration - 1, workdir, core)
        _, err = recorder.communicate(timeout=duration + 60)
    if not raw.exists():
        return f"time split skipped: py-spy failed: {err.strip()[-300:]}"
    who = LABELS[target.name]
    busy = ", busy disk" if disk_load else ""
    rows = [f"| where {who}'s CPU goes (instant upstream, c=32{busy}, py-spy) | share |"]
    rows += ["|---|--:|", *(f"| {bucket} | {share:.0%} |" for bucket, share in time_split(raw))]
    if disk_load:
        held = bucket_samples(raw, loop_only=True)
        rows += ["", f"| {who}: the event loop's thread in ({duration:g} s run) | seconds |"]
        rows += ["|---|--:|", *(f"| {b} | {n / 200:.2f} |" for b, n in held.most_common())]
    return "\n".join(rows)


# -- the report ------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _spread(values: list[float], fmt: str, suffix: str = "") -> str:
    values = [v for v in values if v == v]
    if not values:
        return "—"
    middle = format(_median(values), fmt) + suffix
    if len(values) == 1:
        return middle
    return f"{middle} ({format(min(values), fmt)} to {format(max(values), fmt)})"


Runs = dict[tuple[int, Upstream, int, str], Run]


def report(
    runs: Runs,
    reps: int,
    upstreams: list[Upstream],
    levels: list[int],
    targets: list[Target],
    notes: list[str],
) -> str:
    names = [t.name for t in targets]
    gateways = [n for n in names if n != "direct"]

    def per_rep(upstream: Upstream, level: int, fn) -> list[float]:  # type: ignore[no-untyped-def]
        out = []
        for rep in range(reps):
            try:
                value = fn(lambda name, rep=rep: runs[(rep, upstream, level, name)])
            except (KeyError, ZeroDivisionError):
                continue
            if value is not None:
                out.append(value)
        return out

    lines = ["### Requests per second (median of the repetitions, their range in brackets)", ""]
    ratios = [
        ("reapi", "litellm", "reapi ÷ LiteLLM"),
        ("reapi-before", "litellm", "before ÷ LiteLLM"),
        ("reapi", "reapi-before", "reapi ÷ before"),
        ("reapi", "lean", "reapi ÷ lean"),
        ("lean-burn", "direct", "lean + burn ÷ direct"),
        ("reapi", "direct", "reapi ÷ direct"),
        ("reapi-pg", "reapi", "PostgreSQL ÷ SQLite"),
        ("reapi-pg-before", "reapi-before", "before: PostgreSQL ÷ SQLite"),
        ("reapi-w2", "reapi", "2 workers ÷ 1"),
        ("reapi-w2", "reapi-unpinned", "2 workers ÷ 1 unpinned"),
        ("reapi-w2", "reapi-w2-before", "2 workers ÷ before"),
        ("reapi-pg-w2", "reapi-pg", "PostgreSQL: 2 workers ÷ 1"),
    ]
    ratios = [r for r in ratios if r[0] in names and r[1] in names]
    head = ["upstream", "conc.", *(LABELS[n] for n in names), *(r[2] for r in ratios)]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "--:|" * (len(head) - 2)]
    for upstream in upstreams:
        for level in levels:
            row = [upstream.label, str(level)]
            for name in names:
                row.append(
                    _spread(per_rep(upstream, level, lambda r, n=name: r(n).result.rps), ",.0f")
                )
            for a, b, _ in ratios:
                row.append(
                    _spread(
                        per_rep(
                            upstream,
                            level,
                            lambda r, a=a, b=b: r(a).result.rps / r(b).result.rps,
                        ),
                        ".2f",
                        "x",
                    )
                )
            lines.append("| " + " | ".join(row) + " |")

    lines += ["", "### Latency: direct p50 / p99, and what each gateway adds to them (ms)", ""]
    head = ["upstream", "conc.", "direct p50 / p99", *(f"{LABELS[n]} added" for n in gateways)]
    if "reapi" in names:
        head.append("reapi p99 ÷ p50")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for upstream in upstreams:
        for level in levels:
            p50 = per_rep(upstream, level, lambda r: r("direct").result.p50)
            p99 = per_rep(upstream, level, lambda r: r("direct").result.p99)
            row = [upstream.label, str(level), f"{_spread(p50, '.2f')} / {_spread(p99, '.2f')}"]
            for name in gateways:
                a50 = per_rep(
                    upstream,
                    level,
                    lambda r, n=name: r(n).result.p50 - r("direct").result.p50,
                )
                a99 = per_rep(
                    upstream,
                    level,
                    lambda r, n=name: r(n).result.p99 - r("direct").result.p99,
                )
                bad = sum(
                    runs[(rep, upstream, level, name)].result.bad
                    for rep in range(reps)
                    if (rep, upstream, level, name) in runs
                )
                flag = f" ({bad} non-2xx)" if bad else ""
                row.append(f"{_spread(a50, '+.2f')} / {_spread(a99, '+.2f')}{flag}")
            if "reapi" in names:
                row.append(
                    _spread(
                        per_rep(
                            upstream, level, lambda r: r("reapi").result.p99 / r("reapi").result.p50
                        ),
                        ".1f",
                        "x",
                    )
                )
            lines.append("| " + " | ".join(row) + " |")

    head = ["upstream", "conc.", *(LABELS[n] for n in gateways)]

    def per_request_table(title: str, figure: Callable[[Run], float]) -> list[str]:
        """One figure per request of each gateway, by upstream and concurrency."""
        table = ["", f"### {title}", "", "| " + " | ".join(head) + " |"]
        table.append("|" + "---|" * 2 + "--:|" * len(gateways))
        for upstream in upstreams:
            for level in levels:
                row = [upstream.label, str(level)]
                for name in gateways:
                    values = per_rep(upstream, level, lambda r, n=name: figure(r(n)))
                    row.append(_spread(values, ".2f"))
                table.append("| " + " | ".join(row) + " |")
        return table

    lines += per_request_table(
        "CPU per request (ms of the gateway's CPU time per answer)", lambda run: run.cpu_ms
    )
    lines += per_request_table(
        "Waiting for a core (ms per request the gateway's threads were runnable, not running)",
        lambda run: run.waited_ms,
    )

    lines += workers_table(names, upstreams, levels, per_rep)
    probed = [n for n in gateways if any(r.probe for (_, _, _, m), r in runs.items() if m == n)]
    if probed:
        lines += [
            "",
            "### Event-loop stalls: /healthz every 10 ms, slowest / p99; wrk's slowest (ms)",
            "",
        ]
        head = ["upstream", "conc.", *(LABELS[n] for n in probed)]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "--:|" * len(probed)]
        for upstream in upstreams:
            for level in levels:
                row = [upstream.label, str(level)]
                for name in probed:
                    worst = per_rep(upstream, level, lambda r, n=name: (r(n).probe or (None,))[0])
                    p99 = per_rep(
                        upstream, level, lambda r, n=name: r(n).probe[1] if r(n).probe else None
                    )
                    slowest = per_rep(upstream, level, lambda r, n=name: r(n).result.slowest)
                    row.append(
                        f"{_spread(worst, '.0f')} / {_spread(p99, '.1f')}; "
                        f"{_spread(slowest, '.0f')}"
                    )
                lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "### Memory (MiB)",
        "",
        "| target | RSS idle | peak RSS under load |",
        "|---|--:|--:|",
    ]
    for target in targets:
        if target.name == "direct" or target.process is None:
            continue
        idle = f"{target.idle_rss:.0f}" if target.idle_rss is not None else "—"
        lines.append(f"| {LABELS[target.name]} | {idle} | {peak_rss_mib(target.process.pid):.0f} |")
    lines += ["", *[f"- {note}" for note in notes]]
    return "\n".join(lines)


#: (two workers, one worker pinned to its core, one worker in the two workers' topology)
WORKER_PAIRS = (
    ("reapi-w2", "reapi", "reapi-unpinned"),
    ("reapi-w2-before", "reapi-before", None),
    ("reapi-pg-w2", "reapi-pg", None),
)


def workers_table(names, upstreams, levels, per_rep) -> list[str]:  # type: ignore[no-untyped-def]
    """Two workers against one, with what two cores can give them: each run's gateway CPU and
    its load's (wrk, the upstream, PostgreSQL) per answer bound what two cores serve, 2000 ms
    of CPU a second over (gateway + load) ms per answer. A ratio short of that bound is time
    the workers could not use; a second worker costing more CPU per answer lowers the bound."""
    pairs = [p for p in WORKER_PAIRS if p[0] in names and p[1] in names]
    if not pairs:
        return []
    lines = [
        "",
        "### `--workers 2`: scaling, and what two cores can give",
        "",
        "Per answer: the gateway's CPU (all workers) and the load's (wrk, the upstream, and "
        "PostgreSQL for its rows). Bound: 2 cores ÷ (gateway + load CPU per answer) of the "
        "two-worker run; one worker on core 0 is bound by its one core.",
        "",
        "| upstream | conc. | gateway | req/s 1 worker (core 0) / unpinned / 2 workers "
        "| 2 ÷ 1 | 2 ÷ 1 unpinned | CPU ms/req 1 / unpinned / 2 | 2 workers' CPU ÷ 1's "
        "| workers' shares | load CPU ms/req | bound req/s | bound ÷ 1 worker "
        "| 2 workers ÷ bound | machine busy ms/req |",
        "|---|--:|---|---|--:|--:|---|--:|---|--:|--:|--:|--:|--:|",
    ]

    for upstream in upstreams:
        for level in levels:
            for two, one, free in pairs:
                values = functools.partial(per_rep, upstream, level)
                lines.append(_workers_row(names, upstream.label, level, two, one, free, values))
    return lines


def _workers_row(  # type: ignore[no-untyped-def]
    names: list[str], label: str, level: int, two: str, one: str, free: str | None, values
) -> str:
    """`values(fn)`: fn(runs of the repetition) for each repetition."""

    def each(fn, fmt: str, *who: str | None) -> str:  # type: ignore[no-untyped-def]
        return " / ".join(
            _spread(values(lambda r, n=n: fn(r(n))), fmt) if n is not None and n in names else "—"
            for n in who
        )

    def both(other: str | None, fn) -> str:  # type: ignore[no-untyped-def]
        if other is None or other not in names:
            return "—"
        return _spread(values(lambda r: fn(r(two), r(other))), ".2f", "x")

    def bound(run: Run) -> float:
        if run.cpu_ms is None or run.load_ms is None:
            return float("nan")
        return 2000 / (run.cpu_ms + run.load_ms)

    shares = values(lambda r: r(two).shares or None)
    row = [
        label,
        str(level),
        {"reapi": "SQLite", "reapi-before": "SQLite, before"}.get(one, "PostgreSQL"),
        each(lambda run: run.result.rps, ",.0f", one, free, two),
        both(one, lambda a, b: a.result.rps / b.result.rps),
        both(free, lambda a, b: a.result.rps / b.result.rps),
        each(lambda run: run.cpu_ms, ".2f", one, free, two),
        both(free or one, lambda a, b: a.cpu_ms / b.cpu_ms),
        " / ".join("+".join(f"{x:.0%}" for x in split) for split in shares) or "—",
        each(lambda run: run.load_ms, ".2f", two),
        each(bound, ",.0f", two),
        both(one, lambda a, b: bound(a) / b.result.rps),
        _spread(values(lambda r: r(two).result.rps / bound(r(two))), ".0%"),
        each(lambda run: run.machine_ms, ".2f", two),
    ]
    return "| " + " | ".join(row) + " |"


def parse_upstreams(text: str) -> list[Upstream]:
    """ "0,50,50~25" → instant, 50 ms, 50 ± 25 ms."""
    out = []
    for item in text.split(","):
        latency, _, jitter = item.partition("~")
        out.append(Upstream(float(latency), float(jitter or 0)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--repetitions", type=int, default=2)
    parser.add_argument(
        "--upstreams", default="0,50,50~25", help="upstream latencies in ms, ~jitter (uniform ±)"
    )
    parser.add_argument("--concurrency", default="1,32,128")
    parser.add_argument("--targets", default=",".join(ALL_TARGETS))
    parser.add_argument("--no-litellm", action="store_true", help="the same as leaving it out")
    parser.add_argument(
        "--litellm-venv",
        type=Path,
        default=Path(os.environ.get("LITELLM_VENV", BENCH / ".litellm-venv")),
        help="a venv with litellm[proxy] (made here if missing); env LITELLM_VENV",
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="the `src` directory of an earlier checkout: adds the target reapi-before (the "
        "same settings, that code) to compare with in the same run",
    )
    parser.add_argument(
        "--lean-burn",
        type=float,
        metavar="MS",
        help="adds the target lean-burn: the lean proxy spending MS of CPU per request",
    )
    parser.add_argument(
        "--pg-synchronous-commit",
        action="store_true",
        help="PostgreSQL with synchronous_commit=on (an fsync per commit)",
    )
    parser.add_argument(
        "--profile-seconds",
        type=float,
        default=10.0,
        help="py-spy's run for the time split; 0: none",
    )
    parser.add_argument(
        "--disk-load",
        action="store_true",
        help="another process writes big files to the gateways' disk through every run "
        "(implies --loop-probe)",
    )
    parser.add_argument(
        "--loop-probe",
        action="store_true",
        help="ask reapi targets' /healthz every 10 ms through every run: event-loop stalls",
    )
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument(
        "--timeline",
        type=Path,
        metavar="DIR",
        help="the SQLite gateways (reapi, reapi-before) write a per-request timeline into DIR "
        "when they stop (read it with bench/timeline.py); it costs a little CPU per request",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    wanted = [t for t in args.targets.split(",") if t]
    unknown = set(wanted) - set(ALL_TARGETS)
    if unknown:
        sys.exit(f"unknown targets: {', '.join(sorted(unknown))}")
    if args.no_litellm and "litellm" in wanted:
        wanted.remove("litellm")
    if args.before is not None and "reapi-before" not in wanted:
        wanted.insert(wanted.index("reapi") + 1 if "reapi" in wanted else 1, "reapi-before")
    if args.before is not None and "reapi-pg" in wanted and "reapi-pg-before" not in wanted:
        wanted.insert(wanted.index("reapi-pg") + 1, "reapi-pg-before")
    if args.lean_burn is not None and "lean-burn" not in wanted:
        wanted.insert(wanted.index("lean") + 1 if "lean" in wanted else 1, "lean-burn")
    if "lean-burn" in wanted and args.lean_burn is None:
        sys.exit("the target lean-burn needs --lean-burn MS")
    if {"reapi-before", "reapi-pg-before", "reapi-w2-before"} & set(wanted) and not args.before:
        sys.exit("the targets reapi-before, reapi-pg-before and reapi-w2-before need --before SRC")
    if args.before is not None and "reapi-w2" in wanted and "reapi-w2-before" not in wanted:
        wanted.insert(wanted.index("reapi-w2") + 1, "reapi-w2-before")
    if "reapi-w2" in wanted and "reapi-unpinned" not in wanted:
        wanted.insert(wanted.index("reapi-w2"), "reapi-unpinned")
    if "direct" not in wanted:
        wanted.insert(0, "direct")  # every ratio and "added" column needs it
    upstreams = parse_upstreams(args.upstreams)
    levels = [int(x) for x in args.concurrency.split(",")]
    pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    gw_core, load_core = (0, 1) if pin else (None, None)
    notes = [
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        + (
            "gateways on core 0; wrk, the upstream and PostgreSQL on core 1; "
            "reapi --workers 2 and reapi unpinned not pinned"
            if pin
            else "no pinning"
        ),
        f"{args.repetitions} repetitions of {args.duration:g} s per run, upstream answer: "
        "a 4,182-byte PNG as b64_json",
    ]

    targets: list[Target] = []
    postgres: Postgres | None = None
    runs: Runs = {}
    with tempfile.TemporaryDirectory(prefix="reapi-bench-") as tmp:
        workdir = Path(tmp)
        if (note := unjournaled_note(workdir)) is not None:
            notes.append(note)  # the output file's CPU swings with other processes' deletions
        if args.timeline is not None:  # its answers then carry their send time (`_upstream`)
            os.environ["BENCH_UPSTREAM_STAMP"] = "1"
        upstream_proc, upstream_url, control = upstream_process(load_core)
        try:
            for name in wanted:
                try:
                    if name == "direct":
                        target = Target("direct", upstream_url, SIM_KEY, upstream_proc)
                    elif name == "lean":
                        target = lean_target(upstream_url, gw_core)
                    elif name == "lean-burn":
                        target = lean_target(upstream_url, gw_core, args.lean_burn)
                    elif name == "reapi":
                        target = reapi_target(
                            name, upstream_url, workdir, gw_core, timeline=args.timeline
                        )
                    elif name in ("reapi-h1", "reapi-aiohttp"):
                        target = reapi_target(
                            name,
                            upstream_url,
                            workdir,
                            gw_core,
                            upstream_client=name.removeprefix("reapi-"),
                        )
                    elif name == "reapi-before":
                        target = reapi_target(
                            name,
                            upstream_url,
                            workdir,
                            gw_core,
                            source=args.before.resolve(),
                            timeline=args.timeline,
                        )
                    elif name in ("reapi-w2", "reapi-w2-before", "reapi-unpinned"):
                        target = reapi_target(
                            name,
                            upstream_url,
                            workdir,
                            None,
                            workers=1 if name == "reapi-unpinned" else 2,
                            source=args.before.resolve() if name == "reapi-w2-before" else None,
                        )
                    elif name in ("reapi-pg", "reapi-pg-before", "reapi-pg-w2"):
                        if postgres is None:
                            postgres = Postgres(load_core, args.pg_synchronous_commit)
                        before = name == "reapi-pg-before"
                        two = name == "reapi-pg-w2"
                        target = reapi_target(
                            name,
                            upstream_url,
                            workdir,
                            None if two else gw_core,
                            workers=2 if two else 1,
                            database_url=postgres.database(name.replace("-", "_")),
                            source=args.before.resolve() if before else None,
                        )
                    else:
                        target = litellm_target(upstream_url, workdir, gw_core, args.litellm_venv)
                except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
                    notes.append(f"{LABELS[name]} not measured: {error}")
                    print(f"{name} skipped: {error}", flush=True)
                    continue
                problem = warm(target, workdir, load_core)
                if problem:
                    notes.append(f"{LABELS[name]} not measured: {problem}")
                    target.stop()
                    continue
                if target.process is not None and name != "direct":
                    time.sleep(1)
                    target.idle_rss = rss_mib(target.process.pid)
                targets.append(target)
                print(f"started {name} {target.version}".rstrip(), flush=True)

            for rep in range(args.repetitions):
                order = targets[rep % len(targets) :] + targets[: rep % len(targets)]
                for upstream in upstreams:
                    set_delay(control, upstream.latency, upstream.jitter)
                    for level in levels:
                        for target in order:
                            wrk(
                                target.url,
                                IMAGE_BODY,
                                target.key,
                                min(level, 4),
                                1,
                                workdir,
                                load_core,
                            )
                            load_pids = [upstream_proc.pid]
                            if postgres is not None and target.name.startswith("reapi-pg"):
                                load_pids += postgres.pids()
                            run = measure(
                                target,
                                level,
                                args.duration,
                                workdir,
                                load_core,
                                load_pids,
                                disk_load=args.disk_load,
                                loop_probe=args.loop_probe or args.disk_load,
                            )
                            runs[(rep, upstream, level, target.name)] = run
                            r = run.result
                            cpu = f"  cpu {run.cpu_ms:.2f} ms/req" if run.cpu_ms else ""
                            if run.load_ms is not None:
                                cpu += f" (load {run.load_ms:.2f})"
                            if run.waited_ms is not None:
                                cpu += f" waited {run.waited_ms:.2f}"
                            if run.shares:
                                cpu += " split " + "+".join(f"{x:.0%}" for x in run.shares)
                            if run.probe:
                                cpu += f" healthz max {run.probe[0]:.0f} p99 {run.probe[1]:.1f}"
                                cpu += f" wrk max {r.slowest:.0f} ms"
                            print(
                                f"  rep {rep + 1} {upstream.label:>12} c={level:<3} "
                                f"{target.name:9} {r.rps:8.1f} req/s  p50 {r.p50:7.2f}  "
                                f"p99 {r.p99:7.2f} ms  bad {r.bad}/{r.requests}{cpu}",
                                flush=True,
                            )
                            if r.bad and target.log is not None:
                                print(tail(target.log, 5), flush=True)

            split = ""
            # With the busy disk, the earlier code's too: what held each one's event loop.
            profiled = ("reapi", "reapi-before") if args.disk_load else ("reapi",)
            if args.profile_seconds > 0:
                set_delay(control, 0)
                split = "\n\n".join(
                    profile(t, args.profile_seconds, workdir, load_core, disk_load=args.disk_load)
                    for t in targets
                    if t.name in profiled
                )
            for target in targets:
                if target.version:
                    notes.append(f"{LABELS[target.name]} {target.version}")
            text = report(runs, args.repetitions, upstreams, levels, targets, notes)
            if split:
                text += "\n\n" + split
            if args.json is not None:
                args.json.write_text(
                    json.dumps(
                        [
                            {
                                "repetition": rep,
                                "latency_ms": up.latency,
                                "jitter_ms": up.jitter,
                                "concurrency": level,
                                "target": name,
                                "rps": run.result.rps,
                                "p50_ms": run.result.p50,
                                "p99_ms": run.result.p99,
                                "requests": run.result.requests,
                                "bad": run.result.bad,
                                "cpu_ms_per_request": run.cpu_ms,
                                "load_cpu_ms_per_request": run.load_ms,
                                "machine_busy_ms_per_request": run.machine_ms,
                                "waited_for_core_ms_per_request": run.waited_ms,
                                "worker_cpu_shares": list(run.shares),
                                "slowest_ms": run.result.slowest,
                                "healthz_max_ms": run.probe[0] if run.probe else None,
                                "healthz_p99_ms": run.probe[1] if run.probe else None,
                            }
                            for (rep, up, level, name), run in runs.items()
                        ],
                        indent=1,
                    )
                )
        finally:
            for target in targets:
                if target.name != "direct":
                    target.stop()
            stop(upstream_proc)
            if postgres is not None:
                postgres.stop()
    print()
    print(text)


if __name__ == "__main__":
    main()
