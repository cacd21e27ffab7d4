"""Issue 12 part 6: `/metrics` and the console listen on loopback unless the settings say otherwise.

Each server is started the way its command starts it (on the settings' host) and probed from this
machine's own non-loopback address: refused by default, answered once the settings name all
interfaces (so the probe can fail)."""
from __future__ import annotations

import socket
import urllib.request

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from borderfuse.console.server import serve_in_thread
from borderfuse.ingest.metrics import ServiceMetrics
from borderfuse.ingest.settings import Settings, load_settings


def _outward_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.254", 9))
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


OUTWARD = _outward_address()
needs_outward = pytest.mark.skipif(OUTWARD is None, reason="no non-loopback interface to probe from")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("section", ["metrics", "console"])
def test_the_defaults_are_loopback(section):
    assert getattr(Settings(), section).host == "127.0.0.1"
    assert getattr(load_settings(None, environ={}), section).host == "127.0.0.1"


def _serve_metrics(host: str):
    server = ServiceMetrics().start_http_server(host, 0)   # as `borderfuse run` does with metrics.host
    return server.port, server.stop


def _serve_console(host: str):
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("console"))])
    port = _free_port(host)
    server, thread = serve_in_thread(app, host, port)   # as `borderfuse console` does with console.host

    def stop():
        server.should_exit = True
        thread.join(timeout=10)
    return port, stop


@needs_outward
@pytest.mark.parametrize("serve", [_serve_metrics, _serve_console], ids=["metrics", "console"])
@pytest.mark.parametrize("environ, outward", [({}, False), ({"BORDERFUSE_METRICS__HOST": "0.0.0.0",
                                                             "BORDERFUSE_CONSOLE__HOST": "0.0.0.0"}, True)])
def test_only_loopback_answers_unless_the_settings_say_otherwise(serve, environ, outward):
    settings = load_settings(None, environ=environ)
    host = settings.metrics.host if serve is _serve_metrics else settings.console.host
    port, stop = serve(host)
    try:
        assert _answers("127.0.0.1", port)
        assert _answers(OUTWARD, port) is outward
        if serve is _serve_metrics and outward:
            assert b"borderfuse_" in urllib.request.urlopen(f"http://{OUTWARD}:{port}/metrics", timeout=5).read()
    finally:
        stop()
