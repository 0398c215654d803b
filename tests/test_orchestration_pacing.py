"""Several processes on one API key share its rate budget, paced from the server's
X-RateLimit-Remaining / X-RateLimit-Reset alone (autosync_source/ratelimit.py).

Fast: a simulation of processes pacing one key against the emulator's own fixed-window limiter
(tests/pacing_sim.py): few 429s, the windows spent nearly in full.
Slow: 12 Dagster shop partitions, 4 runs at a time (Dagster's run queue), into Postgres, on one
rate-limited key of the emulator: tables equal to the truth, each shop's cursors its own, 429s at
most 1% of requests, and no rate window met more requests than its limit plus those in flight.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from autosync_emulator import Emulator
from emulator_helpers import Client, FakeClock
from pacing_sim import simulate
from autosync_source.cursors import shops_with_cursors


@pytest.mark.parametrize("processes,workers,limit,window", [(4, 4, 40, 10), (2, 4, 40, 10), (4, 2, 100, 20)])
def test_processes_pacing_one_key_meet_few_429s_and_spend_the_windows(processes, workers, limit, window):
    result = simulate(processes, workers, limit, window, seconds=120, seed=3)
    assert result.rate_limited <= 0.01 * result.sent, (result.rate_limited, result.sent)
    windows = sorted(result.served_by_window)[1:-1]  # the first and the last are partial
    assert len(windows) >= 4
    for end in windows:
        # every process always has work: a window left unspent is budget lost
        assert result.served_by_window[end] >= 0.85 * limit, (end, result.served_by_window[end])
        assert result.arrived_by_window[end] <= limit + processes * workers
    assert all(sent > 0 for sent in result.per_process.values()), result.per_process


def test_one_process_alone_is_not_paced_and_spends_every_window():
    # alone on the key it is never paced: a small sync is not slowed down by the pacing
    result = simulate(1, 4, 40, 10, seconds=60, seed=1)
    assert result.rate_limited == 0
    assert all(result.served_by_window[end] == 40 for end in sorted(result.served_by_window)[1:-1])


def test_the_request_log_counts_each_rate_window():
    clock = FakeClock()  # at the start of a 2-second window
    with Emulator(seed=5, shops=1, work_orders=5, rate_limit=3, rate_window_seconds=2, wall_clock=clock) as emu:
        client = Client(emu)
        codes = [client.get("/shops").status_code for _ in range(4)]
        clock.advance(2)
        codes.append(client.get("/shops").status_code)
        assert codes == [200, 200, 200, 429, 200]
        first, second = int(clock.now), int(clock.now) + 2  # each window by its X-RateLimit-Reset
        assert emu.request_log()["by_window"] == {str(first): {"served": 3, "rate_limited": 1},
                                                  str(second): {"served": 1, "rate_limited": 0}}


# ---------------------------------------------------------------- 12 Dagster partitions, 4 at a time

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
REPO = Path(__file__).resolve().parents[1]
SHOPS = list(range(1, 13))
RUNS_AT_ONCE = 4
# A low limit in short windows, so that the shops are budget-bound and many windows are judged.
RATE_LIMIT, RATE_WINDOW = 20, 5


def _dagster_home(home: Path, port: int) -> None:
    # Dagster's run queue: every shop partition is its own run (its own process); the daemon
    # launches queued runs, at most RUNS_AT_ONCE of the shops job at a time (its runs carry the
    # tag autosync/sync=shop), as docs/orchestration.md tells users to configure it.
    (home / "dagster.yaml").write_text(
        "run_queue:\n"
        f"  max_concurrent_runs: {len(SHOPS)}\n"
        "  tag_concurrency_limits:\n"
        f"    - {{key: autosync/sync, value: shop, limit: {RUNS_AT_ONCE}}}\n"
        "  dequeue_interval_seconds: 1\n"
        "  dequeue_use_threads: true\n"
        f"  dequeue_num_workers: {RUNS_AT_ONCE}\n"
        # a loaded machine can take more than the 60 s Dagster allows a launch: try again
        "  max_user_code_failure_retries: 3\n"
        "  user_code_failure_retry_delay: 10\n"
        "telemetry:\n"
        "  enabled: false\n"
    )
    # one code server, loaded once, that the backfill command and the daemon both ask
    (home / "workspace.yaml").write_text(
        f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {port}\n      location_name: autosync\n")


def _drop_schemas(dataset: str) -> None:
    import psycopg2

    with psycopg2.connect(PG_URL) as connection, connection.cursor() as cursor:
        cursor.execute("select nspname from pg_namespace where nspname = %s or nspname like %s",
                       (dataset, dataset + "\\_staging%"))
        for (schema,) in cursor.fetchall():
            cursor.execute(f'drop schema "{schema}" cascade')


def _most_at_once(spans) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(args, env, cwd: Path, log: Path) -> subprocess.Popen:
    # its own process group: stopping it also stops the runs it launched
    return subprocess.Popen(args, env=env, cwd=cwd, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(process) -> None:
    if process is None:
        return
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 20)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(1500)  # twelve Dagster runs, each its own process, on a shared 2-core machine
def test_twelve_shop_partitions_four_at_a_time_share_one_key(tmp_path, monkeypatch):
    dg = pytest.importorskip("dagster", reason="the [dagster] extra is not installed")
    from pipelines.orchestration import Warehouse, make_pipeline
    from source_helpers import RESOURCES, compare_with_truth

    # the test reads the warehouse too; dlt's config resolution insists on a password, which
    # the local server trusts and ignores
    postgres_credentials = PG_URL.replace("postgres@", "postgres:trust@")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_credentials)
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    home = tmp_path / "dagster_home"
    home.mkdir()
    port = _free_port()
    _dagster_home(home, port)
    dataset = f"autosync_pacing_{uuid.uuid4().hex[:8]}"
    pipelines_dir = tmp_path / "pipelines"
    daemon = code_server = None
    try:
        with Emulator(seed=61, shops=len(SHOPS), work_orders=15, rate_limit=RATE_LIMIT,
                      rate_window_seconds=RATE_WINDOW) as emu:
            env = {
                **os.environ,
                "DAGSTER_HOME": str(home),
                "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                "SOURCES__AUTOSYNC__API_KEY": emu.api_key,
                "SOURCES__AUTOSYNC__BASE_URL": emu.base_url,
                "SOURCES__AUTOSYNC__SHOPS": json.dumps(SHOPS),  # static partitions: one per shop
                "AUTOSYNC__DESTINATION": "postgres",
                "AUTOSYNC__DATASET": dataset,
                "AUTOSYNC__PIPELINES_DIR": str(pipelines_dir),
                "DAGSTER_DISABLE_TELEMETRY": "1",
                # the daemon's calls to the code server: 60 s by default, too short on a loaded machine
                "DAGSTER_GRPC_TIMEOUT_SECONDS": "300",
            }
            code_server = _start(
                [sys.executable, "-m", "dagster", "api", "grpc", "--python-file", str(REPO / "pipelines" / "dagster_defs.py"),
                 "--working-directory", str(REPO), "--host", "127.0.0.1", "--port", str(port)],
                env, tmp_path, tmp_path / "code_server.log")
            deadline = time.monotonic() + 600
            while subprocess.run([sys.executable, "-m", "dagster", "api", "grpc-health-check", "--port", str(port)],
                                 env=env, capture_output=True).returncode != 0:
                assert code_server.poll() is None, (tmp_path / "code_server.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the Dagster code server did not start"
                time.sleep(2)
            # One run per shop partition, queued: the daemon starts them, RUNS_AT_ONCE at a time.
            backfill = subprocess.run(
                [sys.executable, "-m", "dagster", "job", "backfill", "-w", str(home / "workspace.yaml"),
                 "-j", "autosync_shops_job", "--partitions", ",".join(map(str, SHOPS)), "--noprompt"],
                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
            assert backfill.returncode == 0, backfill.stdout[-3000:] + backfill.stderr[-3000:]
            daemon = _start([sys.executable, "-m", "dagster._daemon", "run", "-w", str(home / "workspace.yaml")],
                            env, tmp_path, tmp_path / "daemon.log")

            with dg.DagsterInstance.from_config(str(home)) as instance:
                deadline = time.monotonic() + 1200  # a generous bound for a loaded machine, not a timing check
                while True:
                    runs = instance.get_run_records()
                    if len(runs) == len(SHOPS) and all(r.dagster_run.is_finished for r in runs):
                        break
                    assert time.monotonic() < deadline, [(r.dagster_run.tags.get("dagster/partition"), r.dagster_run.status) for r in runs]
                    assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
                    time.sleep(1)
                failed = [(r.dagster_run.tags.get("dagster/partition"),
                           [e.message for e in instance.all_logs(r.dagster_run.run_id)
                            if e.is_dagster_event and e.dagster_event.is_failure][-3:])
                          for r in runs if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS]
                spans = [(r.start_time or 0.0, r.end_time or 0.0) for r in runs]
                tags = [r.dagster_run.tags.get("autosync/sync") for r in runs]
                partitions = sorted(int(r.dagster_run.tags["dagster/partition"]) for r in runs)
            log = emu.request_log()
            truth = emu.truth()
            base_url = emu.base_url

        # The key's budget: few 429s, and no window met more than its limit plus the requests in
        # flight (each run's client keeps at most max_workers requests in flight: 4 by default).
        requests, refused = log["total"], log["rate_limited"]
        windows = log["by_window"]
        report = {end: (counts["served"], counts["rate_limited"]) for end, counts in windows.items()}
        print(f"\n{requests} requests, {refused} refused (429), {len(windows)} windows of {RATE_LIMIT}: {report}")
        print("runs (start, end):", sorted((round(start), round(end)) for start, end in spans))
        assert not failed, failed
        assert partitions == SHOPS
        assert tags == ["shop"] * len(SHOPS)
        # the queue held them to RUNS_AT_ONCE, and they did overlap (else nothing was shared)
        most = _most_at_once(spans)
        assert 2 <= most <= RUNS_AT_ONCE, spans

        assert refused <= 0.01 * requests, report
        in_flight = RUNS_AT_ONCE * 4
        assert all(c["served"] + c["rate_limited"] <= RATE_LIMIT + in_flight for c in windows.values()), report
        assert all(c["served"] <= RATE_LIMIT for c in windows.values()), report

        # The tables: exactly the truth of the twelve shops.
        reader = make_pipeline(Warehouse(destination="postgres", dataset=dataset,
                                         pipelines_dir=str(tmp_path / "reader")), pipeline_name="autosync_reader")
        problems = compare_with_truth(reader, truth, shops=SHOPS)
        assert not problems, "\n".join(problems)

        # Each shop's cursors are its own: its pipeline, restored from the warehouse alone by a
        # fresh worker, holds cursors for that shop only, on every resource.
        for shop_id in SHOPS:
            fresh = make_pipeline(Warehouse(destination="postgres", dataset=dataset,
                                            pipelines_dir=str(tmp_path / f"fresh_{shop_id}")), shop_id,
                                  base_url=base_url)
            fresh.sync_destination()
            for resource in RESOURCES:  # cursors.py owns the state's shape
                holders = shops_with_cursors(fresh.state, resource)
                assert holders == [str(shop_id)], (shop_id, resource, holders)
    finally:
        _stop(daemon)
        _stop(code_server)
        _drop_schemas(dataset)
