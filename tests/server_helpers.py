"""One way to serve an ASGI app under uvicorn on a free 127.0.0.1 port in a thread of the test
process (the webhook receiver's end-to-end, fuzz and limits tests)."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import uvicorn


@contextmanager
def serve_in_thread(make_config: Callable[[int], uvicorn.Config], start_seconds: float = 20) -> Iterator[int]:
    """Bind a free port, run `uvicorn.Server(make_config(port))` on it and yield the port once the
    server has started (polled, with a deadline); stop it and close the socket after."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(make_config(port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_seconds
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
