#!/usr/bin/python3
"""Turns bench/run.sh's raw results into the table (stdout) and, with --doc,
into docs/benchmarks.md.

results.tsv, one line per measurement run:
    scenario <TAB> metric <TAB> unit <TAB> better(+|-) <TAB> system <TAB> value
meta: KEY=VALUE lines (date, machine, command, settings).
Medians are quoted with the min-max of the runs; the ratio column is tether's
median divided by that system's median, measured in the same run of the suite.
With BENCH_BASELINE the system "tether@baseline" (another build of p and c)
has rows of its own, and one more table sets tether against it figure by
figure (before -> after, and whether the change is for the better).
"""
import argparse
import os
import statistics
import sys

NAMES = {
    "nginx": "direct: nginx (HTTP/1.1)",
    "nghttpd": "direct: nghttpd (TLS h2)",
    "nghttpx": "nghttpx -> nghttpd (TLS h2, default windows)",
    "nghttpx16": "nghttpx -> nghttpd (TLS h2, 16 MiB windows)",
    "ssh": "ssh -R -> nginx",
    "tether@baseline": "tether@baseline (BENCH_BASELINE's p -> c)",
    "tether": "tether (p -> c, TLS h2)",
    "grpc-direct": "direct: gRPC client -> server (h2c)",
    "tether-fwd": "tether forward (c --local-listen -> p --service, TLS h2)",
    "tcp-direct": "direct: client -> TCP service",
    "ssh-tcp": "ssh -R -> TCP service",
    "pagekite": "pagekite -> nginx (scenario 1: the first 64 MiB, a Range)",
    "ws-direct": "direct: ws client -> ws server",
}
ORDER = ["grpc-direct", "tcp-direct", "ws-direct", "nginx", "nghttpd", "nghttpx", "nghttpx16", "ssh",
         "ssh-tcp", "pagekite",
         "tether@baseline", "tether", "tether-fwd"]
# Scenario 8's paths, as its table names them: "tether" there is the reverse path.
GRPC_PATHS = {
    "tether@baseline": "reverse, tether@baseline: p -> c --upstream",
    "tether": "reverse: p -> c --upstream",
    "tether-fwd": "forward: c --local-listen -> p --service",
}
BASELINE = "tether@baseline"


def fmt(v):
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def load(path):
    groups = {}   # (scenario, metric) -> {"unit", "better", "sys": {system: [values]}}
    order = []
    if not os.path.exists(path):
        return groups, order
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 6:
                continue
            scen, metric, unit, better, system, value = parts
            key = (scen, metric)
            if key not in groups:
                groups[key] = {"unit": unit, "better": better, "sys": {}}
                order.append(key)
            try:
                groups[key]["sys"].setdefault(system, []).append(float(value))
            except ValueError:
                pass
    return groups, order


def median(groups, scen_prefix, metric, system):
    for (scen, m), g in groups.items():
        if scen.startswith(scen_prefix + ":") and m == metric and system in g["sys"]:
            return statistics.median(g["sys"][system])
    return None


def table(groups, order):
    """One block per scenario: [(scenario, rows)], rows of 6 columns."""
    blocks = []
    for key in sorted(order, key=lambda k: k[0].split(":", 1)[0]):
        g = groups[key]
        scen, metric = key
        arrow = "higher is better" if g["better"] == "+" else "lower is better"
        t = statistics.median(g["sys"]["tether"]) if "tether" in g["sys"] else None
        systems = [s for s in ORDER if s in g["sys"]] + \
                  [s for s in g["sys"] if s not in ORDER]
        if not blocks or blocks[-1][0] != scen:
            blocks.append((scen, []))
        for s in systems:
            vals = g["sys"][s]
            med = statistics.median(vals)
            ratio = "-"
            if s != "tether" and t is not None and med:
                ratio = f"{t / med:.2f}x"
            blocks[-1][1].append((f"{metric} ({g['unit']}, {arrow})", NAMES.get(s, s),
                                  fmt(med), f"{fmt(min(vals))} - {fmt(max(vals))}",
                                  str(len(vals)), ratio))
    return blocks


HEAD = ("metric", "system", "median", "min - max", "runs", "tether / this")


