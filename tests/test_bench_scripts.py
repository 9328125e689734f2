"""The benchmark scripts still run (tiny sizes, no timing asserted: benchmarks are not timed
tests). bench/gateway.py needs wrk and LiteLLM's venv, so only its help is checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_failover_bench_runs_and_prints_its_table():
    out = run(str(BENCH / "failover.py"), "--requests", "3", "--deadline", "0.2")
    assert "| fault on primary |" in out
    assert all(f"| {fault} |" in out for fault in ("error_500", "refuse", "reset", "hang"))


def test_slow_failover_bench_runs_every_setup_and_prints_its_table():
    out = run(str(BENCH / "slow_failover.py"), "--scale", "0.02", "--rate", "20", timeout=180)
    assert "| setup | first request after the hang: wait (s) |" in out
    assert all(f"| {setup} |" in out for setup in ("unstreamed", "streamed", "probes", "hedged"))


def test_mirror_memory_bench_runs_on_a_small_video():
    out = run(str(BENCH / "mirror_memory.py"), "--mb", "8", timeout=180)
    assert "MiB" in out


def test_gateway_bench_parses_its_arguments():
    assert "--duration" in run(str(BENCH / "gateway.py"), "--help")


def test_commit_batching_bench_parses_its_arguments():
    assert "--scenarios" in run(str(BENCH / "commit_batching.py"), "--help")


def test_lockstep_model_compares_the_carry_and_defer_rules():
    out = run(str(BENCH / "lockstep_model.py"), "--rules", "first-opening,carry,defer")
    assert all(f"| 50 ms ± 25 | {rule} |" in out for rule in ("first-opening", "carry", "defer"))


def test_usage_page_bench_runs_and_prints_its_table():
    out = run(
        str(BENCH / "usage_page.py"), "--rows", "300", "--other-rows", "100", "--renders", "2"
    )
    assert "| /dashboard/usage (30 days, all rows) |" in out
    assert "| /api/usage (JSON, 100 rows + totals) |" in out


def test_usage_rollup_writes_bench_runs_and_prints_its_table():
    out = run(str(BENCH / "usage_rollup_writes.py"), "--requests", "200")
    assert "| with the triggers |" in out and "| without the triggers |" in out


def test_fleet_bench_parses_its_arguments():
    assert "--instances" in run(str(BENCH / "fleet.py"), "--help")


def test_db_hot_path_bench_runs_and_prints_its_table():
    out = run(
        str(BENCH / "db_hot_path.py"),
        *("--requests", "40", "--concurrency", "1,4", "--repetitions", "1"),
        *("--page-sizes", "2048", "--frames", "--prefill", "300"),
    )
    assert "as migrated, opening transaction:" in out and "credit_holds" in out
    assert "| as migrated | 4 |" in out and "| 2048-byte pages | 1 |" in out
    # Frames per request, b-tree by b-tree, at each concurrency: at one connection each
    # transaction writes a page of each b-tree it touches, the commit marker's among them.
    assert "as migrated: WAL frames per request, by b-tree" in out
    assert "| b-tree | c=1 | c=4 |" in out
    marker = next(line for line in out.splitlines() if line.startswith("| commit_markers |"))
    assert marker.split("|")[2].strip() == "2.00", marker


def test_group_commit_overhead_bench_runs_and_prints_its_table():
    out = run(str(BENCH / "group_commit_overhead.py"), "--transactions", "50", "--repetitions", "1")
    assert all(f"| this | {mode} |" in out for mode in ("at once", "queued", "bare"))


def test_upstream_exchange_bench_runs_and_prints_its_table():
    out = run(str(BENCH / "upstream_exchange.py"), "--exchanges", "20", "--repetitions", "1")
    assert "| this checkout |" in out and "CPU us per exchange" in out


def test_output_write_bench_runs_and_prints_its_tables():
    out = run(str(BENCH / "output_write.py"), "--writes", "40", "--rounds", "1")
    assert "| the write: in flight |" in out and "| 32 |" in out


def test_a_path_on_no_block_device_is_not_taken_for_unjournaled_ext4():
    sys.path.insert(0, str(BENCH))
    try:
        from _bench import unjournaled_ext4, unjournaled_note
    finally:
        sys.path.remove(str(BENCH))
    assert unjournaled_ext4(Path("/proc")) is None  # procfs: no block device
    assert unjournaled_note(Path("/proc")) is None


def test_the_timeline_makes_its_folder(tmp_path):
    """`gateway.py --timeline DIR` with DIR missing: the gateway's requests wrote into it and
    failed with a 500 each."""
    out = tmp_path / "missing" / "reapi"
    code = "import sitecustomize as t; t.records.append({'p': 1}); t._dump()"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(BENCH / "_timeline"), "BENCH_TIMELINE_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (written,) = out.parent.iterdir()
    assert written.name.startswith("reapi.")
    assert written.read_text() == '{"p": 1}\n'


def test_the_timeline_splits_the_upstream_wait_by_the_upstream_stamp(tmp_path):
    """With the upstream's own answer time (`us`), the wait for the upstream is split into the
    upstream's part and the gateway loop's."""
    record = {"p": 0, "e": 1, "w": 1_000_000, "us": 51_000_000, "b": 53_000_000, "x": 60_000_000}
    timeline = tmp_path / "reapi.1"
    timeline.write_text(json.dumps(record) + "\n")
    out = run(str(BENCH / "timeline.py"), "--trim", "0", str(timeline))
    assert "| of which: written → the upstream answers (its wait, its core) | 1 | 50.00 |" in out
    assert "| of which: the upstream answers → our loop reads it | 1 | 2.00 |" in out


def test_request_instructions_bench_parses_its_arguments():
    # Counting needs valgrind and minutes under it (and perf for --syscalls): the suite checks
    # the script loads.
    out = run(str(BENCH / "request_instructions.py"), "--help")
    assert all(option in out for option in ("--concurrency", "--upstream-ms", "--syscalls"))


def test_request_bytecodes_bench_parses_its_arguments():
    # Counting serves a gateway under a trace function for a minute: the suite checks it loads.
    assert "--before" in run(str(BENCH / "request_bytecodes.py"), "--help")
