"""The console's web app (Starlette): the page, its JSON API and the push stream (Server-Sent Events).

    GET  /                                  the page (console/web/app, vendor bundle under /vendor)
    GET  /api/geography                     map layers from the ICD geography files
    GET  /api/incidents[?sector=S1,S2]      every incident's current state with its actions, newest first
    GET  /api/incidents/{id}                one incident
    GET  /api/tracks                        live confirmed tracks with their trails
    GET  /api/events                        push stream: a snapshot, then incident / tracks / clock events
    POST /api/incidents/{id}/ack|assign|resolve   {"by": ..., "unit": ... (assign), "note": ... (resolve)}

A malformed or unknown request gets a 4xx JSON {"error": message} and changes nothing.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from borderfuse.console.state import Action, ActionError, ConsoleState

log = logging.getLogger("borderfuse.console")
WEB_DIR = Path(__file__).resolve().parent / "web"
APP_DIR = WEB_DIR / "app"
VENDOR_DIR = WEB_DIR / "vendor"
VENDOR_FILES = ("leaflet.js", "leaflet.css", "milsymbol.js")
CLIENT_QUEUE_MAX = 2000       # events buffered per browser; a browser that falls this far behind reconnects
KEEPALIVE_S = 15.0
CLOCK_INTERVAL_S = 1.0


class ActionSinkError(RuntimeError):
    """An action could not be recorded (e.g. the broker is unreachable); answered with 503."""


def missing_vendor_files(vendor_dir: Path = VENDOR_DIR) -> list[str]:
    return [name for name in VENDOR_FILES if not (vendor_dir / name).is_file()]


class PushHub:
    """Fans events out to every connected browser. `publish` may be called from any thread."""

    def __init__(self):
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queues: set[asyncio.Queue] = set()
        self.closed = False

    def close(self) -> None:
        """End every open stream (the server is stopping: browsers reconnect to whoever serves next)."""
        self.closed = True
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._end_all)
            except RuntimeError:
                pass

    def _end_all(self) -> None:
        for queue in list(self.queues):
            self.queues.discard(queue)
            while True:
                try:
                    queue.put_nowait(None)
                    break
                except asyncio.QueueFull:
                    queue.get_nowait()

    def publish(self, event: dict) -> None:
        loop = self.loop
        if loop is None or loop.is_closed() or not self.queues:
            return
        text = json.dumps(event, separators=(",", ":"))
        try:
            loop.call_soon_threadsafe(self._fanout, text)
        except RuntimeError:  # the loop closed between the check and the call (shutdown)
            pass

    def _fanout(self, text: str) -> None:
        for queue in list(self.queues):
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:
                self.queues.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)  # tells that browser's stream to end; EventSource reconnects


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(state: ConsoleState, layers: dict, submit: Callable[[Action], None], *,
               clock_us: Callable[[], int], mode: str, console_id: str, basemap_url: str | None = None,
               app_dir: Path = APP_DIR, vendor_dir: Path = VENDOR_DIR) -> Starlette:
    """The app over `state`. `submit(action)` records an action (raises ActionSinkError when it cannot)."""
    hub = PushHub()
    state.listeners.append(hub.publish)
    sector_ids = set(layers.get("sector_ids", ()))

    def sectors_param(request: Request) -> set[str] | None:
        raw = request.query_params.get("sector")
        if raw is None or raw == "":
            return None
        wanted = {s.strip() for s in raw.split(",") if s.strip()}
        unknown = wanted - sector_ids
        if unknown:
            raise HTTPException(400, f"unknown sector(s) {', '.join(sorted(unknown))}; known: "
                                f"{', '.join(sorted(sector_ids))}")
        return wanted

    async def index(request: Request) -> Response:
        return FileResponse(app_dir / "index.html", headers={"Cache-Control": "no-cache"})

    async def geography(request: Request) -> Response:
        return JSONResponse({**layers, "basemap_url": basemap_url, "mode": mode, "console": console_id})

    async def incidents(request: Request) -> Response:
        entries = state.entries(sectors_param(request))
        return JSONResponse({"clock_us": clock_us(), "count": len(entries), "incidents": entries})

    async def incident(request: Request) -> Response:
        incident_id = request.path_params["incident_id"]
        if not state.knows(incident_id):
            return _error(404, f"unknown incident {incident_id!r}")
        return JSONResponse([e for e in state.entries() if e["incident_id"] == incident_id][0])

    async def tracks(request: Request) -> Response:
        snapshot = state.snapshot()
        return JSONResponse({"clock_us": snapshot["clock_us"], "tracks": snapshot["tracks"]})

    async def act(request: Request) -> Response:
        incident_id, action_name = request.path_params["incident_id"], request.path_params["action"]
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "the request body is not JSON; send e.g. {\"by\": \"operator name\"}")
        try:
            action = Action.from_request(incident_id, action_name, body, time.time_ns() // 1000, console_id)
        except ActionError as exc:
            return _error(exc.status, str(exc))
        if not state.knows(incident_id):
            return _error(404, f"unknown incident {incident_id!r}")
        if state.status(incident_id) == "resolved":
            return _error(409, f"incident {incident_id} is already resolved")
        try:
            await asyncio.get_running_loop().run_in_executor(None, submit, action)
        except ActionSinkError as exc:
            return _error(503, f"action not recorded: {exc}")
        entry = [e for e in state.entries() if e["incident_id"] == incident_id][0]
        return JSONResponse({"action": action.to_json_dict(), "entry": entry}, status_code=201)

    async def events(request: Request) -> Response:
        if hub.closed:
            return _error(503, "the console is stopping")
        queue: asyncio.Queue = asyncio.Queue(maxsize=CLIENT_QUEUE_MAX)
        hub.queues.add(queue)

        async def stream():
            try:
                yield f"data: {json.dumps(state.snapshot(), separators=(',', ':'))}\n\n"
                while True:
                    try:
                        text = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_S)
                    except asyncio.TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    if text is None:
                        return
                    # push time, for the browser's push -> drawn lag (same machine clock in tests/benchmarks)
                    yield f'data: {{"sent_ms":{time.time() * 1000:.1f},{text[1:]}\n\n'
            finally:
                hub.queues.discard(queue)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def api_not_found(request: Request) -> Response:
        return _error(404, f"no such API endpoint: {request.method} {request.url.path}")

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, exc.detail)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        hub.loop = asyncio.get_running_loop()

        async def tick():
            while True:
                await asyncio.sleep(CLOCK_INTERVAL_S)
                hub.publish({"kind": "clock", "clock_us": clock_us()})
        task = asyncio.create_task(tick())
        try:
            yield
        finally:
            task.cancel()
            for queue in list(hub.queues):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)
            hub.loop = None

    routes = [
        Route("/", index),
        Route("/api/geography", geography),
        Route("/api/incidents", incidents),
        Route("/api/incidents/{incident_id}", incident),
        Route("/api/incidents/{incident_id}/{action}", act, methods=["POST"]),
        Route("/api/tracks", tracks),
        Route("/api/events", events),
        Route("/api/{rest:path}", api_not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        Mount("/static", StaticFiles(directory=app_dir), name="static"),
        Mount("/vendor", StaticFiles(directory=vendor_dir, check_dir=False), name="vendor"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.hub = hub
    return app
