"""Flood the webhook receiver (a real `python -m pipelines.webhooks` process on 127.0.0.1) with
valid, replayed, forged, malformed, oversize and slow requests at once, and measure it.

    python benchmarks/webhooks_flood.py            # full size: prints the figures as JSON

What runs at the same time, all over loopback:
- `valid` validly signed deliveries (10 % of them replays of others), in random order, from
  `senders` concurrent senders that retry a 503 or a dropped connection as AutoSync does;
- `forged` forged or malformed requests of every shape (bad, missing, repeated, wrong-length or
  non-ASCII signatures; signed bodies that are not UTF-8, not JSON, of the wrong shape or types,
  of an unknown event; headers over the cap);
- `oversize` chunked bodies of `oversize_mb` MB each (no Content-Length);
- `slow` connections sending one byte a second (half stuck in their headers, half in their
  body), reconnecting whenever the receiver cuts them off, until the rest is done.

The receiver's resident memory is sampled every 50 ms (psutil). `tests/test_webhooks_flood.py`
runs this at full size and checks the warehouse against the emulator's truth.

One coherent thing, over 400 lines: one benchmark, its load generators and its minimal client.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_flood_" + "f" * 24
PATH = "/webhooks/autosync"
MIB = 1024 * 1024
# One event per resource the connector syncs, so the triggered syncs touch all of them.
EVENTS = {
    "workorder.updated": "work_orders",
    "payment.received": "payments",
    "customer.updated": "customers",
    "appointment.created": "appointments",
    "inspection.completed": "inspections",
    "inventory.low_stock": "inventory",
}


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


# -- the deliveries -------------------------------------------------------------------------
def valid_deliveries(objects: dict[str, list[dict]], count: int, replay_ratio: float,
                     rng: random.Random) -> tuple[list[bytes], set[str]]:
    """`count` signed-to-be bodies about real objects of the emulator; 10 % replays; shuffled."""
    distinct = count - int(count * replay_ratio)
    bodies = []
    names = sorted(EVENTS)
    for i in range(distinct):
        event = names[i % len(names)]
        obj = rng.choice(objects[EVENTS[event]])
        bodies.append(json.dumps({
            "id": f"evt_flood_{i:05d}", "event": event, "created_at": obj.get("updated_at") or "2025-01-01T00:00:00Z",
            "shop_id": obj["shop_id"], "data": obj,
        }, separators=(",", ":")).encode())
    everything = bodies + rng.choices(bodies, k=count - distinct)
    rng.shuffle(everything)
    return everything, {json.loads(body)["id"] for body in bodies}


def _forged_body(i: int, event: str = "workorder.updated", **overrides: Any) -> bytes:
    body = {"id": f"evt_forged_{i:05d}", "event": event, "created_at": "2025-01-01T00:00:00Z",
            "shop_id": 1, "data": {"id": 1, "updated_at": "2025-01-01T00:00:00Z"}}
    body.update(overrides)
    return json.dumps(body).encode()


def forged_request(i: int) -> tuple[str, bytes, list[tuple[str, str | bytes]]]:
    """(kind, body, headers) for the i-th forged or malformed request; each kind in turn."""
    body = _forged_body(i)
    kinds = [
        ("bad_signature", body, [("X-AutoSync-Signature", sign(body, "whsec_not_the_secret"))]),
        ("missing_signature", body, []),
        ("repeated_signature", body, [("X-AutoSync-Signature", sign(body)), ("X-AutoSync-Signature", sign(body))]),
        ("wrong_length_signature", body, [("X-AutoSync-Signature", sign(body) + "0")]),
        ("non_ascii_signature", body, [("X-AutoSync-Signature", "é".encode("latin-1") * 64)]),
        ("tampered_body", body.replace(b'"shop_id": 1', b'"shop_id": 2'), [("X-AutoSync-Signature", sign(body))]),
        ("signed_not_utf8", b"\xff\xfe" + body, None),
        ("signed_not_json", b"{" + body, None),
        ("signed_wrong_shape", json.dumps([json.loads(body)]).encode(), None),
        ("signed_wrong_types", _forged_body(i, shop_id="1"), None),
        ("signed_unknown_event", _forged_body(i, event="vehicle.updated"), None),
        ("huge_headers", body, [("X-AutoSync-Signature", sign(body)), ("X-Padding", "p" * 48 * 1024)]),
    ]
    kind, body, headers = kinds[i % len(kinds)]
    if headers is None:  # validly signed, but not a valid envelope
        headers = [("X-AutoSync-Signature", sign(body))]
    return kind, body, headers


# -- the receiver process -------------------------------------------------------------------
@dataclass
class Receiver:
    process: subprocess.Popen
    url: str
    log_path: Path
    peak_rss: int = 0
    samples: int = 0
    cpu_seconds: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample_memory(self) -> None:
        proc = psutil.Process(self.process.pid)
        while not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
                cpu = proc.cpu_times()
                self.cpu_seconds = cpu.user + cpu.system
                self.samples += 1
            except psutil.Error:
                return
            self._stop.wait(0.05)

    def metrics(self) -> dict:
        return httpx.get(self.url + "/metrics", timeout=10).json()

    def stop(self) -> int:
        self._stop.set()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # uvicorn's graceful shutdown: writer and batcher drain
            try:
                return self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(10)


def start_receiver(workdir: Path, args: list[str], env: dict[str, str]) -> Receiver:
    port = free_port()
    log_path = workdir / "receiver.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.webhooks", "--host", "127.0.0.1", "--port", str(port), *args],
        cwd=workdir, env={**os.environ, "AUTOSYNC_WEBHOOK_SECRET": SECRET, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.DEVNULL, stderr=log_path.open("wb"),
    )
    receiver = Receiver(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError("the receiver exited at start:\n" + log_path.read_text()[-3000:])
        try:
            if httpx.get(receiver.url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the receiver did not start within 60 s")
        time.sleep(0.1)
    threading.Thread(target=receiver.sample_memory, daemon=True).start()
    return receiver


# -- the senders ----------------------------------------------------------------------------
class RawConnection:
    """A minimal keep-alive HTTP/1.1 client over asyncio streams. Why not httpx: at thousands of
    requests its per-request CPU in this process competes with the receiver for the machine's
    two cores and would make the receiver look slower than it is."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes, headers: list[tuple[str, str | bytes]]) -> int:
        """The response status; raises ConnectionError if the connection was dropped."""
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = [f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n".encode()]
        for name, value in headers:
            head.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()) + b"\r\n")
        self.writer.write(b"".join(head) + b"\r\n" + body)
        try:
            await self.writer.drain()
            status_line = await self.reader.readline()
            if not status_line:
                raise ConnectionResetError("closed before the answer")
            length, close = 0, False
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
            await self.reader.readexactly(length)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.close()
            raise ConnectionResetError(str(exc)) from None
        if close:
            self.close()
        return int(status_line.split()[1])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def send_valid(port: int, bodies: list[bytes], senders: int) -> dict:
    """Deliver every body, retrying a 503 or a dropped connection up to 5 times (AutoSync's
    policy, with short waits here); latency of each answered attempt."""
    queue: asyncio.Queue = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    final: dict[str, int] = {}
    answers: dict[int, int] = {}
    errors: dict[str, int] = {}
    retries = 0

    async def sender() -> None:
        nonlocal retries
        connection = RawConnection(port)
        while not queue.empty():
            body = queue.get_nowait()
            headers = [("X-AutoSync-Signature", sign(body)), ("Content-Type", "application/json")]
            for attempt in range(6):
                began = time.perf_counter()
                try:
                    status = await connection.post(body, headers)
                except OSError as exc:
                    status = 0
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                else:
                    latencies.append(time.perf_counter() - began)
                answers[status] = answers.get(status, 0) + 1
                if status not in (0, 503):
                    break
                retries += 1
                await asyncio.sleep(0.1 * (attempt + 1))
            final[str(status)] = final.get(str(status), 0) + 1
        connection.close()

    await asyncio.gather(*(sender() for _ in range(senders)))
    return {"final_status": final, "answers": answers, "errors": errors, "retries": retries, "latencies": latencies}