def render_blocks_text(blocks):
    allrows = [HEAD] + [r for _, rows in blocks for r in rows]
    widths = [max(len(r[i]) for r in allrows) for i in range(len(HEAD))]

    def line(r):
        return "  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()
    out = [line(HEAD), "  ".join("-" * w for w in widths)]
    for scen, rows in blocks:
        out.append(f"[{scen}]")
        out += [line(r) for r in rows]
    return "\n".join(out)


def render_blocks_md(blocks):
    out = []
    for scen, rows in blocks:
        out += [f"### {scen}", "", render_md([HEAD] + rows), ""]
    return "\n".join(out)


def targets(groups):
    out = []

    def ratio(prefix, metric, ref):
        t = median(groups, prefix, metric, "tether")
        r = median(groups, prefix, metric, ref)
        return (t / r) if (t is not None and r) else None

    def check(name, value, goal, ok_fn, shown):
        if value is None:
            out.append((name, "n/a", goal, "not measured"))
        else:
            out.append((name, shown(value), goal, "met" if ok_fn(value) else "NOT met"))

    thr = "throughput"
    check("1: tether throughput, one 1 GiB download",
          median(groups, "1", thr, "tether"), ">= 1.0 GB/s",
          lambda v: v >= 1.0, lambda v: f"{v:.2f} GB/s")
    for ref, label in (("nghttpx", "nghttpx"), ("nghttpx16", "nghttpx 16 MiB win")):
        check(f"1: tether / {label}", ratio("1", thr, ref), ">= 2x",
              lambda v: v >= 2, lambda v: f"{v:.2f}x")
        check(f"2: tether / {label}, 32 x 64 MiB", ratio("2", thr, ref), ">= 2x",
              lambda v: v >= 2, lambda v: f"{v:.2f}x")
        check(f"3: tether / {label}, requests/s", ratio("3", "requests/s", ref),
              ">= 1.5x", lambda v: v >= 1.5, lambda v: f"{v:.2f}x")
        tp99 = median(groups, "3", "p99 latency", "tether")
        np99 = median(groups, "3", "p99 latency", ref)
        check(f"3: tether p99 vs {label} p99",
              None if tp99 is None or np99 is None else (tp99, np99), "no worse",
              lambda v: v[0] <= v[1], lambda v: f"{v[0]:.2f} vs {v[1]:.2f} ms")
    check("1: tether / ssh -R", ratio("1", thr, "ssh"), ">= 3x",
          lambda v: v >= 3, lambda v: f"{v:.2f}x")
    check("2: tether / ssh -R", ratio("2", thr, "ssh"), ">= 3x",
          lambda v: v >= 3, lambda v: f"{v:.2f}x")
    # pagekite, the reverse HTTP tunnel people run for this job (issue 11).
    check("1: tether / pagekite, one download", ratio("1", thr, "pagekite"), f">= {PAGEKITE_RATIO:.0f}x",
          lambda v: v >= PAGEKITE_RATIO, lambda v: f"{v:.0f}x")
    check("3: tether / pagekite, requests/s", ratio("3", "requests/s", "pagekite"),
          f">= {PAGEKITE_RATIO:.0f}x", lambda v: v >= PAGEKITE_RATIO, lambda v: f"{v:.0f}x")
    # The throughput targets again, a core per side (scenarios 1s and 2s).
    for sc, what in (("1s", "one 1 GiB download"), ("2s", "32 x 64 MiB")):
        for ref, label, goal in (("nghttpx", "nghttpx", 2), ("nghttpx16", "nghttpx 16 MiB win", 2),
                                 ("ssh", "ssh -R", 3)):
            check(f"{sc}: tether / {label}, {what}, a core per side", ratio(sc, thr, ref),
                  f">= {goal}x", lambda v, g=goal: v >= g, lambda v: f"{v:.2f}x")
    for (scen, metric), g in groups.items():
        if scen.startswith("4") and "idle tunnels" in scen and metric == "p RSS":
            check(f"4: p RSS, {scen.split(':', 1)[1].strip()}",
                  statistics.median(g["sys"]["tether"]) if "tether" in g["sys"] else None,
                  "<= 64 MiB", lambda v: v <= 64, lambda v: f"{v:.1f} MiB")
        if scen.startswith("4") and "slow clients" in scen and metric == "p RSS max":
            check(f"4: p RSS, {scen.split(':', 1)[1].strip()}",
                  statistics.median(g["sys"]["tether"]) if "tether" in g["sys"] else None,
                  "<= 100 MiB", lambda v: v <= 100, lambda v: f"{v:.1f} MiB")
    errs = [median(groups, "7", f"{ab}: good-client errors", "tether") for ab in FAIR_ABUSES[1:]]
    errs = [e for e in errs if e is not None]
    check("7: good-client errors, all abuses (medians summed)", sum(errs) if errs else None, "0",
          lambda v: v == 0, lambda v: f"{v:g}")
    p99s = [(median(groups, "7", f"{ab}: p99 latency", "tether"), ab) for ab in FAIR_ABUSES[1:]]
    p99s = [x for x in p99s if x[0] is not None]
    check("7: good-client p99, worst abuse", max(p99s) if p99s else None, f"< {FAIR_P99_MS:.0f} ms",
          lambda v: v[0] < FAIR_P99_MS, lambda v: f"{v[0]:.1f} ms ({v[1]})")
    # Scenario 8, gRPC (issue 10): the overhead and the ratio are taken within
    # each pass (tether against the direct calls of the same pass), medians;
    # once for the reverse path (p -> c --upstream) and once for the forward
    # link (c --local-listen -> p --service).
    gb = grpc_big_metric(groups)
    db = median(groups, "8", gb, "grpc-direct") if gb else None
    for sysname, path in (("tether", "reverse"), ("tether-fwd", "forward")):
        if path == "forward" and not any(sc.startswith("8:") and sysname in g["sys"]
                                         for (sc, _), g in groups.items()):
            continue   # a run without the forward row (BENCH_BASELINE's older build, say)
        check(f"8: gRPC {path}: unary p50 overhead over direct (issue 10)",
              median(groups, "8", "unary overhead: p50 - direct p50 (same pass)", sysname),
              f"<= {GRPC_OVERHEAD_US:.0f} µs", lambda v: v <= GRPC_OVERHEAD_US, lambda v: f"{v:.0f} µs")
        check(f"8: gRPC {path}: server stream / direct (issue 10)",
              median(groups, "8", "server stream / direct (same pass)", sysname),
              f">= {GRPC_STREAM_RATIO:.0%}", lambda v: v >= GRPC_STREAM_RATIO, lambda v: f"{v:.0%}")
        tb = median(groups, "8", gb, sysname) if gb else None
        check(f"8: gRPC {path}: {gb.split(' each way')[0] if gb else '16 MiB'} each way, one unary call (issue 10)",
              None if tb is None else (tb, db), f"<= {GRPC_BIG_S:.0f} s (test-43's deadline)",
              lambda v: v[0] <= GRPC_BIG_S,
              lambda v: f"{v[0]:.3f} s (direct {fmt(v[1])} s)")
    check("7: p RSS after the load / at its start", median(groups, "7", "p RSS after / start", "tether"),
          f"<= {FAIR_RSS_RATIO:.2f}x", lambda v: v <= FAIR_RSS_RATIO, lambda v: f"{v:.2f}x")
    # Scenario 9, TCP bulk (issue 11): tether / ssh -R within each pass, medians.
    for d in ("up", "down"):
        check(f"9: TCP bulk {d}: tether / ssh -R, one connection (issue 11)",
              median(groups, "9", f"{d}: tether / ssh -R (same pass)", "tether"),
              f">= {TCP_SSH_RATIO:.0f}x", lambda v: v >= TCP_SSH_RATIO, lambda v: f"{v:.2f}x")
    # Scenario 10, WebSocket (issue 11): the p50 difference within each pass.
    check("10: WebSocket echo round trip, p50 overhead over direct (issue 11)",
          median(groups, "10", "round trip p50 - direct p50 (same pass)", "tether"),
          f"<= {WS_OVERHEAD_US:.0f} µs", lambda v: v <= WS_OVERHEAD_US, lambda v: f"{v:.0f} µs")
    return [("target", "tether", "goal", "status")] + out


