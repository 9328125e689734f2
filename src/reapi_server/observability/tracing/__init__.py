"""OpenTelemetry tracing (`tracing = true`, the `otel` extra): a span for each /v1 request, with
children for its upstream attempts, storage and database calls. Metadata only: every attribute
passes the one allowlist in `attributes` on its way out.

Nothing here is imported unless tracing is on (`setup.start_tracing`), and only `attributes`
may be imported without OpenTelemetry installed.
"""
