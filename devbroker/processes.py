"""Ports and processes of the development broker: a free loopback port, whether a port is taken, and
stopping a JVM by pid without ever signalling a recycled one."""
from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import time
from pathlib import Path
from typing import Callable

from borderfuse.ingest.kafka_probe import LOOPBACK

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a just-stopped broker's TIME_WAIT connections do not make its port "taken".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the parent dies (a killed pytest leaves no JVM)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def is_kafka_pid(pid: int) -> bool:
    """True when `pid` is a live Kafka JVM (guards against signalling a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline and pid_alive(pid)


def stop_pid(pid: int, timeout_s: float = 30.0, wait: Callable[[float], bool] | None = None) -> None:
    """SIGTERM, wait up to `timeout_s`, then SIGKILL. `wait(t)` -> exited? (children use Popen.wait)."""
    def default_wait(t: float) -> bool:
        deadline = time.monotonic() + t
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.1)
        return not pid_alive(pid)

    wait = wait or default_wait
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait(timeout_s):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait(10.0)
