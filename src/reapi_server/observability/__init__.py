"""Metadata-only logging, Prometheus metrics and health endpoints."""
