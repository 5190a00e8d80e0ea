#!/usr/bin/env bash
# The runtime's figures for issue 14's before/after table, as one JSON object: key bytes per ReLU per party
# at 64 and 32 comparison bits, 1e6-ReLU online time, one party's key evaluation and the dealer's key
# generation at 1 and 2 threads (speedup), and ResNet-18 CIFAR all-ReLU batch 1 end to end (dealer, then
# `pinas party` server and client over loopback): online and offline seconds, dealer seconds, bytes, and
# each process's peak RSS (measured from outside with wait4's ru_maxrss, so an old binary that does not
# report it is measured the same way; the processes' own reports are kept beside it when they have them),
# and the binary's own peak RSS (`BIN --version`: what every process costs before it loads anything).
# wait4's figure of a child forked from this Python includes the Python pages it had until it exec'd
# (~10-20 MB): a floor under each process's figure, well below the parties' and the dealer's.
# Works against older binaries: an option they lack gives null, not a failure.
#   scripts/bench-runtime.sh BIN [OUT.json]
# Environment: PINAS_BENCH_RELU_N (default 1000000), PINAS_BENCH_REPS (default 3), PINAS_BENCH_RUNS
# (ResNet-18 runs, median; default 1), PINAS_BENCH_SPACE (a space JSON instead of ResNet-18, for smoke tests).
set -euo pipefail
BIN=${1:?usage: scripts/bench-runtime.sh BIN [OUT.json]}
OUT=${2:-}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
python3 - "$BIN" "$W" "${PINAS_BENCH_RELU_N:-1000000}" "${PINAS_BENCH_REPS:-3}" "${PINAS_BENCH_RUNS:-1}" \
  "${PINAS_BENCH_SPACE:-}" > "$W/out.json" <<'PY'
import json, os, socket, statistics, struct, subprocess, sys, time

BIN, W, N, REPS, RUNS, SPACE = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
log = lambda *a: print(*a, file=sys.stderr, flush=True)

def helps(*cmd):
    """The --help text of a subcommand ('' when it has none)."""
    r = subprocess.run([BIN, *cmd, "--help"], capture_output=True, text=True)
    return r.stdout + r.stderr

def run_json(args):
    """Runs BIN with args; the JSON it prints, or None when it fails (an option it lacks)."""
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    if r.returncode != 0:
        log("bench-runtime: `pinas %s` failed: %s" % (" ".join(args), r.stderr.strip()[-300:]))
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

out = {"binary": BIN, "relu_n": N, "reps": REPS}
ver = subprocess.run([BIN, "--version"], capture_output=True, text=True)
out["version"] = (ver.stdout or ver.stderr).strip() or None

# ---- ReLU: key bytes per element per party at 64 and 32 comparison bits, online time of N ReLUs
relu_help = helps("bench", "relu")
relu = {}
for bits, n in ((64, N), (32, min(N, 100000))):
    j = run_json(["bench", "relu", "--n", str(n), "--reps", str(REPS if bits == 64 else 1), "--cmp-bits", str(bits), "--json"])
    relu["cmp%d" % bits] = None if j is None else {
        "n": j.get("n"),
        "key_bytes_per_relu": {"server": j.get("prep_bytes_per_element_server"), "client": j.get("prep_bytes_per_element_client")},
        "online_s": j.get("median_online_s"), "offline_s": j.get("median_offline_s"),
        "online_bytes_per_relu": {"server": j.get("bytes_sent_per_element_server"), "client": j.get("bytes_sent_per_element_client")},
        "rounds": j.get("rounds")}
out["relu"] = relu

# ---- one party's key evaluation and the dealer's key generation, 1 and 2 threads (options of newer binaries)
def threads_bench(mode):
    if "--" + mode not in relu_help or "--threads" not in relu_help:
        return None
    t = {}
    for th in (1, 2):
        j = run_json(["bench", "relu", "--" + mode, "--n", str(N), "--reps", str(REPS), "--threads", str(th), "--json"])
        t["threads%d_s" % th] = j.get("median_s") if j else None
    t["speedup"] = t["threads1_s"] / t["threads2_s"] if t["threads1_s"] and t["threads2_s"] else None
    return t
out["relu_eval_only"] = threads_bench("eval-only")
out["relu_keygen"] = threads_bench("keygen")

# ---- ResNet-18 CIFAR all-ReLU, batch 1: dealer, then the two parties as processes
space = SPACE or os.path.join(W, "r18.json")
if not SPACE:
    json.dump({"format": "pinas-net/1", "name": "resnet18-cifar", "backbone": "resnet", "depth": 18, "stem": "cifar",
               "input": [3, 32, 32], "num_classes": 10, "act": ["relu"], "pool": ["maxpool"]}, open(space, "w"))
m = os.path.join(W, "m")
subprocess.run([BIN, "model", "random", space, "--arch", "all-relu", "--seed", "0", "--out", m], check=True, capture_output=True)
shape = json.load(open(os.path.join(m, "net.json")))["input"]
n_in = shape[0] * shape[1] * shape[2]
data = struct.pack("<%df" % n_in, *[((i * 37) % 101 - 50) / 25.0 for i in range(n_in)])
hdr = json.dumps({"x": {"dtype": "F32", "shape": [1] + shape, "data_offsets": [0, len(data)]}}).encode()
hdr += b" " * ((8 - len(hdr) % 8) % 8)
x = os.path.join(W, "x.safetensors")
open(x, "wb").write(struct.pack("<Q", len(hdr)) + hdr + data)
dealer_threads = "--threads" in helps("dealer")
party_threads = "--threads" in helps("party")
ncpu = os.cpu_count() or 1

