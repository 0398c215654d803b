"""python -m autosync_emulator --port 8765 --seed 42 --shops 3 --work-orders 2000

The first line on stdout is one JSON object with base_url, api_key, oauth_client_id and
oauth_client_secret; then it serves until stopped (Ctrl-C / SIGTERM).
"""
from __future__ import annotations

import argparse
import sys
import time

import orjson
import uvicorn

from .core import ENVIRONMENT_RATE_LIMITS, EmulatorCore
from .server import make_server, serve_socket
from .timefmt import DEFAULT_START


def parse_args(argv: list[str] | None, prog: str = "python -m autosync_emulator") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog,
                                description="Serve a seeded, stateful emulator of the AutoSync API. The first stdout "
                                            "line is JSON with base_url, api_key, oauth_client_id, oauth_client_secret.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--shops", type=int, default=3)
    p.add_argument("--work-orders", type=int, default=2000, help="work orders per shop")
    p.add_argument("--environment", choices=("sandbox", "live"), default="sandbox")
    p.add_argument("--rate-limit", type=int, default=None,
                   help="requests per window per key (default: the environment's limit, 300 sandbox / 100 live; 0 = unlimited)")
    p.add_argument("--rate-window-seconds", type=float, default=60)
    p.add_argument("--start", default=DEFAULT_START, help="the emulator clock at start (UTC, ISO 8601)")
    p.add_argument("--late-commit-seconds", type=int, default=0)
    p.add_argument("--background-activity", type=float, default=0.0, metavar="HOURS_PER_SECOND",
                   help="run activity continuously: emulator hours per wall second (0 = off)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None, prog: str = "python -m autosync_emulator") -> int:
    args = parse_args(argv, prog)
    if args.shops < 1 or args.work_orders < 1:
        print("error: --shops and --work-orders must be >= 1", file=sys.stderr)
        return 2
    rate_limit = ENVIRONMENT_RATE_LIMITS[args.environment] if args.rate_limit is None else args.rate_limit
    began = time.perf_counter()
    try:
        core = EmulatorCore(seed=args.seed, shops=args.shops, work_orders=args.work_orders,
                            environment=args.environment, rate_limit=rate_limit,
                            rate_window_seconds=args.rate_window_seconds, start=args.start,
                            late_commit_seconds=args.late_commit_seconds)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        sock = serve_socket(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    print(orjson.dumps({"base_url": f"http://{args.host}:{port}/v1", "api_key": core.api_key,
                        "oauth_client_id": core.oauth_client_id,
                        "oauth_client_secret": core.oauth_client_secret}).decode(), flush=True)
    print(f"# world built in {time.perf_counter() - began:.2f} s; control plane at http://{args.host}:{port}/_emulator/",
          file=sys.stderr, flush=True)
    if args.background_activity > 0:
        core.start_background_activity(hours_per_second=args.background_activity)
    server: uvicorn.Server = make_server(core, sock)
    try:
        server.run(sockets=[sock])
    finally:
        core.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