async def send_forged(port: int, count: int, concurrency: int = 10) -> dict:
    statuses: dict[str, dict[str, int]] = {}
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def sender() -> None:
        connection = RawConnection(port)
        while not queue.empty():
            kind, body, headers = forged_request(queue.get_nowait())
            try:
                status = str(await connection.post(body, headers))
            except OSError as exc:
                status = type(exc).__name__
            per_kind = statuses.setdefault(kind, {})
            per_kind[status] = per_kind.get(status, 0) + 1
        connection.close()

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return statuses


async def send_oversize(port: int, megabytes: int) -> dict:
    """A chunked body of `megabytes` MB (no Content-Length), sent as fast as the socket takes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                 f"X-AutoSync-Signature: {sign(b'x')}\r\n\r\n".encode())
    chunk = b"x" * 65536
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    answer = asyncio.create_task(reader.read(200))
    sent = 0
    try:
        while sent < megabytes * 1_000_000 and not answer.done():
            writer.write(framed)
            await writer.drain()
            sent += len(chunk)
        if not answer.done():
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except ConnectionError:
        pass
    try:
        first = await asyncio.wait_for(answer, 15)
    except (ConnectionError, asyncio.TimeoutError):
        first = b""
    writer.close()
    status = int(first.split()[1]) if first.startswith(b"HTTP/1.1 ") else None  # None: reset before it was read
    return {"status": status, "sent": sent, "complete": sent >= megabytes * 1_000_000}


async def slow_client(port: int, stop: asyncio.Event, in_body: bool, tally: dict) -> None:
    """One byte a second; reconnect when cut off, until `stop`."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            tally["connect_failed"] += 1
            await asyncio.sleep(1)
            continue
        if in_body:
            body = _forged_body(0)
            writer.write(f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
                         f"X-AutoSync-Signature: {sign(body)}\r\n\r\n".encode())
            trickle = body
        else:
            trickle = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {'s' * 500}\r\n".encode()
        closed = asyncio.create_task(reader.read(200))
        try:
            for i in range(len(trickle)):
                writer.write(trickle[i:i + 1])
                await writer.drain()
                done, _ = await asyncio.wait([closed], timeout=1.0)
                if done or stop.is_set():
                    break
        except ConnectionError:
            pass
        if closed.done():
            try:
                answer = closed.result()
            except ConnectionError:
                answer = b""
            status = answer.split()[1].decode() if answer.startswith(b"HTTP/1.1 ") else "closed"
            tally[status] = tally.get(status, 0) + 1
        else:
            closed.cancel()
        writer.close()


