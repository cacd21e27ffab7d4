"""The console's login and logout: a plain HTML form (no script needed), a signed session cookie that
carries only the user name and the login time, and an audit record for each login, failed login and
logout. The sectors a user sees are looked up on every request (a user removed from the users file
is out at once)."""
from __future__ import annotations

import asyncio
import html
import json
import logging
import string
import time
import urllib.parse
from pathlib import Path

import attrs
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from borderfuse.console.throttle import LoginThrottle

log = logging.getLogger("borderfuse.console")
MAX_FIELD = 200
WRONG = "Wrong user name or password. Check Caps Lock and try again."
NO_SECTORS = "You are not assigned to any sector this console serves. Ask your supervisor."
THROTTLED = ("Too many failed logins from this computer. Try again in {minutes} min, or ask your shift "
             "supervisor to check your account.")
AUDIT_DOWN = ("The login cannot be recorded right now (the audit trail is unreachable), so it is refused. "
              "Try again in a minute; if it keeps happening, call the duty technician.")


@attrs.frozen
class Principal:
    name: str
    sectors: frozenset[str]


def principal_of(request: Request, access, served: frozenset[str]) -> Principal | None:
    """The logged-in user of this request (None: no valid session, or the user no longer exists)."""
    name = request.session.get("user")
    if not isinstance(name, str):
        return None
    sectors = access.auth.sectors_of(name)
    if sectors is None:
        request.session.clear()
        return None
    return Principal(name, frozenset(sectors) & served)


def _page(app_dir: Path, message: str = "", user: str = "", status: int = 200) -> HTMLResponse:
    template = string.Template((app_dir / "login.html").read_text())
    text = template.substitute(message=html.escape(message), hidden="" if message else "hidden",
                               user=html.escape(user, quote=True),   # kept: retyping only the password
                               focus_user="" if user else "autofocus", focus_password="autofocus" if user else "")
    return HTMLResponse(text, status_code=status, headers={"Cache-Control": "no-store"})


async def _credentials(request: Request) -> tuple[str, str, bool]:
    """(user, password, wants_json) from a form post or a JSON body."""
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            doc = {}
        doc = doc if isinstance(doc, dict) else {}
        user, password, wants_json = doc.get("user"), doc.get("password"), True
    else:
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
        user, password, wants_json = (form.get("user") or [""])[0], (form.get("password") or [""])[0], False
    user = user.strip() if isinstance(user, str) else ""
    password = password if isinstance(password, str) else ""
    return user[:MAX_FIELD], password[:MAX_FIELD * 5], wants_json


def login_routes(access, served: frozenset[str], app_dir: Path, console_id: str,
                 throttle: LoginThrottle | None = None) -> list[Route]:
    throttle = throttle or LoginThrottle()

    def where(request: Request) -> str:
        return request.client.host if request.client else ""

    def write_audit(what: str, who: str, request: Request, **details) -> None:
        access.audit.write(what, who, where_from=where(request), console=console_id, **details)

    async def login_page(request: Request) -> Response:
        if principal_of(request, access, served) is not None:
            return RedirectResponse("/", status_code=303)
        return _page(app_dir)

    async def login(request: Request) -> Response:
        user, password, wants_json = await _credentials(request)
        loop = asyncio.get_running_loop()

        def refuse(message: str, status: int, headers: dict | None = None):
            response = JSONResponse({"error": message}, status_code=status) if wants_json \
                else _page(app_dir, message, user, status)
            response.headers.update(headers or {})
            return response
        wait_s = throttle.wait_s(user, where(request))
        if wait_s > 0:   # not even checked: a right guess now would tell the guesser it was right
            try:
                await loop.run_in_executor(None, lambda: write_audit("console.login_throttled", user or "(empty)",
                                                                     request, retry_after_s=int(wait_s) + 1))
            except Exception as exc:  # noqa: BLE001 - refused anyway
                log.error("console: throttled login of %r not audited: %s", user, exc)
            return refuse(THROTTLED.format(minutes=int(wait_s // 60) + 1), 429, {"Retry-After": str(int(wait_s) + 1)})
        found = await loop.run_in_executor(None, access.auth.verify, user, password) if user and password else None
        sectors = sorted(set(found.sectors) & served) if found else []
        if found is None:
            throttle.failed(user, where(request))
        else:
            throttle.succeeded(user, where(request))
        if found is None or not sectors:
            reason = "no sector served here" if found else "wrong user name or password"
            try:
                await loop.run_in_executor(None, lambda: write_audit("console.login_failed", user or "(empty)",
                                                                     request, reason=reason))
            except Exception as exc:  # noqa: BLE001 - the writer's own error; the login is refused anyway
                log.error("console: failed login of %r not audited: %s", user, exc)
            return refuse(WRONG if found is None else NO_SECTORS, 401 if found is None else 403)
        try:
            await loop.run_in_executor(None, lambda: write_audit("console.login", found.name, request,
                                                                 sectors=sectors))
        except Exception as exc:  # noqa: BLE001 - fail closed: no unrecorded consultation
            log.error("console: login of %s refused: the audit record was not written: %s", found.name, exc)
            return refuse(AUDIT_DOWN, 503)
        request.session.clear()
        request.session.update({"user": found.name, "since": int(time.time())})
        if wants_json:
            return JSONResponse({"user": found.name, "sectors": sectors})
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        name = request.session.get("user")
        request.session.clear()
        if isinstance(name, str):
            try:
                await asyncio.get_running_loop().run_in_executor(None, lambda: write_audit("console.logout", name,
                                                                                           request))
            except Exception as exc:  # noqa: BLE001 - the session is ended regardless
                log.error("console: logout of %s not audited: %s", name, exc)
        return RedirectResponse("/login", status_code=303)

    return [Route("/login", login_page, methods=["GET"]), Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["GET", "POST"])]
