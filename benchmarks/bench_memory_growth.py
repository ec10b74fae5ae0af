"""What grows in the server's memory, by kind of request: Python objects (tracemalloc) or native memory, and how
much of it glibc gives back when asked (malloc_trim).

    python benchmarks/bench_memory_growth.py [--requests 30] [--kinds good,malformed,junk weights,probes]

Runs the app in this process (app.build_demo on the bundled default weights, served on a loopback port with the
public server's settings) and drives it from a second process (gradio_client, as bench_soak does), one kind of
request after another: the good requests of bench_soak, the malformed corpus (tests/malformed_corpus.py), junk
Hub repo ids, and the attack probes (soak_probes.py). After each phase it collects garbage and reads RSS, the
bytes tracemalloc sees Python holding (with the ten places that grew most), and RSS again after malloc_trim(0).
RSS that grows while the traced bytes do not is native memory (PyTorch, NumPy, the decoders); RSS that
malloc_trim gives back was freed but kept by the allocator. A kind named again in --kinds runs again: whether
its growth levels off. Prints one table, writes results/memory_growth.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench_inference import free_port
from common import ROOT, machine_info, machine_line, print_table, write_json

DRIVER = """
import json, random, sys
sys.path[:0] = [{bench!r}, {tests!r}]
from pathlib import Path
from gradio_client import Client
from bench_soak import good_requests, send
from malformed_corpus import cases
from soak_probes import Probes
url, kind, n, tmp = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
good = good_requests(tmp)
clip = good[-1][1]["video"]
client = Client(url, verbose=False)
rng = random.Random(0)
if kind == "good":
    todo = [lambda g=g: send(client, url, g[1]) for g in good]
elif kind == "malformed":
    todo = [lambda c=c: send(client, url, c.inputs(clip)) for c in cases(tmp / "corpus", clip)]
elif kind == "junk weights":
    todo = [lambda i=i: send(client, url, dict(video=clip, transcript="I loved it", window=0,
                                                weights=f"growth-junk/no-such-model-{{i}}")) for i in range(n)]
else:
    probes = Probes(tmp, clip)
    todo = [lambda p=p: p(url) for p in {{**probes.refused(), **probes.answered()}}.values()]
answers = []
for i in range(n):
    answered, _ = todo[i % len(todo)]()
    answers.append(answered)
print(json.dumps(answers))
"""
KINDS = ("good", "malformed", "junk weights", "probes")


def rss_mib() -> float:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024


def settle() -> tuple[float, int]:
    """(RSS MiB, bytes tracemalloc sees) after a garbage collection."""
    gc.collect()
    return rss_mib(), tracemalloc.get_traced_memory()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=30, help="requests per kind")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"phases in turn, of: {', '.join(KINDS)}")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import app
    from mclmcf.serving.memory import release_freed_memory
    info = machine_info()
    registry = app.PipelineRegistry(app.default_source(), max_duration_s=app.MAX_DURATION_S,
                                    max_file_bytes=app.MAX_FILE_BYTES)
    demo = app.build_demo(registry)
    app.warm_up(registry)
    port = free_port()
    app.serve(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    tracemalloc.start(8)
    rows, phases = [], []
    with tempfile.TemporaryDirectory() as tmp:
        driver = DRIVER.format(bench=str(ROOT / "benchmarks"), tests=str(ROOT / "tests"))
        release_freed_memory()
        rss, traced = settle()
        before = tracemalloc.take_snapshot()
        for kind in args.kinds.split(","):
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", driver, url, kind, str(args.requests), tmp],
                                 capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                raise RuntimeError(f"the {kind} driver failed:\n{out.stderr[-3000:]}")
            answered = json.loads(out.stdout.strip().splitlines()[-1])
            rss_after, traced_after = settle()
            after = tracemalloc.take_snapshot()
            top = [(str(s.traceback[0]), s.size_diff / 2**20) for s in after.compare_to(before, "lineno")[:10]]
            release_freed_memory()
            trimmed = rss_mib()
            rows.append([kind, len(answered), sum(a is True for a in answered), round(rss_after - rss, 1),
                         round((traced_after - traced) / 2**20, 1), round(trimmed - rss, 1), round(trimmed, 1),
                         round(time.perf_counter() - t0)])
            phases.append(dict(kind=kind, requests=len(answered), rss_before_mib=rss, rss_after_mib=rss_after,
                               traced_growth_mib=(traced_after - traced) / 2**20, rss_after_trim_mib=trimmed,
                               top_python_growth_mib=top))
            rss, traced, before = trimmed, traced_after, after
    print(f"\nmemory growth by kind of request, {args.requests} requests each, in-process server on the default "
          f"weights; {machine_line(info)}")
    table = print_table(["kind", "requests", "answered", "RSS growth MiB", "Python (traced) growth MiB",
                         "RSS growth after malloc_trim MiB", "RSS after trim MiB", "seconds"], rows)
    for phase in phases:
        print(f"  {phase['kind']}: most Python growth at", "; ".join(f"{where} {mib:+.2f} MiB"
                                                              for where, mib in phase["top_python_growth_mib"][:3]))
    name = "memory_growth" + ("" if args.kinds == ",".join(KINDS) else "_" + args.kinds.replace(",", "_").replace(" ", "-"))
    write_json(name, dict(machine=info, requests_per_kind=args.requests, kinds=args.kinds, phases=phases, table=table))
    os._exit(0)   # the server's threads would keep the process alive


if __name__ == "__main__":
    main()
