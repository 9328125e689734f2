"""Retention: usage metadata, video jobs, mirrored outputs and each request's credit rows
(`credit_history`: a carried sum stays) are deleted once older than `retention_days` (30 by
default), payment records once older than `payment_retention_days` (7 years), and nothing
younger."""

from .service import RetentionReport, purge_once, run_retention

__all__ = ["RetentionReport", "purge_once", "run_retention"]
