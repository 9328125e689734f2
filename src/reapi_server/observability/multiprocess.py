"""Metrics with several worker processes: prometheus-client's multiprocess mode.

Each worker writes its metrics to files named by its pid in one directory (private, under the
data dir); a scrape adds them up (`Metrics.exposition`). The directory is emptied at each start:
counts left by an earlier run would otherwise be added to this one's. When a worker dies, its
files stay (its counts still happened) except its live gauges' (`mark_process_dead`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client.multiprocess import mark_process_dead

from ..private import make_private_dirs
from .metrics import MULTIPROCESS_ENV

__all__ = ["METRICS_DIR", "forget_worker", "use_multiprocess_dir"]

#: Under the data dir.
METRICS_DIR = "metrics"


def use_multiprocess_dir(data_dir: Path) -> Path:
    """Empty (or make) the directory, private, and point prometheus-client at it: workers
    started after this inherit the variable, and import prometheus-client with it set."""
    directory = data_dir / METRICS_DIR
    shutil.rmtree(directory, ignore_errors=True)
    make_private_dirs(directory)
    os.environ[MULTIPROCESS_ENV] = str(directory)
    return directory


def forget_worker(pid: int) -> None:
    """A worker exited: its live gauges no longer count."""
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