async def flood(receiver: Receiver, bodies: list[bytes], senders: int, forged: int, oversize: int,
                oversize_mb: int, slow: int) -> dict:
    port = int(receiver.url.rsplit(":", 1)[1])
    stop = asyncio.Event()
    slow_tally: dict = {"connect_failed": 0}
    slow_tasks = [asyncio.create_task(slow_client(port, stop, i % 2 == 1, slow_tally)) for i in range(slow)]
    await asyncio.sleep(1.0)  # the slow connections are in place before the deliveries start
    began = time.perf_counter()
    valid, forged_statuses, *oversized = await asyncio.gather(
        send_valid(port, bodies, senders),
        send_forged(port, forged),
        *(send_oversize(port, oversize_mb) for _ in range(oversize)),
    )
    elapsed = time.perf_counter() - began
    # Keep the slow connections on until the receiver has cut each off once (its header and
    # body timeouts), so the figures show it does, even when the rest finished sooner.
    deadline = time.monotonic() + 60
    while sum(v for k, v in slow_tally.items() if k != "connect_failed") < slow and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*slow_tasks)
    return {"valid": valid, "forged": forged_statuses, "oversize": oversized, "slow": slow_tally,
            "load_seconds": elapsed}


def wait_until_synced(receiver: Receiver, timeout: float = 300) -> dict:
    """Poll /metrics until nothing is waiting to be stored and no sync is pending or running."""
    deadline = time.monotonic() + timeout
    while True:
        metrics = receiver.metrics()
        if metrics["pending_writes"] == 0 and metrics.get("syncs", {"idle": True})["idle"]:
            return metrics
        if time.monotonic() > deadline:
            raise TimeoutError(f"the receiver did not finish its syncs: {metrics}")
        time.sleep(0.2)


