"""The control plane under /_emulator/ (not part of the AutoSync API; no auth).

  GET    /_emulator/truth              every live object as GET {id} returns it, and deleted ids
  GET    /_emulator/clock              {"clock": "..."}
  POST   /_emulator/advance            {"hours": h} | {"minutes": m} | {"seconds": s} -> {"clock", "events"}
  POST   /_emulator/reset              {"seed"?, "shops"?, "work_orders"?, "start"?} rebuild the world
  GET    /_emulator/settings           current API-variant settings
  PATCH  /_emulator/settings           change some settings
  GET    /_emulator/faults             rules with how often each fired
  PUT    /_emulator/faults             replace the rules (a JSON list; see faults.py)
  GET    /_emulator/list-hooks         writes run just before given list pages (see faults.ListHooks)
  PUT    /_emulator/list-hooks         replace them (a JSON list; [] removes them all)
  GET    /_emulator/requests           {"total", "by_route": {"GET /v1/...": {"200": n}}, "rate_limited",
                                        "by_window": {"<window end>": {"served": n, "rate_limited": n}}}
  DELETE /_emulator/requests           reset the request log
  POST   /_emulator/api-keys           {"environment"?, "shops"?} -> {"api_key"}
  POST   /_emulator/oauth-clients      {"scopes"?, "shops"?} -> {"client_id", "client_secret"}
  POST   /_emulator/activity           {"hours_per_second"?, "tick_seconds"?} start background activity
  DELETE /_emulator/activity           stop it
  GET    /_emulator/webhook-deliveries the delivery attempts made so far
"""
from __future__ import annotations

from typing import Any, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import ApiError
from .faults import apply_writes

JSON = "application/json"


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_request", "The body must be JSON.") from None


async def _object_body(request: Request) -> dict:
    body = await _body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "The body must be a JSON object.")
    return body


def _bad(exc: Exception) -> ApiError:
    return ApiError(422, "validation_error", str(exc))


def routes(core_ref: Callable) -> list:
    async def truth(request: Request) -> Response:
        return Response(core_ref().truth_bytes(), media_type=JSON)

    async def clock(request: Request) -> Response:
        core = core_ref()
        return _json({"clock": core.backend.now_iso()})

    async def advance(request: Request) -> Response:
        body = await _object_body(request)
        seconds = 0.0
        for unit, factor in (("hours", 3600), ("minutes", 60), ("seconds", 1)):
            value = body.get(unit)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value > 24 * 3650:
                    raise ApiError(422, "validation_error", f"'{unit}' must be a number >= 0.", unit)
                seconds += value * factor
        try:
            result = core_ref().advance(seconds)
        except ValueError as exc:
            raise _bad(exc) from None
        return _json(result)

    async def reset(request: Request) -> Response:
        body = await _object_body(request)
        allowed = {"seed", "shops", "work_orders", "start"}
        if set(body) - allowed:
            raise ApiError(422, "validation_error", f"reset accepts only {sorted(allowed)}.")
        try:
            core_ref().reset(**body)
        except (ValueError, TypeError) as exc:
            raise _bad(exc) from None
        return _json({"clock": core_ref().backend.now_iso()})

    async def settings(request: Request) -> Response:
        core = core_ref()
        if request.method == "PATCH":
            body = await _object_body(request)
            try:
                return _json(core.configure(**body))
            except ValueError as exc:
                raise _bad(exc) from None
        return _json(core.settings)

    async def faults(request: Request) -> Response:
        core = core_ref()
        if request.method == "PUT":
            try:
                core.faults.set(await _body(request))
            except ValueError as exc:
                raise _bad(exc) from None
        return _json(core.faults.snapshot())

    async def list_hooks(request: Request) -> Response:
        core = core_ref()
        if request.method == "PUT":
            try:
                core.list_hooks.set(await _body(request), apply_writes)
            except ValueError as exc:
                raise _bad(exc) from None
        return _json(core.list_hooks.snapshot())

    async def requests_log(request: Request) -> Response:
        core = core_ref()
        if request.method == "DELETE":
            core.request_log.reset()
        return _json(core.request_log.snapshot())

    async def api_keys(request: Request) -> Response:
        body = await _object_body(request)
        try:
            key = core_ref().auth.create_api_key(body.get("environment"), body.get("shops"))
        except (ValueError, TypeError) as exc:
            raise _bad(exc) from None
        return _json({"api_key": key}, 201)

    async def oauth_clients(request: Request) -> Response:
        body = await _object_body(request)
        try:
            client_id, secret = core_ref().auth.create_oauth_client(body.get("scopes"), body.get("shops"))
        except (ValueError, TypeError) as exc:
            raise _bad(exc) from None
        return _json({"client_id": client_id, "client_secret": secret}, 201)

    async def activity(request: Request) -> Response:
        core = core_ref()
        if request.method == "DELETE":
            core.stop_background_activity()
            return _json({"running": False, "clock": core.backend.now_iso()})
        body = await _object_body(request)
        try:
            core.start_background_activity(**body)
        except (ValueError, TypeError) as exc:
            raise _bad(exc) from None
        return _json({"running": True, "clock": core.backend.now_iso()})

    async def deliveries(request: Request) -> Response:
        return _json(core_ref().webhooks.deliveries())

    return [
        Route("/truth", truth, methods=["GET"]),
        Route("/clock", clock, methods=["GET"]),
        Route("/advance", advance, methods=["POST"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/settings", settings, methods=["GET", "PATCH"]),
        Route("/faults", faults, methods=["GET", "PUT"]),
        Route("/list-hooks", list_hooks, methods=["GET", "PUT"]),
        Route("/requests", requests_log, methods=["GET", "DELETE"]),
        Route("/api-keys", api_keys, methods=["POST"]),
        Route("/oauth-clients", oauth_clients, methods=["POST"]),
        Route("/activity", activity, methods=["POST", "DELETE"]),
        Route("/webhook-deliveries", deliveries, methods=["GET"]),
    ]