def spawn(args, cpu):
    """Starts BIN args (stdout to a file), pinned to one core when there are two; returns (pid, path, t0)."""
    path = os.path.join(W, "o%d.json" % len(os.listdir(W)))
    pid = os.fork()
    if pid == 0:
        try:
            if cpu is not None and ncpu >= 2:
                os.sched_setaffinity(0, {cpu})
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.execv(BIN, [BIN] + args)
        finally:
            os._exit(127)
    return pid, path, time.time()

def finish(job):
    """Waits for a job: (exit status, seconds, peak RSS bytes from ru_maxrss, its JSON or None)."""
    pid, path, t0 = job
    _, status, ru = os.wait4(pid, 0)
    try:
        j = json.load(open(path))
    except ValueError:
        j = None
    return os.waitstatus_to_exitcode(status), time.time() - t0, ru.ru_maxrss * 1024, j

def binary_rss():
    """Peak RSS of `BIN --version` under /usr/bin/time (not wait4 here: a child forked from Python
    counts Python's pages until it execs), or None without /usr/bin/time."""
    if not os.path.exists("/usr/bin/time"):
        return None
    r = subprocess.run(["/usr/bin/time", "-f", "%M", BIN, "--version"], capture_output=True, text=True)
    try:
        return int(r.stderr.strip().splitlines()[-1]) * 1024
    except (ValueError, IndexError):
        return None

def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

runs = []
for r in range(RUNS):
    p = os.path.join(W, "p%d" % r)
    dargs = ["dealer", m, "--batch", "1", "--out", p, "--new-dealer-key", os.path.join(W, "dk%d" % r), "--json"]
    rc, dsec, drss, dj = finish(spawn(dargs + (["--threads", "1"] if dealer_threads else []), None))
    if rc != 0:
        log("bench-runtime: the dealer failed"); sys.exit(1)
    hp = "127.0.0.1:%d" % port()
    common = ["--model", m, "--dealer-key", os.path.join(W, "dk%d" % r), "--insecure", "--timeout", "600", "--json"]
    common += ["--threads", "1"] if party_threads else []
    sj = spawn(["party", "--role", "server", "--prep", os.path.join(p, "server.prep"), "--listen", hp] + common, 0)
    time.sleep(0.3)
    cj = spawn(["party", "--role", "client", "--prep", os.path.join(p, "client.prep"), "--connect", hp, "--input", x] + common, 1)
    crc, _, crss, c = finish(cj)
    src, _, srss, s = finish(sj)
    if crc != 0 or src != 0 or c is None:
        log("bench-runtime: the parties failed (server %d, client %d)" % (src, crc)); sys.exit(1)
    t = c["totals"]
    runs.append({"online_s": t.get("online_s"), "offline_s": t.get("offline_s"), "dealer_s": dsec,
                 "dealer_generate_s": dj.get("generate_seconds") if dj else None,
                 "prep_bytes": {"server": t["offline"]["bytes"][0], "client": t["offline"]["bytes"][1]},
                 "online_bytes": {"server": t["online"]["bytes"][0], "client": t["online"]["bytes"][1]},
                 "rounds": t["online"]["rounds"],
                 "peak_rss_bytes": {"dealer": drss, "server": srss, "client": crss},
                 "reported_peak_rss_bytes": {"dealer": dj.get("peak_rss_bytes") if dj else None,
                                             "server": s.get("peak_rss_bytes") if s else None,
                                             "client": c.get("peak_rss_bytes")},
                 "prep_read_s": {"server": s.get("prep_read_s") if s else None, "client": c.get("prep_read_s")},
                 "prep_bytes_max_layer": {"server": max((l.get("prep_bytes_server", 0) for l in c["layers"]), default=0),
                                          "client": max((l.get("prep_bytes_client", 0) for l in c["layers"]), default=0)}})
    import shutil
    shutil.rmtree(p, ignore_errors=True)

def median_of(key, sub=None):
    return med([(x[key][sub] if sub else x[key]) if x[key] is not None else None for x in runs])

net = {"space": os.path.basename(space) if SPACE else "resnet18-cifar all-relu", "batch": 1, "runs": RUNS,
       "model_bytes": os.path.getsize(os.path.join(m, "weights.safetensors")),
       "binary_peak_rss_bytes": binary_rss()}
for k in ("online_s", "offline_s", "dealer_s", "dealer_generate_s", "rounds"):
    net[k] = median_of(k)
for k in ("prep_bytes", "online_bytes", "peak_rss_bytes", "reported_peak_rss_bytes", "prep_read_s", "prep_bytes_max_layer"):
    net[k] = {who: median_of(k, who) for who in runs[0][k]}
out["resnet18"] = net
print(json.dumps(out, indent=1))
PY
if [ -n "$OUT" ]; then cp "$W/out.json" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"; fi
cat "$W/out.json"
