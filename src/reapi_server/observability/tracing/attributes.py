"""The one allowlist of span attribute names: the log records' fields (`logging.FIELDS`) under
OpenTelemetry's names, and a few of the same kind that only spans carry.

Every span the gateway exports passes `admit` on its way out (`export.AllowlistExporter`), so
nothing set anywhere can go around it: an attribute whose name is not listed is dropped, a text
value is cut short, a value of any other type than text, number or flag is dropped. Under these
names go only values the gateway makes or the operator configures: methods, route templates,
status codes, the gateway's own request ids, catalog names, hosts from the configuration,
counts, durations, outcome classes. Never a body, prompt, header, query string, path, URL or key:
add a name here only for such a value.

Imports nothing from OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...mirror.keys import OUTPUTS_PREFIX, is_task_id

__all__ = [
    "ALLOWED",
    "FROM_LOGS",
    "LOGS_ONLY",
    "MAX_TEXT",
    "SPANS_ONLY",
    "Value",
    "admit",
    "key_kind",
]

#: The log records' metadata fields (`logging.FIELDS`), under their names in a span: the same
#: allowlist, in OpenTelemetry's words where it has them.
FROM_LOGS: dict[str, str] = {
    "method": "http.request.method",  # a known method, or OTHER
    "route": "http.route",  # the route's template: never the path, never its query
    "status": "http.response.status_code",  # the gateway's answer (an attempt: the upstream's)
    "provider": "reapi.provider",  # a catalog provider name
    "attempts": "reapi.attempts",
    "request_id": "reapi.request_id",  # the gateway's own id (X-Request-Id)
    "duration_ms": "reapi.duration_ms",
    "code": "reapi.attempt.code",  # an error's stable code
    "model": "reapi.model",  # a catalog model id, once the catalog has resolved it
}
#: Log fields no span carries: the video poller's records name their job, and the poller runs
#: outside any request, so outside any trace.
LOGS_ONLY = frozenset({"job_id"})

#: What only spans say, of the same kind: names from the catalog and the configuration, counts,
#: flags, outcome classes, an exception's type name.
SPANS_ONLY = frozenset(
    {
        "error.type",  # an exception's type name
        # Each upstream attempt (CLIENT spans).
        "reapi.route",  # provider/upstream model, from the catalog
        "server.address",  # the provider's host, from the configuration
        "server.port",
        "reapi.attempt.number",
        "reapi.attempt.failover",  # started after an earlier attempt failed
        "reapi.attempt.hedge",  # started beside an attempt still running
        "reapi.attempt.outcome",  # ok | error | cancelled | crashed
        # Storage calls.
        "reapi.storage.backend",  # local | s3
        "reapi.storage.key_kind",  # what `key_kind` makes of a key: never the key
        "reapi.storage.bytes",
        "reapi.storage.found",
        # Database units of work.
        "db.system.name",  # sqlite | postgresql
        "reapi.db.kind",  # grouped (group commit) | write | read
        "reapi.db.batch_size",  # requests' writes in the group commit that carried this one
        # Storage and database calls.
        "reapi.outcome",  # ok | error | cancelled
    }
)

ALLOWED: frozenset[str] = frozenset(FROM_LOGS.values()) | SPANS_ONLY

#: The longest text value kept (longer ones are cut): room for any value above, none for a body.
MAX_TEXT = 128

Value = str | bool | int | float


def admit(attributes: Mapping[str, object] | None) -> dict[str, Value]:
    """The attributes that may leave the process: allowlisted names, plain values."""
    admitted: dict[str, Value] = {}
    for name, value in (attributes or {}).items():
        if name not in ALLOWED:
            continue
        if isinstance(value, str):
            admitted[name] = value[:MAX_TEXT]
        elif isinstance(value, bool | int | float):
            admitted[name] = value
    return admitted


def key_kind(key: str) -> str:
    """What a storage key is, not which: `outputs/req` (an image request's outputs),
    `outputs/video`, or `other`. Keys are generated ids; a trace needs only their kind."""
    if not key.startswith(OUTPUTS_PREFIX):
        return "other"
    task = key.removeprefix(OUTPUTS_PREFIX).partition("/")[0]
    return f"outputs/{task.partition('_')[0]}" if is_task_id(task) else "other"
