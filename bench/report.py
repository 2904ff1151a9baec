#!/usr/bin/env python3
"""Turns the raw outputs of bench/run into report.json and report.md.

usage: report.py RAW_DIR REPORT_JSON REPORT_MD (standard library only)
"""

import csv
import datetime
import json
import os
import re
import sys

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def read(raw, name, default=None):
    path = os.path.join(raw, name)
    if not os.path.exists(path):
        return default
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().strip()


def read_env(raw, name):
    text = read(raw, name, "") or ""
    out = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
    return out


def read_json(raw, name):
    text = read(raw, name)
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def statuses(raw):
    out = {}
    for line in (read(raw, "status.tsv", "") or "").splitlines():
        parts = line.split("\t")
        parts += [""] * (5 - len(parts))
        step, status, seconds, message, load = parts[:5]
        message = ANSI_ESCAPE.sub("", message)
        out[step] = {"status": status, "seconds": int(seconds or 0), "message": message,
                     "loadavg_1min_at_end": float(load) if load else None}
    return out


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values))) - 1))
    return sorted_values[index]


def fdatasync_ops(raw):
    """The first 'fdatasync' line of pg_test_fsync (one 8 kB write)."""
    text = read(raw, "fsync_probe.txt", "") or ""
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "fdatasync" and words[2] == "ops/sec":
            try:
                return float(words[1])
            except ValueError:
                return None
    return None


