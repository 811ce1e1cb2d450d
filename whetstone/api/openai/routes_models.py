"""/v1/models: OpenAI's model routes (catalog and fine-tuned models)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from whetstone.api.identity import current_caller
from whetstone.api.openai import models
from whetstone.api.openai.errors import error_response
from whetstone.api.openai.schemas import OpenAIDeleted, OpenAIModel, OpenAIModelList
from whetstone.runtime import get_platform

router = Router()

# A fine-tuned model's name holds ':' and, for a local base, '/': the rest of the path.
ModelName = Annotated[str, Path(description="Catalog id or fine-tuned model name.")]


@router.get("/models", summary="List models (OpenAI)")
def list_models() -> OpenAIModelList:
    return OpenAIModelList(data=models.list_models(get_platform(), current_caller(router)))


@router.get("/models/<model>", summary="Get a model (OpenAI)")
def get_model(model: ModelName) -> OpenAIModel:
    return models.get_model(get_platform(), current_caller(router), unquote(model))


@router.delete("/models/<model>", summary="Delete a fine-tuned model (OpenAI)")
def delete_model(model: ModelName) -> Response[Any]:
    model = unquote(model)
    if not models.is_fine_tuned(model):
        return error_response(
            HTTPStatus.FORBIDDEN,
            f"{model!r} is a catalog model; only fine-tuned models (ft:...) can be deleted",
            "model_not_deletable",
            "model",
        )
    models.delete_model(get_platform(), current_caller(router), model)
    return Response(
        status_code=HTTPStatus.OK,
        content_type="application/json",
        body=OpenAIDeleted(id=model, object="model").model_dump_json(),
    )