def versus(groups, order):
    """tether against tether@baseline, one row per figure both have."""
    rows = []
    for key in sorted(order, key=lambda k: k[0].split(":", 1)[0]):
        g = groups[key]
        if "tether" not in g["sys"] or BASELINE not in g["sys"]:
            continue
        b = statistics.median(g["sys"][BASELINE])
        t = statistics.median(g["sys"]["tether"])
        scen, metric = key
        if b:
            pct = (t - b) / b * 100
            higher = pct > 0
            if abs(pct) < 0.05:
                verdict = "same"
            else:
                verdict = "better" if higher == (g["better"] == "+") else "worse"
            change = f"{pct:+.1f}% ({verdict})"
        else:
            change = "n/a"
        rows.append((f"{scen.split(':', 1)[0]}: {metric} ({g['unit']})", fmt(b), fmt(t), change))
    if not rows:
        return None
    return [("figure", "tether@baseline", "tether", "change")] + rows


def callgrind_matrix(groups, order):
    """Scenario 6 at a glance: per protocol and system, the k instructions per
    request of p, c and p+c (medians), and tether's over this row's (for
    tether@baseline: new / baseline)."""
    keys = [k for k in order if k[0].startswith("6:")]
    if not keys:
        return None
    protos, sides = [], ("p", "c", "p+c")
    for _, metric in keys:
        proto = metric.rsplit(": ", 1)[0]
        if proto not in protos:
            protos.append(proto)

    def med(proto, side, system):
        for scen, metric in keys:
            if metric == f"{proto}: {side}" and system in groups[(scen, metric)]["sys"]:
                return statistics.median(groups[(scen, metric)]["sys"][system])
        return None
    rows = [("protocol", "system", "p", "c", "p+c", "tether / this (p, c, p+c)")]
    for proto in protos:
        present = {s for k in keys if k[1].startswith(proto + ": ") for s in groups[k]["sys"]}
        systems = [s for s in ORDER if s in present] + sorted(present - set(ORDER))
        for s in systems:
            vals = [med(proto, side, s) for side in sides]
            ratio = "-"
            if s != "tether":
                t = [med(proto, side, "tether") for side in sides]
                if all(v for v in vals) and all(x is not None for x in t):
                    ratio = ", ".join(f"{x / v:.2f}x" for x, v in zip(t, vals))
            rows.append((proto, NAMES.get(s, s), *[fmt(v) for v in vals], ratio))
    return rows


