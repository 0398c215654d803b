"""How fast and how big the emulator is (prints figures; functions importable by benchmarks/run.py).

    python benchmarks/emulator_bench.py            # all three
    python benchmarks/emulator_bench.py pages      # or: start | large

- pages:  list pages of 100 work orders served per second, server in its own process (the CLI),
          keep-alive clients in threads of this process, paging every shop by updated_at.
- start:  seconds from nothing to a default world (3 shops x 2000 work orders) answering HTTP.
- large:  build time and peak RSS of a 200,000-work-order world, in a fresh process.
"""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _start_cli(*args: str) -> tuple[subprocess.Popen, dict, float]:
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "autosync_emulator", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"emulator did not start: {proc.stderr.read()}")
    info = json.loads(line)
    return proc, info, began


def _wait_ready(info: dict, timeout: float = 60) -> None:
    parts = urlsplit(info["base_url"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
            conn.request("GET", "/v1/shops", headers={"Authorization": f"Bearer {info['api_key']}"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("emulator not ready")


def bench_default_world_start(shops: int = 3, work_orders: int = 2000) -> dict:
    """Seconds until a CLI-started default world answers its first API request."""
    proc, info, began = _start_cli("--shops", str(shops), "--work-orders", str(work_orders), "--rate-limit", "0")
    try:
        _wait_ready(info)
        return {"shops": shops, "work_orders_per_shop": work_orders, "seconds_to_first_response": time.perf_counter() - began}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bench_pages_per_second(seconds: float = 5.0, clients: int = 2, shops: int = 3, work_orders: int = 2000) -> dict:
    """List pages of 100 work orders served per second (server process vs client threads)."""
    proc, info, _began = _start_cli("--shops", str(shops), "--work-orders", str(work_orders), "--rate-limit", "0")
    try:
        _wait_ready(info)
        parts = urlsplit(info["base_url"])
        headers = {"Authorization": f"Bearer {info['api_key']}"}
        pages_per_shop = -(-work_orders // 100)
        counts = [0] * clients
        bytes_read = [0] * clients
        errors = [0] * clients
        stop = threading.Event()

        def run(n: int) -> None:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            i = n
            while not stop.is_set():
                shop = i % shops + 1
                page = (i // shops) % pages_per_shop + 1
                conn.request("GET", f"/v1/shops/{shop}/workorders?per_page=100&sort=updated_at&order=asc&page={page}",
                             headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    errors[n] += 1
                counts[n] += 1
                bytes_read[n] += len(body)
                i += clients

        threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(clients)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        elapsed = time.perf_counter() - began
        total = sum(counts)
        return {"pages_per_second": total / elapsed, "pages": total, "errors": sum(errors),
                "mean_page_bytes": sum(bytes_read) // max(1, total), "client_threads": clients, "seconds": elapsed}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


_LARGE_CHILD = r"""
import json, resource, sys, time
began = time.perf_counter()
from autosync_emulator import EmulatorCore
core = EmulatorCore(seed=42, shops=int(sys.argv[1]), work_orders=int(sys.argv[2]))
built = time.perf_counter() - began
rows = 0
counts = {}
for name, table in core.store.tables.items():
    counts[name] = len(table.visible)
counts.update({k: core.backend.ids.last[k] for k in ("jobs", "line_items", "refunds", "inspection_items", "photos")})
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"build_seconds": built, "peak_rss_mib": usage.ru_maxrss / 1024,
                  "process_cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "rows": sum(counts.values()), "counts": counts}))
"""


def bench_large_world(shops: int = 10, work_orders_per_shop: int = 20000) -> dict:
    """Build time and peak RSS of a large world (default 10 x 20,000 = 200,000 work orders)."""
    out = subprocess.run([sys.executable, "-c", _LARGE_CHILD, str(shops), str(work_orders_per_shop)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["work_orders"] = shops * work_orders_per_shop
    return result


def main(argv: list[str]) -> int:
    which = argv or ["start", "pages", "large"]
    if "start" in which:
        r = bench_default_world_start()
        print(f"default world (3 shops x 2000 work orders) answers in {r['seconds_to_first_response']:.2f} s "
              f"(CLI process start included)")
    if "pages" in which:
        r = bench_pages_per_second()
        print(f"list pages of 100 work orders: {r['pages_per_second']:.0f} pages/s "
              f"({r['pages']} pages, {r['errors']} errors, {r['mean_page_bytes'] // 1024} KiB/page, "
              f"{r['client_threads']} client threads, 2-core machine: client and server share it)")
    if "large" in which:
        r = bench_large_world()
        print(f"large world: {r['work_orders']:,} work orders, {r['rows']:,} rows with children, "
              f"built in {r['build_seconds']:.1f} s wall ({r['process_cpu_seconds']:.1f} s CPU, imports included), "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
