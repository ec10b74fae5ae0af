"""The app with the default weights beside the previous default, in one run: start-up, request cost, memory.

    python benchmarks/bench_default_weights.py [--reference DIR] [--requests 5]

Each set of weights is served by its own `python app.py --weights DIR` process, started with empty numba and
matplotlib caches (as after `pip install -r requirements.txt`; bench_first_answer.py explains "fresh"):
  console silence   the longest gap between two lines on the app's console before the server answered
  server up         launch -> the port answers (the app loads the weights and analyses an example first)
  first answer      launch -> the first /predict answer (a 6 s clip, typed transcript, features extracted)
  cached request    median over --requests of the same clip again with other typed transcripts: features come
                    from the cache, so this is the text encoder, the model, the ablations and word attribution
  RSS steady / peak the app process's resident memory after those requests (VmRSS) and its peak (VmHWM)
Reference: the previous default (fine-tuned all-MiniLM-L6-v2), taken from git history at REFERENCE_COMMIT
unless --reference names a directory. Goals (issue 26): cached request <= 1.5x the reference's, first answer
<= 20 s, steady RSS <= 2 GiB. Writes benchmarks/results/default_weights.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_inference import free_port
from common import ROOT, machine_info, machine_line, print_table, write_json

REFERENCE_COMMIT = "d3957cb"     # the last commit whose checkpoints/ held the MiniLM weights
REFERENCE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
TRANSCRIPTS = ["There was nothing I disliked about it.", "I can't say I didn't enjoy it.",
               "Not once did I feel bored.", "The food was great but the service was terrible.",
               "It started well, then it fell apart completely."]
GOALS = dict(cached_x=1.5, first_answer_s=20.0, rss_mib=2048.0)


def reference_weights(out: Path) -> Path:
    """The previous default's files from git history (the benchmark's only use of git)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in REFERENCE_FILES:
        blob = subprocess.run(["git", "show", f"{REFERENCE_COMMIT}:checkpoints/{name}"], cwd=ROOT, check=True,
                              capture_output=True).stdout
        (out / name).write_bytes(blob)
    return out


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))


def serve_and_measure(weights: Path, clip: Path, n_requests: int, tmp: Path) -> dict:
    from gradio_client import Client, handle_file
    port = free_port()
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp / "numba"), "MPLCONFIGDIR": str(tmp / "matplotlib")}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--weights", str(weights), "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: lines.extend((time.perf_counter() - start, line.rstrip())
                                                          for line in proc.stdout), daemon=True)
    reader.start()
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("app.py exited:\n" + "\n".join(text for _, text in lines[-30:]))
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:  # server not up yet
                time.sleep(0.5)
        up = time.perf_counter() - start
        client.predict(handle_file(str(clip)), TRANSCRIPTS[0], api_name="/predict")
        first = time.perf_counter() - start
        cached = []
        for i in range(n_requests):
            t0 = time.perf_counter()
            answer = client.predict(handle_file(str(clip)), TRANSCRIPTS[(i + 1) % len(TRANSCRIPTS)], api_name="/predict")
            cached.append(time.perf_counter() - t0)
            assert answer["features_cached"], "the clip's features were not cached"
        rss, peak = memory_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    stamps = [0.0] + [t for t, _ in lines if t <= up] + [up]
    return dict(server_up_s=up, first_answer_s=first, cached_request_s=statistics.median(cached),
                cached_requests_s=cached, rss_mib=rss, peak_rss_mib=peak,
                console_silence_s=max(b - a for a, b in zip(stamps, stamps[1:])),
                console=[f"{t:6.1f}s {text}" for t, text in lines if t <= up])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, help="previous default weights (default: from git history)")
    ap.add_argument("--weights", type=Path, default=ROOT / "checkpoints", help="the default weights")
    ap.add_argument("--requests", type=int, default=5)
    args = ap.parse_args()
    from preprocessing.synthetic import make_face_clip

    info = machine_info()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_face_clip(tmp / "clip.mp4", 6.0, fps=25, size=(640, 360), motion="sway", mouth="talk",
                              audio="speech")
        reference = args.reference or reference_weights(tmp / "reference")
        for name, weights in (("previous default (MiniLM, fine-tuned)", reference),
                              ("default (MPNet + adapters)", args.weights)):
            results[name] = serve_and_measure(weights, clip, args.requests, tmp / name.split()[0])
    ref, new = results.values()
    rows = [[name, r["console_silence_s"], r["server_up_s"], r["first_answer_s"], r["cached_request_s"],
             r["cached_request_s"] / ref["cached_request_s"], r["rss_mib"], r["peak_rss_mib"]]
            for name, r in results.items()]
    rows.append(["goal", "-", "-", GOALS["first_answer_s"], "-", GOALS["cached_x"], GOALS["rss_mib"], "-"])
    print(f"\napp with its weights, 6 s clip, typed transcripts; {machine_line(info)}")
    table = print_table(["weights", "longest console silence s", "server up s", "first answer s", "cached request s",
                         "x previous", "RSS MiB", "peak RSS MiB"], rows)
    print("\nconsole of the default until the server answered:\n" + "\n".join(new["console"]))
    write_json("default_weights", dict(machine=info, goals=GOALS, reference_commit=REFERENCE_COMMIT,
                                       results=results, table=table))


if __name__ == "__main__":
    main()
