"""GET /v1/models and /v1/models/{id}: the catalog models this gateway can serve."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.responses import Response

from reapi import ModelNotFoundError
from reapi.catalog import ModelSpec

from ..offering import servable
from ..runtime import Runtime
from .dependencies import Caller, Rt
from .responses import Model, ModelList, error_responses, json_response

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["Models"])


def _servable(rt: Runtime) -> dict[str, ModelSpec]:
    return servable(rt.catalog, rt.core.connections)


def _model(spec: ModelSpec) -> dict[str, Any]:
    return {"id": spec.id, "object": "model", "created": spec.created, "owned_by": spec.owned_by}


@router.get("/models", response_model=ModelList, responses=error_responses(401, 429))
async def list_models(rt: Rt, _: Caller) -> Response:
    return json_response({"object": "list", "data": [_model(s) for s in _servable(rt).values()]})


@router.get("/models/{model}", response_model=Model, responses=error_responses(400, 401, 404, 429))
async def retrieve_model(
    model: Annotated[str, Path(max_length=200)], rt: Rt, _: Caller
) -> Response:
    spec = _servable(rt).get(model)
    if spec is None:
        raise ModelNotFoundError("the model does not exist on this gateway", param="model")
    return json_response(_model(spec))