GRPC_OVERHEAD_US = 150.0   # goals for scenario 8 (issue 10), printed, never asserted
GRPC_STREAM_RATIO = 0.70
GRPC_BIG_S = 10.0


def grpc_big_metric(groups):
    return next((m for (sc, m) in groups if sc.startswith("8:") and m.endswith("each way, one unary call")), None)


def grpc_table(groups, order, quick):
    """Scenario 8 at a glance: per figure the direct reference, then one row
    per tether path (reverse: p -> c --upstream, and tether@baseline's;
    forward: c --local-listen -> p --service) with its figure, its difference
    from direct and its ratio to direct (within each pass where the run
    recorded them so), the forward figure over the reverse one (medians),
    and the goal."""
    if not any(k[0].startswith("8:") for k in order):
        return None

    def med(metric, system):
        return median(groups, "8", metric, system)
    gb = grpc_big_metric(groups)
    big_label = gb.split(" each way")[0] + " each way" if gb else "16 MiB each way"
    systems = [s for s in ("tether@baseline", "tether", "tether-fwd")
               if any(s in groups[k]["sys"] for k in order if k[0].startswith("8:"))]
    rows = [("figure", "direct", "path", "through tether", "- direct", "/ direct", "forward / reverse",
             "goal (issue 10)", "status")]

    def verdict(ok):
        return "-" if quick or ok is None else ("met" if ok else "NOT met")
    figs = [
        ("unary p50 (µs)", "unary p50 latency", "unary overhead: p50 - direct p50 (same pass)", None,
         f"overhead <= {GRPC_OVERHEAD_US:.0f} µs", lambda o, r, t: o is not None and o <= GRPC_OVERHEAD_US),
        ("unary p99 (µs)", "unary p99 latency", None, None, "-", None),
        ("server stream (msgs/s)", "server stream", None, "server stream / direct (same pass)",
         f">= {GRPC_STREAM_RATIO:.0%} of direct", lambda o, r, t: r is not None and r >= GRPC_STREAM_RATIO),
        (f"{big_label} (s)", gb, None, gb.replace(", one unary call", " / direct (same pass)") if gb else None,
         f"<= {GRPC_BIG_S:.0f} s", lambda o, r, t: t is not None and t <= GRPC_BIG_S),
        ("p+c CPU per unary call (µs)", "p+c CPU per unary call (schedstat)", None, None, "-", None),
        ("p+c CPU per stream message (µs)", "p+c CPU per stream message (schedstat)", None, None, "-", None),
    ]
    for label, metric, over_m, ratio_m, goal, ok_fn in figs:
        if not metric:
            continue
        d = med(metric, "grpc-direct")
        for n, s in enumerate(systems):
            t = med(metric, s)
            over = med(over_m, s) if over_m else (t - d if t is not None and d is not None else None)
            ratio = med(ratio_m, s) if ratio_m else (t / d if t is not None and d else None)
            if d is None:
                over = ratio = None
            rev = med(metric, "tether") if s == "tether-fwd" else None
            fr = "-" if s != "tether-fwd" else ("n/a" if t is None or not rev else f"{t / rev:.2f}x")
            rows.append((label if n == 0 else "", fmt(d) if n == 0 else "", GRPC_PATHS.get(s, s), fmt(t),
                         "n/a" if over is None else (f"{over:+,.0f}" if abs(over) >= 10 else f"{over:+.3f}"),
                         "n/a" if ratio is None else f"{ratio:.2f}x", fr, goal,
                         verdict(ok_fn(over, ratio, t)) if ok_fn else "-"))
    return rows