def redis_figures(raw, step, config):
    if step.get("status") != "ok":
        return {"available": step.get("status") == "failed", "status": step.get("status", "not run"),
                "message": step.get("message") or "not run"}
    with open(os.path.join(raw, "redis.csv"), encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, values = rows[0], rows[-1]
    row = dict(zip(header, values))
    version = (read(raw, "redis.version", "") or "").split()
    version = next((w.split("=", 1)[1] for w in version if w.startswith("v=")), "")
    return {
        "available": True,
        "status": "ok",
        "what": "XADD one stream, '*' ids, appendonly yes, appendfsync always",
        "version": version,
        "appendfsync": read(raw, "redis.appendfsync"),
        "clients": int(config.get("peer_clients", 0)),
        "requests": int(config.get("redis_requests", 0)),
        "stream_length_after": int(read(raw, "redis.xlen", "0") or 0),
        "payload_bytes": int(config.get("payload_bytes", 0)),
        "ops_per_s": float(row["rps"]),
        "avg_ms": float(row["avg_latency_ms"]),
        "p50_ms": float(row["p50_latency_ms"]),
        "p99_ms": float(row["p99_latency_ms"]),
        "max_ms": float(row["max_latency_ms"]),
        "seconds": step.get("seconds"),
    }


def postgres_figures(raw, step, config):
    if step.get("status") != "ok":
        return {"available": step.get("status") == "failed", "status": step.get("status", "not run"),
                "message": step.get("message") or "not run"}
    text = read(raw, "postgres.txt", "") or ""
    figures = {}
    for line in text.splitlines():
        if line.startswith("tps = "):
            figures["inserts_per_s"] = float(line.split()[2])
        elif line.startswith("number of transactions actually processed:"):
            figures["transactions"] = int(line.split(":")[1].split("/")[0].strip())
        elif line.startswith("number of failed transactions:"):
            figures["failed"] = int(line.split(":")[1].split()[0])
        elif line.startswith("latency average = "):
            figures["avg_ms"] = float(line.split()[3])
    latencies = sorted(int(v) for v in (read(raw, "postgres.latency_us", "") or "").split())
    version = (read(raw, "postgres.version", "") or "").split(" ")
    return {
        "available": True,
        "status": "ok",
        "what": "INSERT next version of the client's stream, unique (stream, version), "
                "bigserial position, synchronous_commit on",
        "version": version[1] if len(version) > 1 else "",
        "synchronous_commit": read(raw, "postgres.synchronous_commit"),
        "fsync": read(raw, "postgres.fsync"),
        "clients": int(config.get("peer_clients", 0)),
        "payload_bytes": int(config.get("payload_bytes", 0)),
        "rows_after": int(read(raw, "postgres.rows", "0") or 0),
        "p50_ms": percentile(latencies, 0.50) / 1000 if latencies else None,
        "p99_ms": percentile(latencies, 0.99) / 1000 if latencies else None,
        "max_ms": latencies[-1] / 1000 if latencies else None,
        "seconds": step.get("seconds"),
        **figures,
    }


SYNC_CALLS = ("fsync", "fdatasync", "sync_file_range", "msync")


def syscalls(raw, name):
    """Call counts from an `strace -c` summary, or None when not audited."""
    text = read(raw, f"{name}.syscalls")
    if text is None:
        return None
    counts = {call: 0 for call in SYNC_CALLS}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 5 and words[-1] in counts:
            try:
                counts[words[-1]] = int(words[3])
            except ValueError:
                pass
    return counts


def durability_audit(raw, config):
    events = int(config.get("audit_events", "0") or 0)
    audit = {}
    for name, what in (
        ("ticketlog", f"{events} appends by 1 writer + 80 by 16/64 writers + 100 raw sled inserts"),
        ("redis", f"{events} XADD, {config.get('peer_clients')} clients"),
        ("postgres", f"{events} INSERT, {config.get('peer_clients')} clients"),
    ):
        counts = syscalls(raw, name)
        if counts is not None:
            audit[name] = {"workload": what, "calls": counts}
    return audit


def ratio(a, b):
    if a is None or not b:
        return None
    return round(a / b, 3)


def build(raw):
    steps = statuses(raw)
    config = read_env(raw, "config.env")
    machine = read_env(raw, "machine.env")
    report = {
        "started_at": read(raw, "started_at"),
        "finished_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "nproc": int(machine.get("nproc", "0") or 0),
            "cpu_model": machine.get("cpu_model"),
            "kernel": machine.get("kernel"),
            "mem_total_kb": int(machine.get("mem_total_kb", "0") or 0),
            "fs_type": machine.get("fs_type"),
            "fdatasync_ops_per_s": fdatasync_ops(raw),
            "loadavg_start": read(raw, "loadavg_start"),
            "loadavg_end": read(raw, "loadavg_end"),
            "rustc": machine.get("rustc"),
            "git_commit": machine.get("git_commit"),
            "git_dirty_files": int(machine.get("git_dirty", "0") or 0),
        },
        "config": config,
        "steps": steps,
        "ticketlog": {
            "append": read_json(raw, "append.json"),
            "http": read_json(raw, "http.json"),
            "projections": read_json(raw, "projections.json"),
            "dispatch": read_json(raw, "dispatch.json"),
            "fanout": [f for f in (read_json(raw, f"fanout_{n}.json")
                                   for n in (config.get("fanout_clients") or "").split()) if f],
            "postgres_append": read_json(raw, "pg_append.json"),
            "postgres_http": read_json(raw, "pg_http.json"),
        },
        "peers": {
            "redis": redis_figures(raw, steps.get("redis", {}), config),
            "postgresql": postgres_figures(raw, steps.get("postgres", {}), config),
        },
    }
    report["durability_syscalls"] = durability_audit(raw, config)
    append = report["ticketlog"]["append"] or {}
    http = report["ticketlog"]["http"] or {}
    durable = append.get("w64_events_per_s")
    commands = http.get("commands_per_s")
    redis = report["peers"]["redis"].get("ops_per_s")
    pg = report["peers"]["postgresql"].get("inserts_per_s")
    report["ratios"] = {
        "durable_append_w64_vs_redis_xadd": ratio(durable, redis),
        "durable_append_w64_vs_postgres_insert": ratio(durable, pg),
        "http_commands_vs_redis_xadd": ratio(commands, redis),
        "http_commands_vs_postgres_insert": ratio(commands, pg),
        "postgres_store_http_commands_vs_postgres_insert": ratio(
            (report["ticketlog"]["postgres_http"] or {}).get("commands_per_s"), pg),
        "postgres_store_append_w64_vs_postgres_insert": ratio(
            (report["ticketlog"]["postgres_append"] or {}).get("w64_events_per_s"), pg),
    }
    return report


def num(value, digits=0):
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def ms(value):
    return "–" if value is None else f"{value:.2f} ms"


def times(value):
    return "–" if value is None else f"{value:.2f}×"


