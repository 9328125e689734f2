"""GET /v1/models and /v1/models/{id}: the catalog models this gateway can serve, and the
calling key may use (its allowlist)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.responses import Response

from reapi import ModelNotFoundError
from reapi.catalog import ModelSpec

from ..api_keys.auth import Principal
from ..offering import servable
from ..runtime import Runtime
from .dependencies import Caller, Rt
from .responses import Model, ModelList, error_responses, json_response

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["Models"])


def _servable(rt: Runtime, principal: Principal) -> dict[str, ModelSpec]:
    """Models servable here (a route whose provider has a key) that the key may use."""
    return {
        model_id: spec
        for model_id, spec in servable(rt.catalog, rt.core.connections).items()
        if principal.allows(model_id)
    }


def _model(spec: ModelSpec) -> dict[str, Any]:
    return {"id": spec.id, "object": "model", "created": spec.created, "owned_by": spec.owned_by}


@router.get("/models", response_model=ModelList, responses=error_responses(401, 429))
async def list_models(rt: Rt, principal: Caller) -> Response:
    models = _servable(rt, principal).values()
    return json_response({"object": "list", "data": [_model(s) for s in models]})


@router.get("/models/{model}", response_model=Model, responses=error_responses(400, 401, 404, 429))
async def retrieve_model(
    model: Annotated[str, Path(max_length=200)], rt: Rt, principal: Caller
) -> Response:
    spec = _servable(rt, principal).get(model)
    if spec is None:
        raise ModelNotFoundError("the model does not exist on this gateway", param="model")
    return json_response(_model(spec))
