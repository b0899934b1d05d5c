"""A server the trainer's tests start as a process (``inference serve``, ``make serve``): up
until ``/health`` answers 200, stopped as a whole process group afterwards."""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence

from trainer.processes import stop

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@contextlib.contextmanager
def healthy_server(
    command: Sequence[str], env: Mapping[str, str], url: str, timeout: float = 90
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` in its own process group, wait until ``url``/health answers 200."""
    process = subprocess.Popen(
        list(command),
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the server and whatever it starts: one group, stopped whole
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, f"{command[0]} exited"
            assert time.monotonic() < deadline, f"{url} was not healthy within {timeout:.0f} s"
            with contextlib.suppress(OSError):
                with _OPENER.open(url + "/health", timeout=5) as response:
                    if response.status == 200:
                        break
            time.sleep(0.1)
        yield process
    finally:
        stop(process, timeout=30)
