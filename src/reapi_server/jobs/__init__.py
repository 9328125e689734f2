"""Async video jobs: rows driven by a background poller that any server process may run."""
