"""Small helpers shared by the sandbox control endpoints (JSON bodies in, JSON errors out)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


def json_error(status: int, error: str, **extra: Any) -> web.HTTPException:
    """An HTTP error whose body is `{"error": ..., ...}` JSON."""
    body = json.dumps({"error": error, **extra})
    exc_class = {400: web.HTTPBadRequest, 404: web.HTTPNotFound, 409: web.HTTPConflict}
    return exc_class.get(status, web.HTTPBadRequest)(text=body, content_type="application/json")


async def read_model(
    request: web.Request, model: type[ModelT], max_bytes: int | None = None
) -> ModelT:
    """Parse and validate a JSON request body (an empty body means `{}`); with `max_bytes`,
    a body may be that long rather than the application's `client_max_size`."""
    raw = await (request.read() if max_bytes is None else _read_bounded(request, max_bytes))
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        details = json.loads(exc.json(include_url=False, include_input=False))
        raise json_error(400, "invalid_request", details=details) from exc


async def _read_bounded(request: web.Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return bytes(body)
