"""Retention: usage metadata, video jobs and mirrored outputs are deleted once older than
`retention_days` (30 by default), and nothing younger."""

from .service import RetentionReport, purge_once, run_retention

__all__ = ["RetentionReport", "purge_once", "run_retention"]
