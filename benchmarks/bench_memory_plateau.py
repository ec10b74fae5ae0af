"""Does the server's RSS level off under many requests, and which process-wide setting makes it level off lower?

    python benchmarks/bench_memory_plateau.py [--requests 60] [--variants baseline,onednn-cache-0,arena-2]

A cheaper driver than bench_memory_growth (no Gradio server): each variant is a fresh interpreter, started with
the variant's environment (oneDNN and glibc read theirs once, at load), that loads the default weights through
app.PipelineRegistry and answers --requests requests with app.analysis (the pipeline, word colours, the page's
images), two at a time from a thread pool as the server's CONCURRENCY does. The requests cycle over the bundled
examples and a generated face clip (features extracted once, then cached) with transcripts of a new length each
time (3 to 120 words), so that the text encoder sees new shapes as it does from visitors. RSS is read after each
request (app.run has already called malloc_trim). Variants: baseline, glibc's default of a malloc heap per
thread up to 8 per core; onednn-cache-0, the same with oneDNN keeping no primitives (they are cached by shape);
arena-2, the app's setting (two heaps, app.py). Prints one table (RSS after the warm-up, after 10, 30 and all
requests, and the growth per 10 requests over the last half) and writes results/memory_plateau.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import ROOT, machine_info, machine_line, print_table, rss_mib, write_json

GLIBC_ARENAS = str(8 * os.cpu_count())   # glibc's default limit on 64-bit: 8 heaps per core
VARIANTS = {   # app.py takes MALLOC_ARENA_MAX from the environment, else 2
    "baseline": {"MALLOC_ARENA_MAX": GLIBC_ARENAS},
    "onednn-cache-0": {"MALLOC_ARENA_MAX": GLIBC_ARENAS, "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "0"},
    "arena-2": {"MALLOC_ARENA_MAX": "2"},
}
WORDS = ("the film was really good and I loved every minute of it but the ending felt rushed and a little "
         "boring honestly I would still watch it again with friends because the acting was wonderful").split()


def transcripts(n: int, seed: int = 0) -> list[str]:
    """``n`` transcripts of 3 to 120 words, each a new length as far as the range allows."""
    rng = random.Random(seed)
    lengths = [3 + (i * 37) % 118 for i in range(n)]
    return [" ".join(rng.choice(WORDS) for _ in range(k)) for k in lengths]


def child(requests: int, clips_made: int) -> dict:
    """In the variant's interpreter: RSS after the warm-up and after each request. ``clips_made`` > 0: the
    requests cycle over that many generated clips instead (more than the feature cache holds: every request
    decodes and extracts)."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import app
    from bench_soak import good_requests
    registry = app.PipelineRegistry(app.default_source(), max_duration_s=app.MAX_DURATION_S,
                                    max_file_bytes=app.MAX_FILE_BYTES)
    registry.get()
    app.warm_up(registry)
    with tempfile.TemporaryDirectory() as tmp:
        clips = [g[1]["video"] for g in good_requests(Path(tmp))]
        for clip in clips:                       # features extracted now: the loop measures cached requests
            app.analysis(registry, clip, "warm", None, 0, None)
        if clips_made:
            from preprocessing.synthetic import make_face_clip
            clips = [make_face_clip(Path(tmp) / f"made{i}.mp4", 2.0 + i % 5 * 0.5, fps=10, size=(320, 180), seed=i,
                                    audio="tone", pitch_hz=120.0 + 7 * i) for i in range(clips_made)]
        start_rss, t0 = rss_mib(), time.perf_counter()
        rss = []
        texts = transcripts(requests)
        with ThreadPoolExecutor(app.CONCURRENCY) as pool:
            for i in range(0, requests, app.CONCURRENCY):   # CONCURRENCY requests at once, as the server runs them
                batch = [pool.submit(app.analysis, registry, clips[j % len(clips)], texts[j], None, 0, None)
                         for j in range(i, min(i + app.CONCURRENCY, requests))]
                for future in batch:
                    future.result()
                rss.append(rss_mib())
        seconds = time.perf_counter() - t0
    return dict(start_rss_mib=start_rss, rss_mib=rss, seconds=seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--variants", default="baseline,onednn-cache-0,arena-2", help=f"of {', '.join(VARIANTS)}")
    ap.add_argument("--clips", type=int, default=0,
                    help="cycle over this many generated clips (all cache misses when over 16); 0: cached requests")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.requests, args.clips)))
        return
    info = machine_info()
    rows, runs = [], {}
    for name in args.variants.split(","):
        env = {**os.environ, **VARIANTS[name]}
        out = subprocess.run([sys.executable, __file__, "--child", "--requests", str(args.requests),
                              "--clips", str(args.clips)], env=env,
                             capture_output=True, text=True, cwd=ROOT)
        if out.returncode:
            raise RuntimeError(f"the {name} run failed:\n{out.stderr[-3000:]}")
        run = runs[name] = dict(env=VARIANTS[name], **json.loads(out.stdout.strip().splitlines()[-1]))
        rss, step = run["rss_mib"], 10 // 2   # one RSS reading per CONCURRENCY (2) requests
        half = len(rss) // 2
        per_10 = (rss[-1] - rss[half]) / max(1, len(rss) - 1 - half) * step
        rows.append([name, round(run["start_rss_mib"]), round(rss[min(step, len(rss)) - 1]), round(rss[min(15, len(rss)) - 1]),
                     round(rss[-1]), round(max(rss)), round(per_10, 1), round(run["seconds"] / args.requests, 2)])
        print(rows[-1], f"{len(rss)} readings", flush=True)
    kind = f"{args.clips} generated clips in turn (cache misses)" if args.clips else "cached requests"
    print(f"\nRSS (MiB) under {kind} with transcripts of new lengths, {args.requests} per variant, two at a time; {machine_line(info)}, load {os.getloadavg()[0]:.1f}")
    table = print_table(["variant", "after warm-up", "after 10", "after 30", f"after {args.requests}", "peak",
                         "growth per 10 requests, last half", "s per request"], rows)
    write_json("memory_plateau" + ("_misses" if args.clips else ""), dict(machine=info, requests=args.requests,
                                                                       clips=args.clips, runs=runs, table=table))


if __name__ == "__main__":
    main()