def markdown(report):
    m = report["machine"]
    t = report["ticketlog"]
    lines = [
        f"# Ticketlog benchmarks, {report['started_at']}",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu_model']}), {m['kernel']}, "
        f"{(m['mem_total_kb'] or 0) // 1024:,} MiB, {m['fs_type']}; "
        f"load average (1/5/15 min) {m['loadavg_start']} at start, {m['loadavg_end']} at end"
        + (f"; fdatasync of one 8 kB write: {num(m['fdatasync_ops_per_s'])}/s (pg_test_fsync)"
           if m["fdatasync_ops_per_s"] else "")
        + ".",
        f"Commit {(m['git_commit'] or '?')[:10]}"
        + (f" with {m['git_dirty_files']} modified files" if m["git_dirty_files"] else "")
        + ". All servers on 127.0.0.1, clients and servers sharing the same cores.",
        "",
        "| Benchmark | Path | Throughput | p50 | p99 |",
        "|---|---|---:|---:|---:|",
    ]

    def row(name, path, value, unit, p50, p99):
        lines.append(f"| {name} | {path} | {num(value)} {unit} | {ms(p50)} | {ms(p99)} |")

    def absent(name, step):
        info = report["steps"].get(step, {"status": "not run", "message": ""})
        text = info["message"] or info["status"]
        lines.append(f"| {name} | | {info['status']}: {text} | | |")

    def measured(step, name, rows):
        """The rows `rows` writes from a step's results, or one row saying why it has none."""
        if t[step]:
            rows(t[step])
        else:
            absent(name, step)

    def append_rows(a):
        for run in a.get("runs", []):
            row(f"Ticketlog durable append, {run['writers']} writer{'s' if run['writers'] != 1 else ''}",
                "in-process", run["events_per_s"], "events/s", run["p50_ms"], run["p99_ms"])
        row("sled baseline, flush every 100 inserts (not durable per insert)", "in-process",
            a.get("sled_baseline_events_per_s"), "inserts/s", None, None)

    a = t["append"]
    measured("append", "Ticketlog durable append", append_rows)
    measured("http", "Ticketlog HTTP commands", lambda h: row(
        f"Ticketlog HTTP commands, {h['clients']} clients ({h['errors']} errors)", "HTTP, loopback",
        h["commands_per_s"], "commands/s", h["p50_ms"], h["p99_ms"]))
    r = report["peers"]["redis"]
    if r.get("status") == "ok":
        row(f"Redis {r['version']} XADD, appendfsync {r['appendfsync']}, {r['clients']} clients",
            "RESP, loopback", r["ops_per_s"], "XADD/s", r["p50_ms"], r["p99_ms"])
    else:
        lines.append(f"| Redis Streams XADD | | {r['message']} | | |")
    p = report["peers"]["postgresql"]
    if p.get("status") == "ok":
        row(f"PostgreSQL {p['version']} INSERT, unique (stream, version), synchronous_commit "
            f"{p['synchronous_commit']}, {p['clients']} clients", "pgwire, loopback", p.get("inserts_per_s"),
            "inserts/s",
            p.get("p50_ms"), p.get("p99_ms"))
    else:
        lines.append(f"| PostgreSQL INSERT | | {p['message']} | | |")
    def pg_append_rows(a):
        for run in a.get("runs", []):
            row(f"Ticketlog on PostgreSQL, durable append, {run['writers']} writer"
                f"{'s' if run['writers'] != 1 else ''}", "pgwire, loopback", run["events_per_s"], "events/s",
                run["p50_ms"], run["p99_ms"])

    if "postgres" in report["steps"]:
        if t["postgres_append"]:
            pg_append_rows(t["postgres_append"])
        else:
            absent("Ticketlog on PostgreSQL, durable append", "pg_append")
        if t["postgres_http"]:
            h = t["postgres_http"]
            row(f"Ticketlog on PostgreSQL, HTTP commands, {h['clients']} clients ({h['errors']} errors)",
                "HTTP + pgwire, loopback", h["commands_per_s"], "commands/s", h["p50_ms"], h["p99_ms"])
        else:
            absent("Ticketlog on PostgreSQL, HTTP commands", "pg_http")
    if a:
        row("Ticketlog replay (read_all + decode)", "in-process", a.get("replay_events_per_s"), "events/s",
            None, None)
    def projection_rows(pr):
        row(f"Projections rebuild ({num(pr['events'])} events)", "in-process", pr["rebuild_events_per_s"],
            "events/s", None, None)
        lines.append(f"| Projections restart to serving | in-process | {pr['restart_to_serving_s']:.2f} s | | |")
        lines.append(f"| Statistics query over {num(pr['tickets'])} tickets | in-process | | "
                     f"{ms(pr['stats_query_p50_ms'])} | {ms(pr['stats_query_p99_ms'])} |")

    measured("projections", "Projections", projection_rows)
    measured("dispatch", "Dispatch choice", lambda d: row(
        f"Dispatch choice among {num(d['technicians'])} technicians (1 thread)", "in-process",
        d["choices_per_sec"], "choices/s", d["choose_p50_ms"], d["choose_p99_ms"]))
    for f in t.get("fanout") or []:
        row(f"Ticketlog live feed, {num(f['clients_connected'])}/{num(f['clients'])} clients in {f['rooms']} rooms, "
            f"{f['rate_per_s']} comments/s, 2xx to receipt ({f['missing_deliveries']} missing, "
            f"{f['errors']} errors)", "WebSocket, loopback",
            f["events_delivered_per_s"], "deliveries/s", f["delivery_p50_ms"], f["delivery_p99_ms"])
        lines.append(f"| Live feed, {num(f['clients'])} clients: all subscribed in; server RSS per idle connection "
                     f"| WebSocket, loopback | {f['connect_s']:.2f} s; "
                     f"{f['rss_bytes_per_connection'] / 1024:.1f} KiB | | |")
    if not t.get("fanout") and "fanout" in report["steps"]:
        absent("Ticketlog live feed fanout", "fanout")

    q = report["ratios"]
    lines += [
        "",
        "| Ratio | |",
        "|---|---:|",
        f"| Ticketlog durable append (64 writers) / Redis XADD | {times(q['durable_append_w64_vs_redis_xadd'])} |",
        f"| Ticketlog durable append (64 writers) / PostgreSQL INSERT | "
        f"{times(q['durable_append_w64_vs_postgres_insert'])} |",
        f"| Ticketlog HTTP commands / Redis XADD | {times(q['http_commands_vs_redis_xadd'])} |",
        f"| Ticketlog HTTP commands / PostgreSQL INSERT | {times(q['http_commands_vs_postgres_insert'])} |",
        f"| Ticketlog on PostgreSQL: durable append (64 writers) / pgbench INSERT (same server) | "
        f"{times(q['postgres_store_append_w64_vs_postgres_insert'])} |",
        f"| Ticketlog on PostgreSQL: HTTP commands / pgbench INSERT (same server) | "
        f"{times(q['postgres_store_http_commands_vs_postgres_insert'])} |",
        "",
        "Neither ratio is like for like: the durable append runs in-process while the peers are reached over "
        "loopback TCP, and an HTTP command (JWT check, decision, append, JSON answer) does more than a bare "
        "XADD or INSERT. See bench/README.md.",
        "",
    ]
    audit = report["durability_syscalls"]
    if audit:
        lines += [
            "What each contender asks of the disk before acknowledging (strace -c over a short run):",
            "",
            "| Contender | Workload | fsync | fdatasync | sync_file_range |",
            "|---|---|---:|---:|---:|",
        ]
        for name, entry in audit.items():
            c = entry["calls"]
            lines.append(f"| {name} | {entry['workload']} | {c['fsync']:,} | {c['fdatasync']:,} | "
                         f"{c['sync_file_range']:,} |")
        t = audit.get("ticketlog")
        if t and t["calls"]["sync_file_range"] and not t["calls"]["fdatasync"] and t["calls"]["fsync"] < 20:
            lines += [
                "",
                "**Ticketlog acknowledges after `sync_file_range` (sled 0.34.7's flush on Linux), not "
                "`fdatasync`**; sled's background thread calls `fsync` every 500 ms. That survives a process "
                "crash (kill -9), but `sync_file_range` flushes neither the drive's write cache nor the file's "
                "metadata, so up to ~500 ms of acknowledged events are exposed to a power loss or kernel crash, "
                "where Redis (appendfsync always) and PostgreSQL (synchronous_commit on) call `fdatasync` before "
                "answering. The durable-append ratios compare unequal guarantees.",
            ]
        lines.append("")
    return "\n".join(lines)


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    raw, json_path, md_path = sys.argv[1:]
    report = build(raw)
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