def run_flood(workdir: Path, objects: dict[str, list[dict]], receiver_args: list[str], env: dict[str, str],
              valid: int = 2000, senders: int = 50, replay_ratio: float = 0.1, forged: int = 500,
              oversize: int = 20, oversize_mb: int = 50, slow: int = 200, seed: int = 14) -> dict:
    """Start the receiver, flood it, wait for its syncs, stop it; the figures and what was sent."""
    bodies, distinct_ids = valid_deliveries(objects, valid, replay_ratio, random.Random(seed))
    receiver = start_receiver(workdir, receiver_args, env)
    try:
        baseline_rss = receiver.peak_rss or psutil.Process(receiver.process.pid).memory_info().rss
        sent = asyncio.run(flood(receiver, bodies, senders, forged, oversize, oversize_mb, slow))
        synced_at = time.perf_counter()
        metrics = wait_until_synced(receiver)
        sync_wait = time.perf_counter() - synced_at
    finally:
        exit_code = receiver.stop()
    latencies = sent["valid"].pop("latencies")
    return {
        "distinct_ids": distinct_ids,
        "sent": sent,
        "metrics": metrics,
        "exit_code": exit_code,
        "figures": {
            "valid_deliveries": valid, "distinct_events": len(distinct_ids), "senders": senders,
            "forged_or_malformed": forged, "oversize_bodies": oversize, "oversize_mb": oversize_mb,
            "slow_connections": slow, "load_seconds": round(sent["load_seconds"], 1),
            "sync_wait_seconds": round(sync_wait, 1),
            "valid_p50_ms": round(statistics.median(latencies) * 1000, 1),
            "valid_p99_ms": round(percentile(latencies, 99) * 1000, 1),
            "valid_retries": sent["valid"]["retries"],
            "baseline_rss_mb": round(baseline_rss / MIB, 1),
            "peak_rss_mb": round(receiver.peak_rss / MIB, 1), "rss_samples": receiver.samples,
            "receiver_cpu_seconds": round(receiver.cpu_seconds, 1),
            "largest_body_read_on_refusal": metrics["largest_body_read_on_refusal"],
            "largest_chunk": metrics["largest_chunk"],
            "refused": metrics["refused"], "write_batches": metrics["write_batches"],
            "syncs": metrics.get("syncs"),
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Full size against a fresh emulator world. The receiver stores only (--no-sync), so the
    figures are the receiver's own; tests/test_webhooks_flood.py runs the same flood with the
    syncs on and checks the warehouse against the truth."""
    import argparse
    import tempfile
    import uuid

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", metavar="URL",
                        help="store in this Postgres (a throwaway schema) instead of a DuckDB file")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from autosync_emulator import Emulator

    env = {"RUNTIME__DLTHUB_TELEMETRY": "false"}
    schema = f"wh_bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, Emulator(seed=14, shops=2, work_orders=8) as emu:
        workdir = Path(tmp)
        if args.postgres:
            receiver_args = ["--postgres", "--dataset", schema, "--no-sync"]
            env["DESTINATION__POSTGRES__CREDENTIALS"] = args.postgres
        else:
            receiver_args = ["--duckdb-path", str(workdir / "warehouse.duckdb"), "--no-sync"]
        try:
            result = run_flood(workdir, emu.truth()["objects"], receiver_args, env)
        finally:
            if args.postgres:
                import psycopg2

                con = psycopg2.connect(args.postgres)
                con.autocommit = True
                with con.cursor() as cursor:
                    cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                con.close()
    figures = result["figures"]
    figures["warehouse"] = "postgres" if args.postgres else "duckdb"
    figures["valid_final_status"] = result["sent"]["valid"]["final_status"]
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
