"""Gateway mode: the SDK speaks OpenAI's wire format to a reapi server, which does the routing.

The server's error messages are written by reapi (never copied from upstream), so unlike provider
errors they are kept and shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel, ValidationError

from ._detached import translated
from ._exceptions import (
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    InsufficientCreditsError,
    InternalServerError,
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ReapiError,
)
from ._options import CallOptions
from ._params import ImageParams, VideoParams
from ._payload import File, Payload
from ._raw import note_answer
from ._secret import Secret
from ._sse import ServerSentEvent
from .providers import Protocol, UpstreamRequest, UpstreamResponse, parse_retry_after
from .providers._protocol import Purpose
from .providers._util import drop_none
from .types import (
    BinaryContent,
    ImagesResponse,
    ImageStreamEvent,
    ModelList,
    Video,
    VideoDeleted,
    VideoList,
)

__all__ = ["GatewayProtocols"]

#: An `error` event has no HTTP status of its own: the one its type stands for, so that it
#: raises what the same error answered in JSON raises (a content block is no server error).
_STATUS_OF_TYPE = {"invalid_request_error": 400, "insufficient_quota": 402, "rate_limit_error": 429}


def _status_of(error: object) -> int:
    kind = error.get("type") if isinstance(error, dict) else None
    return _STATUS_OF_TYPE.get(kind, 500) if isinstance(kind, str) else 500


_PROVIDER = "reapi-gateway"
M = TypeVar("M", bound=BaseModel)


def _form_value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class GatewayProtocols:
    def __init__(self, base_url: str, api_key: Secret) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key

    def _url(self, path: str, query: Mapping[str, object]) -> str:
        url = f"{self.base_url}/{path.lstrip('/')}"
        return f"{url}?{urlencode(query, doseq=True)}" if query else url

    def _request(
        self,
        method: str,
        path: str,
        call: CallOptions,
        *,
        query: Mapping[str, object] | None = None,
        json_body: dict[str, Any] | None = None,
        files: tuple[tuple[str, tuple[str, bytes, str]], ...] = (),
        idempotency_key: str | None = None,
        purpose: Purpose = "poll",
        download: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> UpstreamRequest:
        """One request to the gateway with the call's extra headers, query and body merged in
        last (an extra wins over a same-named field, as in openai-python)."""
        headers = {
            "Authorization": f"Bearer {self._api_key.reveal()}",
            **(headers or {}),
            **call.headers,
        }
        if idempotency_key:  # one header, whatever case the caller's extra_headers used
            headers = {k: v for k, v in headers.items() if k.lower() != "idempotency-key"}
            headers["Idempotency-Key"] = idempotency_key
        url = self._url(path, {**(query or {}), **call.query})
        if json_body is None:
            return UpstreamRequest(method, url, headers, purpose=purpose, download=download)
        fields = {**json_body, **call.body}
        if not files:
            return UpstreamRequest(method, url, headers, json=fields, purpose=purpose)
        data = tuple((k, _form_value(v)) for k, v in fields.items())
        return UpstreamRequest(method, url, headers, data=data, files=files, purpose=purpose)

    # -- answers -------------------------------------------------------------------------------
    def _error(self, response: UpstreamResponse) -> ReapiError:
        try:
            error = response.json(_PROVIDER).get("error") or {}
        except (APIResponseError, AttributeError):
            error = {}
        error = error if isinstance(error, dict) else {}
        message = str(error.get("message") or f"the gateway answered HTTP {response.status}")
        code = error.get("code") if isinstance(error.get("code"), str) else None
        common: dict[str, Any] = {
            "code": code,
            "provider": _PROVIDER,
            "status": response.status,
            "request_id": response.header("x-request-id"),
            "param": error.get("param") if isinstance(error.get("param"), str) else None,
        }
        status = response.status
        retry_after = parse_retry_after(response.header("retry-after"))
        if status == 429:
            return RateLimitError(message, retry_after=retry_after, **common)
        if status == 404 and code == "model_not_found":
            return ModelNotFoundError(message, **common)
        kinds: dict[int, type[ReapiError]] = {
            400: InvalidRequestError,
            401: AuthenticationError,
            402: InsufficientCreditsError,
            403: PermissionDeniedError,
            404: NotFoundError,
            409: InvalidRequestError,
            413: InvalidRequestError,
            422: InvalidRequestError,
        }
        kind = kinds.get(status, InternalServerError if status >= 500 else APIStatusError)
        error = kind(message, **common)
        error.retry_after = retry_after
        return error

    def _parse(self, response: UpstreamResponse, model: type[M]) -> M:
        if response.status >= 400:
            raise self._error(response)
        note_answer(response)
        body = response.json(_PROVIDER)
        return translated(
            lambda: model.model_validate(body),
            ValidationError,
            lambda _: APIResponseError(
                "the gateway's answer does not have the expected shape", provider=_PROVIDER
            ),
        )

    # -- images --------------------------------------------------------------------------------
    def images(
        self,
        params: ImageParams,
        payload: Payload,
        call: CallOptions,
        *,
        edit: bool,
        idempotency_key: str | None,
    ) -> Protocol[ImagesResponse]:
        fields: dict[str, Any] = drop_none(
            {
                "model": params.model,
                "prompt": payload.get("prompt"),
                "n": params.n,
                "size": params.size,
                "aspect_ratio": params.aspect_ratio,
                "resolution": params.resolution,
                "quality": params.quality,
                "background": params.background,
                "output_format": params.output_format,
                "output_compression": params.output_compression,
                "moderation": params.moderation,
                "response_format": params.response_format,
                "input_fidelity": params.input_fidelity,
                "seed": params.seed,
                "user": payload.get("user"),
            }
        )
        files: list[tuple[str, tuple[str, bytes, str]]] = []
        if edit:
            images: list[File] = list(payload.get("images") or ())
            name = "image[]" if len(images) > 1 else "image"
            files = [(name, (f.filename, f.content, f.content_type)) for f in images]
            mask: File | None = payload.get("mask")
            if mask is not None:
                files.append(("mask", (mask.filename, mask.content, mask.content_type)))
        request = self._request(
            "POST",
            "images/edits" if edit else "images/generations",
            call,
            json_body=fields,
            files=tuple(files),
            idempotency_key=idempotency_key,
            purpose="create",
        )
        response = yield request
        return self._parse(response, ImagesResponse)

    def image_stream(
        self, params: ImageParams, payload: Payload, call: CallOptions, *, edit: bool
    ) -> UpstreamRequest:
        """The request of a streamed image call (`stream: true`), read by the engine as it
        comes: its events are `stream_event`'s."""
        protocol = self.images(params, payload, call, edit=edit, idempotency_key=None)
        request = next(protocol)
        protocol.close()
        assert isinstance(request, UpstreamRequest)
        extra = {"stream": True, "partial_images": params.partial_images or 0}
        headers = {**request.headers, "Accept": "text/event-stream"}
        if request.files:
            data = (*request.data, *((k, _form_value(v)) for k, v in extra.items()))
            return replace(request, headers=headers, data=data)
        return replace(request, headers=headers, json={**request.json, **extra})

    def stream_error(self, status: int, content: bytes) -> ReapiError:
        """The error of a refused stream (its JSON body), or of an `error` event (its data)."""
        return self._error(UpstreamResponse(status, {}, content))

    def stream_event(self, event: ServerSentEvent) -> ImageStreamEvent:
        data = event.json(_PROVIDER)
        if isinstance(data, dict) and data.get("error"):
            raise self.stream_error(_status_of(data["error"]), event.data.encode())
        return translated(
            lambda: ImageStreamEvent.model_validate(data),
            ValidationError,
            lambda _: APIResponseError(
                "the gateway sent an event that does not have the expected shape",
                provider=_PROVIDER,
            ),
        )

    # -- videos --------------------------------------------------------------------------------
    def create_video(
        self,
        params: VideoParams,
        payload: Payload,
        call: CallOptions,
        *,
        idempotency_key: str | None,
    ) -> Protocol[Video]:
        fields: dict[str, Any] = drop_none(
            {
                "model": params.model,
                "prompt": payload.get("prompt"),
                "seconds": str(params.seconds) if params.seconds is not None else None,
                "size": params.size,
                "aspect_ratio": params.aspect_ratio,
                "resolution": params.resolution,
                "seed": params.seed,
            }
        )
        reference = payload.get("input_reference")
        files: tuple[tuple[str, tuple[str, bytes, str]], ...] = ()
        if isinstance(reference, File):
            files = (
                (
                    "input_reference",
                    (reference.filename, reference.content, reference.content_type),
                ),
            )
        elif isinstance(reference, str):
            fields["input_reference"] = {"image_url": reference}
        request = self._request(
            "POST",
            "videos",
            call,
            json_body=fields,
            files=files,
            idempotency_key=idempotency_key,
            purpose="create",
        )
        response = yield request
        return self._parse(response, Video)

    def retrieve_video(self, video_id: str, call: CallOptions) -> Protocol[Video]:
        response = yield self._request("GET", f"videos/{video_id}", call)
        return self._parse(response, Video)

    def video_events(
        self, video_id: str, call: CallOptions, last_event_id: str | None
    ) -> UpstreamRequest:
        """The request for a video's event stream (read by the engine as it comes)."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        return self._request("GET", f"videos/{video_id}/events", call, headers=headers)

    def parse_video(self, data: str) -> Video | None:
        """The video object of an event, or None when it is not one."""
        try:
            return Video.model_validate_json(data)
        except ValidationError:
            return None

    def list_videos(
        self, call: CallOptions, *, limit: int, after: str | None, order: str
    ) -> Protocol[VideoList]:
        query = drop_none({"limit": limit, "order": order, "after": after})
        response = yield self._request("GET", "videos", call, query=query)
        return self._parse(response, VideoList)

    def delete_video(self, video_id: str, call: CallOptions) -> Protocol[VideoDeleted]:
        response = yield self._request("DELETE", f"videos/{video_id}", call, purpose="cancel")
        return self._parse(response, VideoDeleted)

    def video_content(
        self, video_id: str, variant: str, call: CallOptions
    ) -> Protocol[BinaryContent]:
        response: UpstreamResponse = yield self._request(
            "GET",
            f"videos/{video_id}/content",
            call,
            query={"variant": variant},
            purpose="download",
            download=True,
        )
        if response.status >= 400:
            raise self._error(response)
        note_answer(response)
        return BinaryContent(
            response.content, response.header("content-type") or "application/octet-stream"
        )

    def list_models(self, call: CallOptions) -> Protocol[ModelList]:
        response = yield self._request("GET", "models", call)
        return self._parse(response, ModelList)