PAGEKITE_RATIO = 3.0  # issue 11's goals for pagekite and WebSocket, printed, never asserted
WS_OVERHEAD_US = 150.0
TCP_SSH_RATIO = 2.0   # the goal for scenario 9 (issue 11), printed, never asserted
TCP_DIRS = (("up", "up (client -> service)"), ("down", "down (service -> client)"))


def tcp_table(groups, order, quick):
    """Scenario 9 at a glance: per direction and path the MB/s (median), the
    ratios tether / ssh -R and tether / direct (within each pass, medians),
    the forwarder's CPU per GiB (p + c; sshd + ssh) and the goal."""
    if not any(k[0].startswith("9:") for k in order):
        return None

    def med(metric, system):
        return median(groups, "9", metric, system)
    rows = [("direction", "path", "MB/s", "min - max", "tether / this (same pass)", "CPU s/GiB",
             "p / c CPU s/GiB", f"goal (issue 11): tether >= {TCP_SSH_RATIO:.0f}x ssh -R")]
    for d, metric in TCP_DIRS:
        for n, s in enumerate(x for x in ("tcp-direct", "ssh-tcp", "tether")
                              if any(x in groups[k]["sys"] for k in order if k[0].startswith("9:"))):
            vals = next((groups[k]["sys"].get(s) for k in order
                         if k[0].startswith("9:") and k[1] == metric), None)
            ratio = {"tcp-direct": f"{d}: tether / direct (same pass)",
                     "ssh-tcp": f"{d}: tether / ssh -R (same pass)"}.get(s)
            r = med(ratio, "tether") if ratio else None
            cpu = med(f"{d}: forwarder CPU user+sys (p+c; sshd+ssh)", s)
            pc_cpu = "-"
            if s == "tether":
                pc_cpu = f"{fmt(med(f'{d}: p CPU user+sys', s))} / {fmt(med(f'{d}: c CPU user+sys', s))}"
            goal = "-"
            if s == "ssh-tcp":
                goal = "-" if quick or r is None else ("met" if r >= TCP_SSH_RATIO else "NOT met")
            rows.append((metric if n == 0 else "", NAMES.get(s, s),
                         fmt(statistics.median(vals)) if vals else "n/a",
                         f"{fmt(min(vals))} - {fmt(max(vals))}" if vals else "n/a",
                         "-" if s == "tether" else ("n/a" if r is None else f"{r:.2f}x"),
                         "-" if s == "tcp-direct" else fmt(cpu), pc_cpu, goal))
    return rows


FAIR_ABUSES = ("none", "a", "b", "c", "d")
FAIR_P99_MS = 50.0      # goals for scenario 7, printed beside the figures (not assertions)
FAIR_RSS_RATIO = 1.20


