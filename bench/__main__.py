"""Benchmarks of the AKS pool scaler against Azurite and the AKS emulator, each reported as a
ratio to a reference measured side by side in the same run.

    .venv/bin/python -m bench            full run (several minutes); writes docs/benchmarks.md
    .venv/bin/python -m bench --quick    small N and short operations; prints the report only
                                         (add --output FILE to keep it)
    .venv/bin/python -m bench --only fleet   one section (with --quick: its small plan); prints
                                         it, never writes docs/benchmarks.md (--output FILE does)

Starts its own Azurite and AKS emulator (local.stack.local_stack, 127.0.0.1, OS-chosen ports)
and stops them at the end. Needs what ./scripts/test installs (.venv, node_modules).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import arm_requests, burst, cold_start, fleet, function_time, report, throughput

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Plan:
    burst: int
    burst_operation_seconds: float
    durations: tuple[float, ...]
    repeats: int
    n: int
    n_small: int
    cold_repeats: int
    fleet: fleet.FleetPlan = fleet.FULL


FULL = Plan(100, 1.0, (5.0, 10.0), 5, 2000, 200, 11, fleet.FULL)
QUICK = Plan(20, 1.0, (1.0, 2.0), 3, 200, 50, 3, fleet.QUICK)
SECTIONS = ("fleet",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.split("\n\n")[0].replace("\n", " ")
    )
    parser.add_argument("--quick", action="store_true", help="small N, short operations")
    parser.add_argument(
        "--output",
        type=Path,
        help=f"where to write the report (default: {DEFAULT_OUTPUT.relative_to(REPO_ROOT)} "
        "for a full run, none for --quick)",
    )
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        help="run one section and print it; docs/benchmarks.md is only written by a whole run",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    output = args.output or (None if args.quick or args.only else DEFAULT_OUTPUT)

    from local.stack import local_stack

    started = time.monotonic()
    if args.only == "fleet":
        with tempfile.TemporaryDirectory(prefix="bench-") as logs:
            step("stack", "Azurite + AKS emulator")
            with local_stack(operation_seconds=1.0, log_dir=Path(logs)) as stack:
                fleets = fleet.measure(stack, plan.fleet, Path(logs), step)
        text = report.render_fleet(fleets, args.quick, time.monotonic() - started)
        if output:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text)
            step("done", f"wrote {output}")
        print(text)
        return 0
    step("cold start", f"{plan.cold_repeats} fresh interpreters each way")
    cold = cold_start.measure(plan.cold_repeats)
    with tempfile.TemporaryDirectory(prefix="bench-") as logs:
        step("stack", "Azurite + AKS emulator")
        with local_stack(operation_seconds=1.0, log_dir=Path(logs)) as stack:
            step("ARM requests", "no-op, single change, multi-pool")
            counts = arm_requests.single_intents(stack)
            step("burst", "1 intent through the local host")
            single = burst.burst(stack, 1, plan.burst_operation_seconds)
            step("burst", f"{plan.burst} intents on one pool through the local host")
            bursted = burst.burst(stack, plan.burst, plan.burst_operation_seconds)
            step("function time", f"operations of {plan.durations} s, {plan.repeats} repeats")
            timings = function_time.measure(stack, list(plan.durations), plan.repeats)
            runs = []
            for mode, n in (("raw", plan.n), ("app", plan.n), ("app", plan.n_small)):
                step("throughput", f"{mode} worker, {n} messages")
                runs.append(throughput.run(stack, mode, n))
            fleets = fleet.measure(stack, plan.fleet, Path(logs), step)
    text = report.render(
        quick=args.quick,
        plan=plan,
        counts=counts,
        burst=bursted,
        single=single,
        timings=timings,
        runs=runs,
        cold=cold,
        seconds=time.monotonic() - started,
        fleet=fleets,
    )
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        step("done", f"wrote {output}")
    print(text)
    return 0


def step(what: str, detail: str) -> None:
    print(f"[bench] {what}: {detail}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
