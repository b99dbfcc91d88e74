"""Servers started by the tests: a free port, wait until one answers over HTTP, stop it."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(proc: subprocess.Popen, url: str, log_file: Path, name: str, timeout: float) -> None:
    """Return once ``url`` answers; raise with the end of ``log_file`` if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited ({proc.returncode}):\n{log_file.read_text()[-4000:]}")
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except (urllib.error.URLError, ConnectionError) as e:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not up in {timeout:.0f} s:\n{log_file.read_text()[-4000:]}") from e
            time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
