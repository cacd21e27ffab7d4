"""CoT events out through pytak: one connection (udp://, udp+wo:// multicast, tcp://, tls://) made by
pytak's protocol_factory, events written by pytak's TXWorker."""
from __future__ import annotations

import asyncio
import warnings
from urllib.parse import urlparse


class CotSendError(RuntimeError):
    """The TAK endpoint cannot be reached or written to; the message names it."""


def _pytak():
    # pytak imports its TLS-enrolment helpers eagerly and warns when their optional extras (aiohttp,
    # cryptography) are absent; udp/tcp/tls output does not use them.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*package is required but not installed", category=UserWarning)
        import pytak
    return pytak


SCHEMES = ("udp", "udp+wo", "udp+broadcast", "udp+multicast", "tcp", "tcp+wo", "tls", "tls+wo", "ssl")


def check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in SCHEMES or not parsed.hostname or not parsed.port:
        raise CotSendError(f"bad CoT URL {url!r}: use SCHEME://HOST:PORT with SCHEME one of {', '.join(SCHEMES)} "
                           f"(e.g. udp+wo://239.2.3.1:6969 for ATAK multicast, tcp://takserver:8087)")
    return url


class CotSender:
    """`async with CotSender(url) as sender: await sender.send(xml_bytes)`."""

    def __init__(self, url: str, extra_config: dict | None = None):
        self.url = check_url(url)
        # We only send: write-only, or pytak would also bind a UDP reader on the destination port.
        scheme, rest = self.url.split("://", 1)
        wire_url = f"{scheme}+wo://{rest}" if scheme in ("udp", "udp+broadcast", "udp+multicast") else self.url
        self.config = {"COT_URL": wire_url, "TAK_PROTO": "0", **(extra_config or {})}
        self.sent = 0
        self._writer = None
        self._worker = None

    async def __aenter__(self) -> "CotSender":
        pytak = _pytak()
        try:
            _, self._writer = await pytak.protocol_factory(self.config)
        except (OSError, SyntaxError) as exc:
            raise CotSendError(f"cannot open {self.url}: {exc}") from exc
        self._worker = pytak.TXWorker(asyncio.Queue(), self.config, self._writer)
        return self

    async def send(self, event: bytes) -> None:
        try:
            await self._worker.send_data(event)
        except OSError as exc:
            raise CotSendError(f"writing to {self.url} failed: {exc}") from exc
        self.sent += 1

    async def __aexit__(self, *exc_info) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        close = getattr(writer, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result
        wait_closed = getattr(writer, "wait_closed", None)
        if wait_closed is not None:
            try:
                await wait_closed()
            except OSError:
                pass


async def send_all(url: str, events: list[bytes]) -> int:
    """Open `url`, send every event, close; returns how many were sent."""
    async with CotSender(url) as sender:
        for event in events:
            await sender.send(event)
        return sender.sent