def fair_med(groups, metric, system):
    return median(groups, "7", metric, system)


def fairness_tables(groups, order, meta, quick):
    """Scenario 7 at a glance: per abuse and system the good client's p50, p99
    and errors (medians over the passes) beside the goals, and p's RSS."""
    present = {s for k in order if k[0].startswith("7:") for s in groups[k]["sys"]}
    if not present:
        return None, None
    systems = [s for s in ORDER if s in present] + sorted(present - set(ORDER))

    def verdict(ok):
        return "-" if quick else ("met" if ok else "NOT met")
    rows = [("abuse", "system", "p50 ms", f"p99 ms (goal < {FAIR_P99_MS:.0f})",
             "errors (goal 0)", "big download s", "goals")]
    for ab in FAIR_ABUSES:
        label = f"{ab}: {meta.get('fair_' + ab, '')}".rstrip(": ")
        for s in systems:
            p50 = fair_med(groups, f"{ab}: p50 latency", s)
            p99 = fair_med(groups, f"{ab}: p99 latency", s)
            errs = fair_med(groups, f"{ab}: good-client errors", s)
            if p50 is None and p99 is None and errs is None:
                continue
            big = fair_med(groups, "a: big download beside them", s) if ab == "a" else None
            ok = errs == 0 and p99 is not None and p99 < FAIR_P99_MS
            rows.append((label, NAMES.get(s, s), fmt(p50), fmt(p99),
                         "n/a" if errs is None else f"{errs:g}",
                         fmt(big) if ab == "a" else "-", verdict(ok)))
    rss = [("system", "p RSS at start MiB", "peak (VmHWM) MiB", "after MiB",
            f"after / start (goal <= {FAIR_RSS_RATIO:.2f})", "goal")]
    after_key = next((m for (sc, m) in order if sc.startswith("7:") and
                      m.startswith("p RSS ") and m.endswith(" after")), None)
    for s in systems:
        a = fair_med(groups, "p RSS after / start", s)
        if a is None:
            continue
        rss.append((NAMES.get(s, s), fmt(fair_med(groups, "p RSS at start", s)),
                    fmt(fair_med(groups, "p peak RSS (VmHWM)", s)),
                    fmt(fair_med(groups, after_key, s)) if after_key else "n/a",
                    f"{a:.2f}x", verdict(a <= FAIR_RSS_RATIO)))
    return rows, (rss if len(rss) > 1 else None)


