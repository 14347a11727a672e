#!/usr/bin/python3
"""The REST benchmark (run by tests/bench/rest_bench.sh; not a ctest timed test).

In one run on one SoftHSM2 token, for RSA-2048 and EC P-256 credentials:
  raw      the raw PKCS#11 signing rate: rest_raw, a direct C_Sign loop, one session per core
  engine   the engine's SignHash rate over gRPC from 16 threads (rest_engine, the gateway's
           client library), same credential, SADs from the REST approval flow
  rest1    signatures/signHash over REST, 16 keep-alive connections (wrk), one hash per call,
           SADs of numSignatures=1000
  rest100  the same with 100 hashes per call (and engine100 likewise)
  flows    the full approval flow per second with 16 concurrent flows: authorize ->
           requests/info + authData check + KAK signature (rssp-sic's code, cached key) ->
           confirm -> authorizeCheck -> signHash
It prints the measured rates, the ratios REST/raw, and where the CPU time goes (CPU
milliseconds per signature in the engine, the gateway, PostgreSQL and the load generator,
read from /proc/PID/stat before and after each phase). Only measured numbers are printed.
"""
import argparse
import hashlib
import math
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import stack  # noqa: E402

SHA256_OID = "2.16.840.1.101.3.4.2.1"
ALGO = {"rsa2048": "1.2.840.113549.1.1.11", "ecp256": "1.2.840.10045.4.3.2"}
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # utime, stime, cutime, cstime (fields 14-17 of stat; 12-15 after the comm)
            total += sum(int(x) for x in fields[11:15]) / CLK
        except (OSError, IndexError, ValueError):
            pass
    return total


def children_cpu():
    """CPU seconds of the reaped children of this process (wrk, rest_engine, flow workers)."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class CpuMeter:
    """CPU seconds per component across a phase: the engine and the gateway from
    /proc/PID/stat, PostgreSQL from the backends of the benchmark's database, the load
    generator from the rusage of reaped children."""

    def __init__(self, st):
        self.st = st

    def pg_pids(self):
        out = subprocess.run(["psql", "-At", self.st.db_url, "-c",
                              "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"],
                             capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]

    def snapshot(self, pg):
        return {"engine": cpu_seconds([self.st.engine.pid]),
                "gateway": cpu_seconds([self.st.gateway.pid]),
                "postgres": cpu_seconds(pg),
                "client": children_cpu()}


def run_raw(args, st, key):
    """rest_raw on the engine's token; returns (signatures/s, its output line) and keeps
    its CPU per signature (key generation excluded) in run_raw.cpu_per_sig."""
    r = subprocess.run([args.raw_bin, st.module, "rssp-" + st.name, st.pin_file, key,
                        str(args.cores), str(args.seconds)], env=st.engine_env(),
                       capture_output=True, text=True, check=True)
    line = r.stdout.strip()
    run_raw.cpu_per_sig = float(line.split("cpu_ms=")[1]) / 1000
    return float(line.split("rate=")[1].split()[0]), line


def get_sads(signer_pool, rp, cred, digests, n):
    """n SADs of numSignatures=1000 over digests, approved concurrently (16 flows)."""
    def one(i):
        return signer_pool[i % len(signer_pool)].approve(rp, cred, digests, SHA256_OID, 1000)
    with ThreadPoolExecutor(16) as ex:
        return list(ex.map(one, range(n)))


def metrics_sums(st):
    """(signHash handler seconds, signHash requests, engine SignHash seconds, engine calls)
    summed from the gateway's /metrics histograms."""
    import requests
    text = requests.get(st.url + "/metrics", timeout=10).text
    v = [0.0, 0.0, 0.0, 0.0]
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, val = line.rsplit(" ", 1)
        low = name.lower()
        if "signhash" not in low:
            continue
        for i, metric in enumerate(("rssp_http_request_duration_seconds_sum",
                                    "rssp_http_request_duration_seconds_count",
                                    "rssp_engine_call_duration_seconds_sum",
                                    "rssp_engine_call_duration_seconds_count")):
            if name.startswith(metric + "{"):
                v[i] += float(val)
    return v


