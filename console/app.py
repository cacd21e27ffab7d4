"""The console's web app (Starlette): the login, the page, its JSON API and the push stream (Server-Sent Events).

    GET  /login, POST /login                the login page; POST takes a form or JSON {"user", "password"}
    POST /logout (GET too)                  ends the session
    GET  /                                  the page (console/web/app, vendor bundle under /vendor)
    GET  /api/me                            the logged-in user and the sectors they see
    GET  /api/geography                     map layers from the ICD geography files
    GET  /api/incidents[?sector=S1,S2]      the user's sectors' incidents with their actions, newest first
    GET  /api/incidents/{id}                one incident
    GET  /api/tracks                        live confirmed tracks (the user's sectors) with their trails
    GET  /api/events                        push stream: a snapshot, then incident / tracks / clock events
    POST /api/incidents/{id}/ack|assign|resolve   {"unit": ... (assign), "note": ... (resolve)}

Every /api route and the push stream need a session (a signed cookie, HttpOnly, SameSite=Strict):
without one /api answers 401 and / redirects to /login. A user sees and acts on their own sectors only
(filtered here, server-side); another sector's incident answers 403. Logins (good and bad), logouts,
actions and refusals are written to the audit trail (who, what, when, from where).
A malformed or unknown request gets a 4xx JSON {"error": message} and changes nothing.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from borderfuse.console.login import Principal, login_routes, principal_of
from borderfuse.console.state import Action, ActionError, ConsoleState

log = logging.getLogger("borderfuse.console")
WEB_DIR = Path(__file__).resolve().parent / "web"
APP_DIR = WEB_DIR / "app"
VENDOR_DIR = WEB_DIR / "vendor"
VENDOR_FILES = ("leaflet.js", "leaflet.css", "milsymbol.js")
CLIENT_QUEUE_MAX = 2000       # events buffered per browser; a browser that falls this far behind reconnects
KEEPALIVE_S = 15.0
CLOCK_INTERVAL_S = 1.0
SESSION_COOKIE = "borderfuse_session"


class ActionSinkError(RuntimeError):
    """An action could not be recorded (e.g. the broker is unreachable); answered with 503."""


@attrs.frozen
class Access:
    """Who may use the console: `auth` checks passwords (`verify(name, password) -> user | None`) and
    says a user's sectors (`sectors_of(name)`); `audit` writes the audit trail (`write(what, who,
    where_from=..., **details)`, raising on failure); `secret` signs the session cookies."""

    auth: Any
    audit: Any
    secret: str = attrs.field(repr=False)
    max_age_s: int = 12 * 3600
    https_only: bool = False


def missing_vendor_files(vendor_dir: Path = VENDOR_DIR) -> list[str]:
    return [name for name in VENDOR_FILES if not (vendor_dir / name).is_file()]


def visible_event(event: dict, sectors: frozenset[str]) -> dict | None:
    """The part of a state event a user of `sectors` may see (None: nothing)."""
    kind = event.get("kind")
    if kind == "incident":
        return event if event["entry"]["incident"].get("sector") in sectors else None
    if kind == "tracks":
        tracks = [t for t in event["tracks"] if t.get("sector") in sectors]
        gone = [i for i, s in event.get("gone_sectors", {}).items() if s in sectors]
        return {"kind": "tracks", "tracks": tracks, "gone": gone} if tracks or gone else None
    return event


class PushHub:
    """Fans events out to every connected browser, each filtered to its user's sectors. `publish` may
    be called from any thread."""

    def __init__(self):
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queues: dict[asyncio.Queue, frozenset[str]] = {}
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
            self.queues.pop(queue, None)
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
        try:
            loop.call_soon_threadsafe(self._fanout, event)
        except RuntimeError:  # the loop closed between the check and the call (shutdown)
            pass

    def _fanout(self, event: dict) -> None:
        texts: dict[frozenset[str], str | None] = {}   # one filter and one encoding per distinct sector set
        for queue, sectors in list(self.queues.items()):
            if sectors not in texts:
                shown = visible_event(event, sectors)
                texts[sectors] = None if shown is None else json.dumps(shown, separators=(",", ":"))
            text = texts[sectors]
            if text is None:
                continue
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:
                self.queues.pop(queue, None)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)  # tells that browser's stream to end; EventSource reconnects


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(state: ConsoleState, layers: dict, submit: Callable[[Action], None], *, access: Access,
               clock_us: Callable[[], int], mode: str, console_id: str, basemap_url: str | None = None,
               served_sectors: list[str] | None = None, app_dir: Path = APP_DIR,
               vendor_dir: Path = VENDOR_DIR) -> Starlette:
    """The app over `state`. `submit(action)` records an action (raises ActionSinkError when it cannot);
    `served_sectors`: the sectors this console reads (None: all of the geography's)."""
    hub = PushHub()
    state.listeners.append(hub.publish)
    sector_ids = set(layers.get("sector_ids", ()))
    served = frozenset(served_sectors) if served_sectors is not None else frozenset(sector_ids)

    def who(request: Request) -> Principal:
        principal = principal_of(request, access, served)
        if principal is None:
            raise HTTPException(401, "not logged in (or the session ended): log in at /login")
        return principal

    async def audit(http: Request, what: str, principal: Principal, **details) -> None:
        where_from = http.client.host if http.client else ""
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: access.audit.write(what, principal.name, where_from=where_from, console=console_id,
                                                 **details))
        except Exception as exc:  # noqa: BLE001 - the audit writer's own error type; the reply is already decided
            log.error("console: audit record %s for %s not written: %s", what, principal.name, exc)

    def sectors_param(request: Request, principal: Principal) -> set[str]:
        raw = request.query_params.get("sector")
        if raw is None or raw == "":
            return set(principal.sectors)
        wanted = {s.strip() for s in raw.split(",") if s.strip()}
        unknown = wanted - sector_ids
        if unknown:
            raise HTTPException(400, f"unknown sector(s) {', '.join(sorted(unknown))}; known: "
                                f"{', '.join(sorted(sector_ids))}")
        if not wanted <= principal.sectors:
            raise HTTPException(403, f"you see sector(s) {', '.join(sorted(principal.sectors))} only")
        return wanted

    async def own_incident(request: Request, principal: Principal, incident_id: str, what: str) -> None:
        """404 for an unknown incident, 403 (audited) for another sector's."""
        sector = state.sector_of(incident_id)
        if sector is None:
            raise HTTPException(404, f"unknown incident {incident_id!r}")
        if sector not in principal.sectors:
            await audit(request, "console.denied", principal, incident_id=incident_id, sector=sector, request=what)
            raise HTTPException(403, f"incident {incident_id} is not in your sectors "
                                f"({', '.join(sorted(principal.sectors)) or 'none'})")

    async def index(request: Request) -> Response:
        if principal_of(request, access, served) is None:
            return RedirectResponse("/login", status_code=303)
        return FileResponse(app_dir / "index.html", headers={"Cache-Control": "no-cache"})

    async def me(request: Request) -> Response:
        principal = who(request)
        return JSONResponse({"user": principal.name, "sectors": sorted(principal.sectors)})

    async def geography(request: Request) -> Response:
        principal = who(request)
        return JSONResponse({**layers, "basemap_url": basemap_url, "mode": mode, "console": console_id,
                             "user": principal.name, "user_sectors": sorted(principal.sectors)})

    async def incidents(request: Request) -> Response:
        principal = who(request)
        entries = state.entries(sectors_param(request, principal))
        return JSONResponse({"clock_us": clock_us(), "count": len(entries), "incidents": entries})

    async def incident(request: Request) -> Response:
        principal = who(request)
        incident_id = request.path_params["incident_id"]
        await own_incident(request, principal, incident_id, "read")
        return JSONResponse(state.entry(incident_id))

    async def tracks(request: Request) -> Response:
        principal = who(request)
        snapshot = state.snapshot(principal.sectors)
        return JSONResponse({"clock_us": snapshot["clock_us"], "tracks": snapshot["tracks"]})

    async def act(request: Request) -> Response:
        principal = who(request)
        incident_id, action_name = request.path_params["incident_id"], request.path_params["action"]
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "the request body is not JSON; send e.g. {} or {\"unit\": \"patrol 7\"}")
        try:
            action = Action.from_request(incident_id, action_name, body, time.time_ns() // 1000, console_id,
                                         by=principal.name)
        except ActionError as exc:
            return _error(exc.status, str(exc))
        await own_incident(request, principal, incident_id, action_name)
        if state.status(incident_id) == "resolved":
            return _error(409, f"incident {incident_id} is already resolved")
        try:
            await asyncio.get_running_loop().run_in_executor(None, submit, action)
        except ActionSinkError as exc:
            return _error(503, f"action not recorded: {exc}")
        await audit(request, "console.action", principal, incident_id=incident_id, action=action.action,
                    action_id=action.action_id, sector=state.sector_of(incident_id))
        return JSONResponse({"action": action.to_json_dict(), "entry": state.entry(incident_id)}, status_code=201)

    async def events(request: Request) -> Response:
        principal = who(request)
        if hub.closed:
            return _error(503, "the console is stopping")
        queue: asyncio.Queue = asyncio.Queue(maxsize=CLIENT_QUEUE_MAX)
        hub.queues[queue] = principal.sectors
        session_ends = float(request.session.get("since", 0)) + access.max_age_s

        def still_allowed() -> bool:
            """A stream outlives its request: it ends when the session expires or the user's sectors change
            (removed from the users file included); the browser then reconnects, or goes to the login."""
            sectors = access.auth.sectors_of(principal.name)
            return time.time() < session_ends and sectors is not None and frozenset(sectors) & served == \
                principal.sectors

        async def stream():
            try:
                yield f"data: {json.dumps(state.snapshot(principal.sectors), separators=(',', ':'))}\n\n"
                while True:
                    try:
                        text = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_S)
                    except asyncio.TimeoutError:
                        if not still_allowed():
                            return
                        yield ": keepalive\n\n"
                        continue
                    if text is None:
                        return
                    # push time, for the browser's push -> drawn lag (same machine clock in tests/benchmarks)
                    yield f'data: {{"sent_ms":{time.time() * 1000:.1f},{text[1:]}\n\n'
            finally:
                hub.queues.pop(queue, None)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def api_not_found(request: Request) -> Response:
        who(request)
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
        *login_routes(access, served, app_dir, console_id),
        Route("/", index),
        Route("/api/me", me),
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
    # Signed (itsdangerous), HttpOnly, SameSite=Strict: another site's page cannot ride on the session.
    middleware = [Middleware(SessionMiddleware, secret_key=access.secret, session_cookie=SESSION_COOKIE,
                             max_age=access.max_age_s, same_site="strict", https_only=access.https_only)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error})
    app.state.hub = hub
    return app
