"""The figures of a fuzz run (benchmarks/fuzz_mail.py): outcomes, the ledger, times, memory, slowest seeds."""

from __future__ import annotations

from collections import Counter

SECONDS, PEAK_BYTES = 2.0, 200_000_000  # the bounds per email


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def _spread(name: str, values: list[float]) -> str:
    return (f"{name}: p50 {percentile(values, 50) * 1000:.1f} ms  p99 {percentile(values, 99) * 1000:.0f} ms"
            f"  max {max(values):.2f} s")


def _line(r) -> str:
    return (f"  seed {r.seed}: {r.wall:.2f} s whole ({r.worker_cpu:.2f} s CPU), child {r.child_wall:.2f} s "
            f"({r.child_cpu:.2f} s CPU, {r.child_peak / 1e6:.1f} MB), worker {r.worker_peak / 1e6:.1f} MB, "
            f"{r.size:,} bytes, {'+'.join(r.labels)} -> {r.answer or 'exception'} ({r.code})")


def report(results: list, ledger_audit: dict | None = None, slowest: int = 10) -> str:
    """The figures for fuzz_mail.Result ``results`` and an ``audit()`` of the ledger and the sink."""
    errors = [r for r in results if r.error]
    over = {"whole wall": [r.seed for r in results if r.wall > SECONDS],
            "child wall": [r.seed for r in results if r.child_wall > SECONDS],
            "child CPU": [r.seed for r in results if r.child_cpu > SECONDS],
            "CPU, child and worker": [r.seed for r in results if r.cpu > SECONDS],
            "child memory": [r.seed for r in results if r.child_peak > PEAK_BYTES],
            "worker memory": [r.seed for r in results if r.worker_peak > PEAK_BYTES]}
    child, worker = max(results, key=lambda r: r.child_peak), max(results, key=lambda r: r.worker_peak)
    lines = [f"emails: {len(results)}  handle_email: {dict(Counter(r.answer or 'exception' for r in results).most_common())}",
             f"exceptions: {len(errors)}", *[f"  seed {r.seed} ({'+'.join(r.labels)}): {r.error}" for r in errors[:20]],
             f"ledger states after each email: {dict(Counter(r.state for r in results).most_common())}",
             f"reasons: {dict(Counter(r.code for r in results).most_common())}"]
    if ledger_audit is not None:
        found = ledger_audit
        lines.append(f"ledger: {found['records']} records {found['states']}, not final: "
                     f"{found['unfinished_seeds'][:20]}, without a reason: {found['without_reason']}; "
                     f"replies at the SMTP sink: {found['sink']} (recorded as replied: {found['replied']}, "
                     f"of which not received: {found['replied_not_received']}; received but not recorded: "
                     f"{found['received_not_replied']})")
    lines += [_spread("whole handle_email, wall", [r.wall for r in results]),
              _spread("child, wall", [r.child_wall for r in results]),
              _spread("child, CPU", [r.child_cpu for r in results]),
              _spread("worker process, CPU", [r.worker_cpu for r in results]),
              _spread("CPU, child and worker", [r.cpu for r in results]),
              f"peak memory: child max {child.child_peak / 1e6:.1f} MB (seed {child.seed}), "
              f"worker process max {worker.worker_peak / 1e6:.1f} MB (seed {worker.seed})",
              f"over {SECONDS:g} s or {PEAK_BYTES / 1e6:.0f} MB: "
              + ", ".join(f"{name} {len(seeds)} {seeds[:10]}" for name, seeds in over.items()),
              "slowest seeds (whole handle_email):",
              *[_line(r) for r in sorted(results, key=lambda r: -r.wall)[:slowest]],
              "slowest seeds (child CPU):",
              *[_line(r) for r in sorted(results, key=lambda r: -r.child_cpu)[:slowest // 2]]]
    return "\n".join(lines)