def run_noop(args, st, meter, pg):
    """The HTTP floor: POST /rssp/info (no database, no engine) with the same wrk setup."""
    lua = os.path.join(st.work, "noop.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = "{}"\n'
                'wrk.headers["Content-Type"] = "application/json"\n')
    before = meter.snapshot(pg)
    r = subprocess.run(["wrk", "-t%d" % args.wrk_threads, "-c%d" % args.connections,
                        "-d%ds" % args.seconds, "-s", lua, st.url + "/rssp/info"],
                       capture_output=True, text=True)
    after = meter.snapshot(pg)
    rate = float([x for x in r.stdout.splitlines() if x.startswith("Requests/sec:")][0].split()[1])
    calls = int(rate * args.seconds)
    return {"rate": rate, "calls": calls, "bad": 0, "secs": args.seconds, "sigs": calls,
            "cpu": {k: after[k] - before[k] for k in before}}


def run_wrk(args, st, rp, cred, key, digests, sads, meter, pg):
    params = os.path.join(st.work, "wrk-%s-%d.params" % (key, len(digests)))
    with open(params, "w") as f:
        f.write("token %s\ncredential %s\noid %s\nalgo %s\ncalls_per_sad %d\nhashes %s\n"
                % (rp.token, cred, SHA256_OID, ALGO[key], 1000 // len(digests),
                   ",".join(stack.b64e(d) for d in digests)))
        for s in sads:
            f.write("sad %s\n" % s)
    env = dict(os.environ, RSSP_BENCH_PARAMS=params, RSSP_BENCH_THREADS=str(args.wrk_threads))
    p = subprocess.Popen(["wrk", "-t%d" % args.wrk_threads, "-c%d" % args.connections,
                          "-d%ds" % args.seconds, "--timeout", "10s",
                          "-s", os.path.join(HERE, "rest_signhash.lua"), st.url],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    m0 = metrics_sums(st)
    before = meter.snapshot(pg)
    out, err = p.communicate()
    after = meter.snapshot(pg)
    m1 = metrics_sums(st)
    line = [x for x in out.splitlines() if x.startswith("wrk ")]
    if p.returncode != 0 or not line:
        raise RuntimeError("wrk failed: %s %s" % (out[-500:], err[-500:]))
    kv = dict(x.split("=") for x in line[0].split()[1:])
    calls = int(kv["requests"])
    bad = int(kv["non200"]) + int(kv["sockerr"])
    secs = float(kv["seconds"])
    sigs = (calls - bad) * len(digests)
    cpu = {k: after[k] - before[k] for k in before}
    d = [b - a for a, b in zip(m0, m1)]
    wall = ("in the gateway %.2f ms per signHash request, of which %.2f ms waiting for the "
            "engine's SignHash" % (1000 * d[0] / d[1], 1000 * d[2] / d[3])) if d[1] and d[3] else ""
    return {"rate": sigs / secs, "calls": calls, "bad": bad, "secs": secs, "sigs": sigs,
            "cpu": cpu, "p50": float(kv["p50_ms"]), "p99": float(kv["p99_ms"]),
            "stderr": err.strip(), "wall": wall}


def flow_worker(url, rp_token, state, cred, seconds, nthreads, barrier, q):
    """One process of the approval-flow phase: nthreads concurrent flows, from the moment
    every process is ready (keys loaded) until seconds later."""
    st = type("S", (), {"url": url})()
    counts = [0] * nthreads
    errors = [0] * nthreads
    signers = [stack.FastSigner(st, state) for _ in range(nthreads)]
    rps = [stack.Client(url, rp_token) for _ in range(nthreads)]
    barrier.wait()
    deadline = time.time() + seconds

    def loop(i):
        signer, rp = signers[i], rps[i]
        n = 0
        while time.time() < deadline:
            digest = hashlib.sha256(b"%d-%d-%d" % (os.getpid(), i, n)).digest()
            n += 1
            try:
                sad = signer.approve(rp, cred, [digest], SHA256_OID, 1, "flow")
                sig = rp.post("signatures/signHash", {
                    "credentialID": cred, "SAD": sad, "hashes": [stack.b64e(digest)],
                    "hashAlgorithmOID": SHA256_OID, "signAlgo": ALGO_BY_CRED[cred]})
                assert len(sig["signatures"]) == 1
                counts[i] += 1
            except (AssertionError, OSError, ValueError) as e:
                errors[i] += 1
                if errors[i] <= 2:
                    print("flow error: %.300s" % e, file=sys.stderr)
    ts = [threading.Thread(target=loop, args=(i,)) for i in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    q.put((sum(counts), sum(errors)))


ALGO_BY_CRED = {}


def run_flows(args, st, rp, state, cred, meter, pg):
    procs = args.flow_procs
    per = args.flows // procs
    q = multiprocessing.Queue()
    barrier = multiprocessing.Barrier(procs + 1)
    ps = [multiprocessing.Process(target=flow_worker, args=(st.url, rp.token, state, cred,
                                                            args.seconds, per, barrier, q))
          for _ in range(procs)]
    for p in ps:
        p.start()
    barrier.wait()
    # The workers' start-up is outside the window; their CPU (children) is not: it is
    # counted from here only for engine, gateway and PostgreSQL, and whole for the client.
    before = meter.snapshot(pg)
    t0 = time.time()
    res = [q.get() for _ in ps]
    secs = time.time() - t0
    for p in ps:
        p.join()
    after = meter.snapshot(pg)
    flows = sum(r[0] for r in res)
    return {"rate": flows / secs, "flows": flows, "bad": sum(r[1] for r in res), "secs": secs,
            "cpu": {k: after[k] - before[k] for k in before}, "sigs": flows}


def run_engine(args, st, rp, cred, key, digests, sads, meter, pg):
    """rest_engine: SignHash straight to the engine's socket, 16 threads, same SADs shape."""
    sadf = os.path.join(st.work, "engine-%s-%d.sads" % (key, len(digests)))
    with open(sadf, "w") as f:
        f.write("".join(s + "\n" for s in sads))
    sign = {"rsa2048": "1", "ecp256": "3"}[key]
    p = subprocess.Popen([args.engine_bin, st.socket, cred, "1", sign, sadf,
                          ",".join(stack.b64e(d) for d in digests), str(1000 // len(digests)),
                          str(args.connections), str(args.seconds)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    before = meter.snapshot(pg)
    out, err = p.communicate()
    after = meter.snapshot(pg)
    line = [x for x in out.splitlines() if x.startswith("engine ")]
    if not line:
        raise RuntimeError("rest_engine failed: %s %s" % (out[-300:], err[-300:]))
    kv = dict(x.split("=") for x in line[0].split()[1:])
    secs = float(kv["seconds"])
    return {"rate": float(kv["rate"]), "calls": int(kv["calls"]), "bad": int(kv["errors"]),
            "secs": secs, "sigs": int(kv["signatures"]), "p50": 0.0, "p99": 0.0,
            "cpu": {k: after[k] - before[k] for k in before}, "stderr": err.strip()}


def cpu_line(name, res):
    sigs = max(res["sigs"], 1)
    parts = ["%s %.3f" % (k, v * 1000 / sigs) for k, v in res["cpu"].items()]
    total = sum(res["cpu"].values())
    return ("  %-14s CPU ms/signature: %s; all %.3f (%.0f%% of %d cores)"
            % (name, ", ".join(parts), total * 1000 / sigs,
               100 * total / res["secs"] / os.cpu_count(), os.cpu_count()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("RSSP_TEST_BUILD") or
                    os.path.join(stack.ROOT, "build"))
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--flows", type=int, default=16)
    ap.add_argument("--flow-procs", type=int, default=4)
    ap.add_argument("--workers", type=int, default=4, help="RSSP_ENGINE_WORKERS")
    ap.add_argument("--keys", default="rsa2048,ecp256")
    ap.add_argument("--http-threads", type=int, default=0,
                    help="RSSP_HTTP_THREADS for the gateway (0: its default)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--phases", default="info,engine1,rest1,engine100,rest100,flows",
                    help="the phases to run (for profiling one of them; the tables need all)")
    ap.add_argument("--smoke", action="store_true",
                    help="1 s phases; fail on any failed call (a ctest that the benchmark runs)")
    args = ap.parse_args()
    args.cores = os.cpu_count()
    if args.smoke:
        args.seconds = 1
        args.rounds = 1
    args.raw_bin = os.path.join(args.build, "tests", "bench", "rest_raw")
    args.engine_bin = os.path.join(args.build, "tests", "bench", "rest_engine")
    for need in (args.raw_bin, args.engine_bin, "wrk"):
        if not shutil.which(need) and not os.path.exists(need):
            sys.exit("rest_bench: %s not found (build rest_raw and rest_engine; apt-get install wrk)"
                     % need)
    os.environ.setdefault("RSSP_TEST_WORK", tempfile.gettempdir())
    genv = {"RSSP_HTTP_THREADS": str(args.http_threads)} if args.http_threads else {}
    # Every client of the benchmark comes from 127.0.0.1: the per-address connection cap
    # (RSSP_CONN_PER_ADDRESS, 64) would reset the flow phase's connections.
    genv["RSSP_CONN_PER_ADDRESS"] = "4096"
    st = stack.Stack(args.build, name="bench", workers=args.workers, gateway_env=genv)
    try:
        st.start()
        admin = st.admin()
        c = admin.post("admin/clients/create", {"name": "Bench RP"}, expect=201)
        rp = st.client().login(c["clientID"], c["secretKey"])
        user_id, _, state = stack.enrol_signer(st, rp, admin, "bench", "ec-p256")
        creds = {}
        for key in args.keys.split(","):
            cr = rp.post("credentials/create", {"userID": user_id, "keyAlgo": key}, expect=201)
            st.sic(state, "credential-activate", cr["credentialID"], "--yes")
            creds[key] = cr["credentialID"]
            ALGO_BY_CRED[cr["credentialID"]] = ALGO[key]
        signers = [stack.FastSigner(st, state) for _ in range(16)]
        meter = CpuMeter(st)
        pg = meter.pg_pids()
        print("rest_bench: %d cores, engine workers %d, %d s per phase, %d connections, "
              "%d rounds" % (args.cores, args.workers, args.seconds, args.connections, args.rounds))
        phases = set(args.phases.split(","))
        if "info" in phases:
            r = run_noop(args, st, meter, meter.pg_pids())
            print("http floor: POST /rssp/info %.1f calls/s over %d connections"
                  % (r["rate"], args.connections))
            print(cpu_line("info", r).replace("signature", "call"))
        # The machine is shared: every phase is bracketed by raw measurements and its
        # ratio uses the mean of the two; with several rounds the medians are reported.
        rows = []
        failed = []
        for key, cred in creds.items():
            d1 = [hashlib.sha256(b"bench-1-" + key.encode()).digest()]
            d100 = [hashlib.sha256(b"bench-100-%d" % i).digest() for i in range(100)]
            rates, ratios, raws, effs = {}, {}, [], {}
            raw, rawline = run_raw(args, st, key)
            raws.append(raw)
            print(rawline)
            for rnd in range(args.rounds):
                for name, digests, fn in (("engine1", d1, run_engine), ("rest1", d1, run_wrk),
                                          ("engine100", d100, run_engine),
                                          ("rest100", d100, run_wrk)):
                    if name not in phases:
                        continue
                    per_sad = 1000 // len(digests)
                    threads = args.connections if fn is run_engine else args.wrk_threads
                    # enough for twice the raw rate: a phase must never run out of SADs
                    nsads = math.ceil(raw * args.seconds * 2 / (per_sad * len(digests))) + threads
                    t0 = time.time()
                    sads = get_sads(signers, rp, cred, digests, nsads)
                    t_sads = time.time() - t0
                    pg = meter.pg_pids()
                    r = fn(args, st, rp, cred, key, digests, sads, meter, pg)
                    before, before_cpu = raw, run_raw.cpu_per_sig
                    raw, rawline = run_raw(args, st, key)
                    # CPU efficiency: raw CPU per signature over the service's (engine,
                    # gateway, PostgreSQL) CPU per signature. Unlike rates it hardly moves
                    # with the load of other processes on a shared machine.
                    svc = sum(r["cpu"][k] for k in ("engine", "gateway", "postgres")) / max(r["sigs"], 1)
                    if svc > 0:
                        effs.setdefault(name, []).append((before_cpu + run_raw.cpu_per_sig) / 2 / svc)
                    raws.append(raw)
                    ratio = r["rate"] / ((before + raw) / 2)
                    rates.setdefault(name, []).append(r["rate"])
                    ratios.setdefault(name, []).append(ratio)
                    print("%s %s round %d: %.1f signatures/s, %.3f x raw (%d calls, %d failed, "
                          "p50 %.2f ms, p99 %.2f ms; %d SADs approved in %.1f s)"
                          % (key, name, rnd + 1, r["rate"], ratio, r["calls"], r["bad"], r["p50"],
                             r["p99"], nsads, t_sads))
                    if r["stderr"]:
                        print("  stderr: " + r["stderr"][:300].replace("\n", " | "))
                    print(cpu_line(name, r))
                    if r.get("wall"):
                        print("  " + r["wall"])
                    print("  " + rawline)
                    if r["bad"] or not r["sigs"]:
                        failed.append((key, name))
            if "flows" not in phases:
                continue
            pg = meter.pg_pids()
            r = run_flows(args, st, rp, state, cred, meter, pg)
            print("%s flows: %.1f approval flows/s (%d flows, %d errors, %d concurrent)"
                  % (key, r["rate"], r["flows"], r["bad"], args.flows))
            print(cpu_line("flows", r))
            if r["bad"] or not r["sigs"]:
                failed.append((key, "flows"))
            rows.append((key, raws, rates, ratios, r["rate"], effs))
        med = statistics.median
        if not rows:
            return
        print()
        print("medians of %d round(s), %d s phases:" % (args.rounds, args.seconds))
        print("%-8s %9s %10s %9s %12s %10s %8s | %8s %9s %10s %11s"
              % ("key", "raw/s", "engine1/s", "rest1/s", "engine100/s", "rest100/s", "flows/s",
                 "eng1/raw", "rest1/raw", "eng100/raw", "rest100/raw"))
        for key, raws, rates, ratios, flows, effs in rows:
            print("%-8s %9.1f %10.1f %9.1f %12.1f %10.1f %8.1f | %8.3f %9.3f %10.3f %11.3f"
                  % (key, med(raws), med(rates["engine1"]), med(rates["rest1"]),
                     med(rates["engine100"]), med(rates["rest100"]), flows,
                     med(ratios["engine1"]), med(ratios["rest1"]), med(ratios["engine100"]),
                     med(ratios["rest100"])))
        print()
        print("CPU efficiency, medians: raw CPU per signature / (engine + gateway + PostgreSQL) "
              "CPU per signature; the ratio a CPU-bound run on these cores tends to")
        print("%-8s %8s %8s %10s %11s" % ("key", "engine1", "rest1", "engine100", "rest100"))
        for key, raws, rates, ratios, flows, effs in rows:
            # a phase whose CPU could not be measured (too short to register a clock tick)
            # has no efficiency: printed as nan, never made up
            print("%-8s %8.3f %8.3f %10.3f %11.3f" % (key, *(med(effs.get(n) or [float("nan")])
                                                            for n in ("engine1", "rest1", "engine100", "rest100"))))
        print("raw: %d threads (one PKCS#11 session each) on the same token; targets: rest1/raw "
              ">= 0.80 (rsa2048), rest100/raw >= 0.95 (rsa2048) and >= 0.80 (ecp256)" % args.cores)
        if failed:
            print("rest_bench: failed calls or no signatures in %s" % failed, file=sys.stderr)
            sys.exit(1)
    finally:
        st.stop()
        st.cleanup()


if __name__ == "__main__":
    main()
