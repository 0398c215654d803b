"""The long Schemathesis run against the emulator (the suite runs a bounded one:
tests/test_emulator_schemathesis.py). Prints figures; asserts nothing.

    python benchmarks/schemathesis_run.py                   # all phases, 60 examples per operation
    python benchmarks/schemathesis_run.py --max-examples 200 --seed 7

The emulator runs as its CLI in a child process (unlimited rate: the run measures conformance,
not the rate limit), Schemathesis as its CLI in another, with every check but the three the
suite also leaves out (see the test). All four phases run: examples, coverage (the edge cases
of every parameter and body field, valid and invalid), fuzzing, and stateful sequences that
follow the document's links. The figures go to stdout and to results/schemathesis.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from emulator_helpers import schemathesis_command, write_schemathesis_config  # noqa: E402  (the suite's run, longer)


def start_emulator(seed: int, shops: int, work_orders: int) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-m", "autosync_emulator", "--port", "0", "--seed", str(seed),
                             "--shops", str(shops), "--work-orders", str(work_orders), "--rate-limit", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"the emulator did not start: {proc.stderr.read()}")
    return proc, json.loads(line)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-examples", type=int, default=60, help="per operation and phase")
    p.add_argument("--seed", type=int, default=20261128)
    p.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "schemathesis.md"))
    args = p.parse_args(argv)

    proc, creds = start_emulator(seed=31, shops=2, work_orders=15)
    root_url = creds["base_url"][:-len("/v1")]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "schemathesis.toml")
            write_schemathesis_config(config, creds["api_key"], creds["oauth_client_id"], creds["oauth_client_secret"])
            began = time.perf_counter()
            run = subprocess.run(schemathesis_command(root_url, config, phases=args.phases,
                                                      max_examples=args.max_examples, seed=args.seed),
                                 capture_output=True, text=True, cwd=tmp)
            wall = time.perf_counter() - began
        with urllib.request.urlopen(root_url + "/_emulator/requests") as r:
            log = json.load(r)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = run.stdout
    cases = re.search(r"(\d+) generated, (.*)", out)
    phases = re.findall(r"(Examples|Coverage|Fuzzing|Stateful) \(in ([\d.]+)s\)", out)
    scenarios = re.search(r"Scenarios:\s+(\d+)", out)
    links = re.search(r"API Links:\s+(.*)", out)
    by_status: dict[str, int] = {}
    write_2xx = {}
    for route, counts in log["by_route"].items():
        for status, n in counts.items():
            by_status[status[0] + "xx"] = by_status.get(status[0] + "xx", 0) + n
        if route.split(" ", 1)[0] in ("POST", "PATCH", "DELETE"):
            ok = sum(n for s, n in counts.items() if s.startswith("2"))
            if ok:
                write_2xx[route] = ok
    lines = [
        "# Schemathesis against the emulator (long run)",
        "",
        f"`python benchmarks/schemathesis_run.py --max-examples {args.max_examples} --seed {args.seed}`, "
        f"phases {args.phases}; Schemathesis exit code {run.returncode}.",
        "",
        f"- test cases: {cases.group(1) + ', ' + cases.group(2) if cases else 'n/a'}",
        f"- phases (wall s): {', '.join(f'{name} {secs}' for name, secs in phases)}",
        f"- stateful scenarios: {scenarios.group(1) if scenarios else 'n/a'}; links: {links.group(1).strip() if links else 'n/a'}",
        f"- requests the emulator served: {log['total']}, by class: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(by_status.items()))}",
        f"- writes answered 2xx: {sum(write_2xx.values())} over {len(write_2xx)} write routes",
        f"- wall {wall:.0f} s, CPU {cpu.ru_utime + cpu.ru_stime:.0f} s (Schemathesis and the emulator together)",
        "",
        "Summary printed by Schemathesis:",
        "",
        "```",
        out.split("SUMMARY")[-1].strip().lstrip("=").strip() if "SUMMARY" in out else out[-3000:],
        "```",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
