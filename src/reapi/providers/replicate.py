"""Replicate predictions (`https://api.replicate.com/v1`): a generic second host.

Wire format: PROVIDERS.md §11. Official models run at `POST models/{owner}/{name}/predictions`
with `{"input": {...}}` (built by `_host_inputs`, chosen per route with `options.input_map`).
Images ask Replicate to hold the answer (`Prefer: wait=N`, route option `wait`, default 10 s) and
poll `GET predictions/{id}` if it is not finished by then; videos are created plainly and polled.
States `starting` / `processing` / `succeeded` / `failed` / `canceled` / `aborted` map onto
reapi's four. `output` is a URL or a list of URLs, deleted with the prediction after one hour.
A video to enhance (vetted by `_source_video`) is first uploaded to `POST files` and the model
is given Replicate's copy, never the caller's URL. That copy is deleted (`DELETE files/{id}`,
`_cleanup`) once the prediction has ended (succeeded, failed, canceled: seen by a poll), when
the job is cancelled or deleted, and when creating the prediction fails; so the task id of such a
prediction is `<prediction id>.<file id>`.

A prediction's `error` is free text that may quote the input, so only a Replicate code found in
it (`E####`, or the `E005` models use for "flagged as sensitive") is kept; `E005` is a content
block and never failed over. HTTP errors are `{"detail": "..."}`: 429 carries Retry-After and 402
means the account is out of credit. Replicate has no idempotency header, so creates carry none.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from datetime import datetime
from typing import Any

from .._exceptions import (
    APIResponseError,
    APITimeoutError,
    ConfigurationError,
    ContentPolicyError,
    InvalidRequestError,
    JobFailedError,
    QuotaExceededError,
    ReapiError,
)
from .._excerpt import excerpt
from ..catalog import Route
from ._base import Adapter, ImageCall, VideoCall
from ._cleanup import removed
from ._host_inputs import REPLICATE_INPUTS, HostInput, input_map, route_seconds
from ._protocol import (
    GeneratedFile,
    ImageResult,
    Protocol,
    Sleep,
    TaskState,
    TaskStatus,
    UpstreamRequest,
    UpstreamResponse,
)
from ._source_video import SourceVideo
from ._util import content_type_for

__all__ = ["ReplicateAdapter"]

_STATES: dict[str, TaskState] = {
    "starting": "queued",
    "processing": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "failed",
    "aborted": "failed",
}
_ENDED = {"canceled": "cancelled", "aborted": "cancelled"}
_PREDICTION_ID = re.compile(r"[a-z0-9]{1,64}")
#: A Files API id (no `.`: it follows the prediction's id in a task id, after a `.`).
_FILE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,127}", re.ASCII)
_OFFICIAL_MODEL = re.compile(r"[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*", re.ASCII)
#: Replicate's codes in an error text: `(E005)`-style model codes and its own `E####` codes.
_ERROR_CODE = re.compile(r"\b(E\d{3,4})\b")
_EXTENSION_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
}
_IMAGE_WAIT = 10
_IMAGE_POLL = 1.0
_IMAGE_MAX_WAIT = 300.0
_VIDEO_POLL = 5.0
_CANCEL_TOO_LATE = frozenset({400, 404, 409, 422})


class ReplicateAdapter(Adapter):
    name = "replicate"
    #: "The input or output was flagged as sensitive (E005)" (seen from Google and ByteDance
    #: models on Replicate; not in Replicate's own code list).
    content_policy_codes = frozenset({"E005"})

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.connection.api_key.reveal()}"}

    def probe(self, route: Route) -> UpstreamRequest:
        """`GET /account`, the account the token belongs to (one probe for every route)."""
        return UpstreamRequest(
            "GET", self.connection.url("account"), self._headers(), purpose="probe"
        )

    def error_for(self, response: UpstreamResponse) -> ReapiError:
        if response.status == 402:
            return QuotaExceededError(
                f"{self.provider} answered HTTP 402: its account is out of credit",
                provider=self.provider,
                status=402,
                request_id=self.request_id(response),
            )
        return super().error_for(response)

    # -- predictions -------------------------------------------------------------------------
    def _create(self, host: HostInput, *, wait: int | None) -> Protocol[dict[str, Any]]:
        if not _OFFICIAL_MODEL.fullmatch(host.model):
            raise ConfigurationError(
                "a Replicate route's model must be an official model's owner/name",
                provider=self.provider,
            )
        headers = self._headers()
        if wait:
            headers["Prefer"] = f"wait={wait}"
        url = self.connection.url(f"models/{host.model}/predictions")
        response = yield UpstreamRequest("POST", url, headers, json={"input": host.input})
        assert response is not None
        return self._prediction(self.check(response))

    def _prediction(self, response: UpstreamResponse) -> dict[str, Any]:
        body = response.json(self.provider)
        if not isinstance(body, dict):
            raise APIResponseError(
                "the provider's prediction is not an object", provider=self.provider
            )
        if not isinstance(body.get("id"), str) or not _PREDICTION_ID.fullmatch(body["id"]):
            raise APIResponseError("the provider returned no prediction id", provider=self.provider)
        if body.get("status") not in _STATES:
            raise APIResponseError(
                "the provider's prediction status is unknown", provider=self.provider
            )
        return body

    def _url(self, prediction_id: str, suffix: str = "") -> str:
        if not _PREDICTION_ID.fullmatch(prediction_id):
            raise InvalidRequestError(
                "no such video: this id names no Replicate prediction",
                param="video_id",
                code="not_found",
            )
        return self.connection.url(f"predictions/{prediction_id}{suffix}")

    def _get(self, prediction_id: str) -> Protocol[dict[str, Any]]:
        response = yield UpstreamRequest(
            "GET", self._url(prediction_id), self._headers(), purpose="poll"
        )
        assert response is not None
        return self._prediction(self.check(response))

    def _cancel(self, prediction_id: str) -> Protocol[None]:
        url = self._url(prediction_id, "/cancel")
        response = yield UpstreamRequest("POST", url, self._headers(), purpose="cancel")
        assert response is not None
        if response.status not in _CANCEL_TOO_LATE:
            self.check(response)

    def _error_code(self, prediction: dict[str, Any]) -> str | None:
        """A code from the prediction's error text; the text itself is never kept."""
        error = prediction.get("error")
        match = _ERROR_CODE.search(error) if isinstance(error, str) else None
        return match[1] if match else None

    def _outputs(self, prediction: dict[str, Any], default_type: str) -> tuple[GeneratedFile, ...]:
        output = prediction.get("output")
        urls = output if isinstance(output, list) else [output]
        expires = self._expiry(prediction.get("created_at"))
        files = []
        for url in urls:
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                continue
            extension = "." + url.split("?", 1)[0].rsplit(".", 1)[-1].lower()
            files.append(
                GeneratedFile(
                    _EXTENSION_TYPES.get(extension, default_type),
                    url=url,
                    # Delivery URLs are public: the token never goes with them.
                    fetch=UpstreamRequest("GET", url, purpose="download", download=True),
                    url_expires_at=expires,
                )
            )
        return tuple(files)

    def _expiry(self, created_at: object) -> int | None:
        """Replicate deletes an API prediction's files an hour after it was created."""
        lifetime = self.connection.url_lifetime_seconds
        if not lifetime:
            return None
        start = time.time()
        if isinstance(created_at, str):
            with contextlib.suppress(ValueError):
                start = min(start, datetime.fromisoformat(created_at).timestamp())
        return int(start) + lifetime

    def _upload(self, source: SourceVideo) -> Protocol[tuple[str, str]]:
        """`POST /files` (multipart, the bytes as `content`): Replicate's own copy of a vetted
        source, whose `urls.get` a model input takes like any file URL (Replicate fetches it
        with the account's token). Data URLs are only recommended under 1 MB. Returns the
        file's (id, URL); a file without an id could not be deleted, so it is not used."""
        response = yield UpstreamRequest(
            "POST",
            self.connection.url("files"),
            self._headers(),
            files=(("content", (source.filename, source.content, source.media_type)),),
        )
        assert response is not None
        body = self.check(response).json(self.provider)
        file_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(file_id, str) or not _FILE_ID.fullmatch(file_id):
            raise APIResponseError("the provider returned no file id", provider=self.provider)
        urls = body.get("urls")
        url = urls.get("get") if isinstance(urls, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            yield from self._delete_file(file_id)
            raise APIResponseError("the provider returned no file URL", provider=self.provider)
        return file_id, url

    def _delete_file(self, file_id: str) -> Protocol[bool]:
        """`DELETE /files/{id}` with the token, best effort (`_cleanup.removed`)."""
        url = self.connection.url(f"files/{file_id}")
        request = UpstreamRequest("DELETE", url, self._headers(), purpose="cleanup")
        done: bool = yield from removed(request, self.provider)
        return done

    def _task(self, task_id: str) -> tuple[str, str | None]:
        """(prediction id, id of the uploaded input to delete once it ends, if any)."""
        prediction_id, dot, file_id = task_id.partition(".")
        if dot and not _FILE_ID.fullmatch(file_id):
            raise InvalidRequestError(
                "no such video: this id names no Replicate prediction",
                param="video_id",
                code="not_found",
            )
        return prediction_id, file_id or None

    # -- images ------------------------------------------------------------------------------
    def generate_image(self, call: ImageCall) -> Protocol[ImageResult]:
        mapper = input_map(REPLICATE_INPUTS, call.route, self.name).image
        if mapper is None:
            raise InvalidRequestError("this route serves videos, not images", param="model")
        wait = call.route.options.get("wait", _IMAGE_WAIT)
        prediction = yield from self._create(
            mapper(call), wait=wait if isinstance(wait, int) and 1 <= wait <= 60 else _IMAGE_WAIT
        )
        interval = route_seconds(call.route, "poll_interval", _IMAGE_POLL)
        max_wait = route_seconds(call.route, "max_wait", _IMAGE_MAX_WAIT)
        waited = 0.0
        while _STATES[prediction["status"]] in ("queued", "in_progress"):
            if waited >= max_wait:
                yield from self._cancel(prediction["id"])
                raise APITimeoutError(
                    f"{self.provider} did not finish the image within {max_wait:g} s",
                    provider=self.provider,
                )
            yield Sleep(interval)
            waited += interval
            prediction = yield from self._get(prediction["id"])
        if prediction["status"] != "succeeded":
            raise self._failure(prediction)
        images = self._outputs(prediction, content_type_for(call.params.output_format))
        if not images:
            raise APIResponseError("the provider returned no image", provider=self.provider)
        return ImageResult(
            images=images,
            output_format=call.params.output_format or images[0].content_type.split("/")[-1],
        )

    def _failure(self, prediction: dict[str, Any]) -> ReapiError:
        code = self._error_code(prediction)
        if code in self.content_policy_codes:
            return ContentPolicyError(
                f"{self.provider} blocked the prediction under its content policy",
                provider=self.provider,
                provider_code=code,
            )
        return JobFailedError(
            f"the provider's prediction ended {excerpt(prediction['status'])}",
            provider=self.provider,
            provider_code=code,
        )

    # -- videos ------------------------------------------------------------------------------
    def submit_video(self, call: VideoCall) -> Protocol[str]:
        mapper = input_map(REPLICATE_INPUTS, call.route, self.name).video
        if mapper is None:
            raise InvalidRequestError("this route serves images, not videos", param="model")
        if call.source is None:
            prediction = yield from self._create(mapper(call), wait=None)
            if _STATES[prediction["status"]] == "failed":
                raise self._failure(prediction)
            task_id: str = prediction["id"]
            return task_id
        # Refusals first (with the copy's URL still unknown), then the vetted bytes go to
        # Replicate's file store, and the model reads that copy.
        mapper(dataclasses.replace(call, source=dataclasses.replace(call.source, host_url="")))
        file_id, url = yield from self._upload(call.source)
        call = dataclasses.replace(call, source=dataclasses.replace(call.source, host_url=url))
        failure: ReapiError | None = None
        try:
            prediction = yield from self._create(mapper(call), wait=None)
        except ReapiError as error:  # an answer, or none (the engine's error)
            failure = error
        if failure is None and _STATES[prediction["status"]] == "failed":
            failure = self._failure(prediction)
        if failure is not None:
            # No prediction will read the copy (or one that did has ended): it goes first.
            yield from self._delete_file(file_id)
            raise failure
        return f"{prediction['id']}.{file_id}"

    def poll_video(self, route: Route, task_id: str) -> Protocol[TaskStatus]:
        prediction_id, file_id = self._task(task_id)
        prediction = yield from self._get(prediction_id)
        status = self._status(prediction)
        if file_id is not None and status.state in ("completed", "failed"):
            # The prediction has ended: Replicate's copy of the caller's video is not needed.
            # (A later poll of the same task asks again, and is told 404: already gone.)
            yield from self._delete_file(file_id)
        return status

    def _status(self, prediction: dict[str, Any]) -> TaskStatus:
        status = prediction["status"]
        state = _STATES[status]
        if state in ("queued", "in_progress"):
            return TaskStatus(state=state, poll_after=_VIDEO_POLL)
        if state == "failed":
            if self._error_code(prediction) in self.content_policy_codes:
                return TaskStatus(
                    state="failed", error_code="content_policy_violation", content_blocked=True
                )
            return TaskStatus(state="failed", error_code=_ENDED.get(status, "generation_failed"))
        outputs = self._outputs(prediction, "video/mp4")
        if not outputs:
            return TaskStatus(state="failed", error_code="generation_failed")
        return TaskStatus(state="completed", progress=100, outputs=outputs[:1])

    def cancel_video(self, route: Route, task_id: str) -> Protocol[None]:
        """Cancel the prediction, then delete its uploaded input even if cancelling failed
        (the job is being deleted or given up: nothing will read the copy for it)."""
        prediction_id, file_id = self._task(task_id)
        failure: ReapiError | None = None
        try:
            yield from self._cancel(prediction_id)
        except ReapiError as error:
            failure = error
        if file_id is not None:
            yield from self._delete_file(file_id)
        if failure is not None:
            raise failure
