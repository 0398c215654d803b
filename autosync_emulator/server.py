"""Serve an emulator on 127.0.0.1: `Emulator` runs uvicorn in a thread, as a context manager."""
from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from typing import Any, Callable

import orjson
import uvicorn

from .app import build_app
from .core import EmulatorCore

logger = logging.getLogger("autosync_emulator")

CONTROL_PLANE_EXPOSED = (
    "the emulator's control plane (/_emulator/: truth, faults, clock, API keys) has no authentication; "
    "listening on {host} exposes it to every machine that can reach that address. Bind 127.0.0.1 "
    "unless that network is yours alone.")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: only "localhost" is known to stay on this machine
        return False


def serve_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when the
    # socket says it is TCP; without it Nagle + delayed ACK cost ~40 ms per response.
    if not is_loopback(host):
        logger.warning(CONTROL_PLANE_EXPOSED.format(host=host))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(core: EmulatorCore, sock: socket.socket) -> uvicorn.Server:
    app = build_app(lambda: core)
    config = uvicorn.Config(app, http="httptools", loop="asyncio", lifespan="off", log_level="warning",
                            access_log=False, timeout_keep_alive=30)
    return uvicorn.Server(config)


class Emulator:
    """The emulated AutoSync API on a free port of 127.0.0.1, served from a thread.

    with Emulator(seed=42, shops=3, work_orders=50) as emu:
        requests.get(emu.base_url + "/shops", headers={"Authorization": f"Bearer {emu.api_key}"})

    `wall_clock` (epoch seconds, default `time.time`) runs the rate windows and token lifetimes:
    a test passes a clock it moves by hand instead of sleeping. The emulator's own clock (the
    world's time, moved by `advance`) is separate.
    """

    def __init__(self, seed: int = 42, shops: int = 3, work_orders: int = 50, environment: str = "sandbox",
                 rate_limit: int = 0, rate_window_seconds: float = 60, host: str = "127.0.0.1", port: int = 0,
                 wall_clock: Callable[[], float] = time.time, **settings: Any) -> None:
        self.core = EmulatorCore(seed=seed, shops=shops, work_orders=work_orders, environment=environment,
                                 rate_limit=rate_limit, rate_window_seconds=rate_window_seconds,
                                 wall_clock=wall_clock, **settings)
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    # -------------------------------------------------------------- lifecycle
    def start(self) -> "Emulator":
        self._sock = serve_socket(self._host, self._port)
        self._port = self._sock.getsockname()[1]
        self._server = make_server(self.core, self._sock)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"autosync-emulator:{self._port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the emulator server thread died while starting")
            if time.monotonic() > deadline:
                raise RuntimeError("the emulator server did not start within 10 s")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self.core.close()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------- addresses and credentials
    @property
    def root_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def api_key(self) -> str:
        return self.core.api_key

    @property
    def oauth_client_id(self) -> str:
        return self.core.oauth_client_id

    @property
    def oauth_client_secret(self) -> str:
        return self.core.oauth_client_secret

    # -------------------------------------------------------------- control (same as /_emulator/)
    def truth(self) -> dict:
        return orjson.loads(self.core.truth_bytes())

    def truth_bytes(self) -> bytes:
        return self.core.truth_bytes()

    def advance(self, hours: float = 0, minutes: float = 0, seconds: float = 0) -> dict:
        return self.core.advance(hours * 3600 + minutes * 60 + seconds)

    @property
    def build_seconds(self) -> float:
        """How long the world took to generate."""
        return self.core.backend.build_seconds

    @property
    def clock(self) -> str:
        return self.core.backend.now_iso()

    def configure(self, **settings: Any) -> dict:
        return self.core.configure(**settings)

    def set_faults(self, rules: list) -> list:
        return self.core.faults.set(rules)

    def before_list(self, path: str, fn: Callable[[Any, dict], None], request: int | None = None) -> None:
        """Run `fn(core, info)` under the store lock just before the `request`-th list request
        whose path matches the glob `path` is computed (every matching request when None).
        Races on the server, not on a timer (faults.ListHooks); `clear_list_hooks()` ends them."""
        self.core.list_hooks.add(path, fn, request)

    def clear_list_hooks(self) -> None:
        self.core.list_hooks.clear()

    def request_log(self) -> dict:
        return self.core.request_log.snapshot()

    def reset_request_log(self) -> None:
        self.core.request_log.reset()

    def reset(self, **params: Any) -> None:
        self.core.reset(**params)

    def create_api_key(self, environment: str | None = None, shops=None) -> str:
        return self.core.auth.create_api_key(environment, shops)

    def create_oauth_client(self, scopes=None, shops=None) -> tuple[str, str]:
        return self.core.auth.create_oauth_client(scopes, shops)

    def start_background_activity(self, **options: Any) -> None:
        self.core.start_background_activity(**options)

    def stop_background_activity(self) -> None:
        self.core.stop_background_activity()

    def webhook_deliveries(self) -> list:
        return self.core.webhooks.deliveries()