def render_text(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_md(rows):
    lines = ["| " + " | ".join(rows[0]) + " |",
             "|" + "|".join("---" for _ in rows[0]) + "|"]
    for r in rows[1:]:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    return "\n".join(lines)


def read_meta(path):
    meta = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, sep, v = line.rstrip("\n").partition("=")
                if sep:
                    meta[k] = v
    return meta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("meta")
    ap.add_argument("--doc")
    ap.add_argument("--method")
    ap.add_argument("--profile")
    ap.add_argument("--notes")
    ap.add_argument("--series")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    groups, order = load(a.results)
    meta = read_meta(a.meta)
    blocks, trows = table(groups, order), targets(groups)
    print(render_blocks_text(blocks))
    print()
    cgrows = callgrind_matrix(groups, order)
    if cgrows:
        print("6 at a glance: k instructions per request (callgrind, medians; "
              "nghttpx in the p column and nghttpd in the c column for the reference)")
        print(render_text(cgrows))
        if meta.get("cg_note"):
            print(f"note: {meta['cg_note']}")
        print()
    frows, frss = fairness_tables(groups, order, meta, a.quick)
    if frows:
        print("7 at a glance: the good client during each abuse (medians; goals, not assertions"
              + ("; not judged in quick mode" if a.quick else "") + ")")
        print(render_text(frows))
        if frss:
            print()
            print(render_text(frss))
        print()
    grows = grpc_table(groups, order, a.quick)
    if grows:
        print("8 at a glance: gRPC through tether (reverse path and forward link) against the same "
              "client and server direct "
              f"({meta.get('grpc', '?')}; medians; the difference and ratio of the unary p50 and the "
              "stream are taken within each pass; goals, not assertions"
              + ("; not judged in quick mode" if a.quick else "") + ")")
        print(render_text(grows))
        print()
    trows9 = tcp_table(groups, order, a.quick)
    if trows9:
        print("9 at a glance: TCP bulk, one connection, through tether and ssh -R against direct "
              f"({meta.get('tcp', '?')}; medians; the ratios are taken within each pass; the goal is a "
              "target, not an assertion" + ("; not judged in quick mode" if a.quick else "") + ")")
        print(render_text(trows9))
        print()
    if a.quick:
        print("targets: not judged in quick mode (tiny files, one run)")
    elif all(r[3] == "not measured" for r in trows[1:]):
        print("targets: none of their figures was measured in this run")
    else:
        print(render_text(trows))
    vrows = versus(groups, order)
    if vrows:
        print()
        print(f"tether against tether@baseline ({meta.get('baseline', '?')})"
              + (": quick mode, the figures mean nothing" if a.quick else "")
              + "; trust a change only where the min - max ranges above do not overlap")
        print(render_text(vrows))
    if a.series and os.path.exists(a.series):
        print()
        print(open(a.series).read().rstrip())
    if a.series and os.path.exists(a.series + ".baseline"):
        print()
        print("tether@baseline, the same slow clients:")
        print(open(a.series + ".baseline").read().rstrip())
    if not a.doc:
        return 0
    out = ["# tether benchmarks", "",
           "Generated by `bench/run.sh` (do not edit by hand: a full `make bench` "
           "rewrites this file).", "",
           f"- date: {meta.get('date', '?')}",
           f"- machine: `nproc` = {meta.get('nproc', '?')}, CPU: {meta.get('cpu', '?')}, "
           f"kernel {meta.get('kernel', '?')}, {meta.get('mem', '?')} RAM",
           f"- command: `{meta.get('command', '?')}`",
           f"- runs per figure: {meta.get('runs', '?')} (systems alternate within each run; "
           "median quoted, min-max shown)",
           f"- pinning: {meta.get('pinning', '?')}",
           f"- versions: {meta.get('versions', '?')}",
           ]
    if meta.get("absent"):
        out.append(f"- systems absent: {meta['absent']}")
    if meta.get("errors"):
        out.append(f"- errors during the run: {meta['errors']}")
    out += ["", "## Results", "", render_blocks_md(blocks),
            "`tether / this` is tether's median divided by that system's median for the "
            "same figure: above 1 means tether is higher (better for throughput, worse "
            "for latency, CPU and memory).", ""]
    if cgrows:
        out += ["### 6 at a glance: k instructions per request (callgrind)", "",
                "Medians; for the reference, nghttpx is in the p column and nghttpd in "
                "the c column.", "", render_md(cgrows), ""]
        if meta.get("cg_note"):
            out += [f"Note: {meta['cg_note']}.", ""]
    if frows:
        out += ["### 7 at a glance: the good client during each abuse", "",
                "Medians over the passes; the goals are targets, not assertions.", "",
                render_md(frows), ""]
        if frss:
            out += [render_md(frss), ""]
    if grows:
        out += ["### 8 at a glance: gRPC, tether's reverse path and forward link against direct", "",
                f"{meta.get('grpc', '?')}. Medians; the unary overhead and the stream ratio are "
                "taken within each pass (tether against the direct calls of the same pass). "
                "The goals are targets, not assertions.", "", render_md(grows), ""]
    if trows9:
        out += ["### 9 at a glance: TCP bulk through tether and ssh -R against direct", "",
                f"{meta.get('tcp', '?')}. Medians; the ratios are taken within each pass. "
                "The goal is a target, not an assertion.", "", render_md(trows9), ""]
    out += [
            "## Targets (issues 4, 10 and 11)", "", render_md(trows), ""]
    if a.series and os.path.exists(a.series):
        out += ["## p's RSS over time, slow clients", "", "```",
                open(a.series).read().rstrip(), "```", ""]
    if a.method and os.path.exists(a.method):
        out += [open(a.method).read().rstrip(), ""]
    if a.notes and os.path.exists(a.notes):
        out += [open(a.notes).read().rstrip(), ""]
    if a.profile and os.path.exists(a.profile):
        out += ["## Where tether's time goes (perf record, scenario 1)", "",
                "```", open(a.profile).read().rstrip(), "```", ""]
    with open(a.doc, "w") as f:
        f.write("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
