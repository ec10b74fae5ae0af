"""Inference speed: model forward alone and the whole pipeline, as multiples of clip duration; app cold start.

    python benchmarks/bench_inference.py [--quick] [--durations 5 10 30] [--tcf-dim 512] [--no-app]

Checkpoint: an inference model (no contrastive heads) shaped like the demo weights (MOSI preset,
all-MiniLM-L6-v2 text encoder, the packaged feature extractor), random weights, saved to a temp dir.
Clips: preprocessing.synthetic.make_face_clip (astronaut face, swaying camera, talking mouth,
espeak-ng speech), 25 fps, 640x360 mp4.
  model forward    one forward with return_maps=True on the clip's features (median of 10 after a warm-up)
  pipeline         median of --reps runs after one warm-up run (the first call in a process also builds
                   the face-mesh graph and loads the expression model: the app cold start counts that).
                   Each run is SentimentPipeline.predict on a fresh pipeline (no feature cache): decode -> audio +
                   face features -> tokenizer -> text encoder + model (with the three modality
                   ablations the app shows) -> word attribution (mclmcf.serving.explain) -> the three TCF heatmaps as
                   the page shows them (mclmcf.ui.result.tcf_html: colour lookup, PNG encoding, HTML)
  app cold start   `python app.py` in a subprocess until the first gradio_client /predict answer (the app runs
                   its warm-up analysis before serving; caches as this machine has them: see
                   bench_first_answer.py for a fresh install)
Writes benchmarks/results/inference.json.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, machine_info, machine_line, print_table, timed, write_json

sys.path.insert(0, str(ROOT / "tests"))   # random_weights: the tests' untrained demo-shaped weights
TRANSCRIPT = "I really enjoyed this movie, it was great."


def measure_clip(weights, clip: Path, duration: float, reps: int) -> dict:
    import torch
    from mclmcf.ui import result as viz
    from mclmcf.serving.pipeline import SentimentPipeline

    def pipeline_run():
        pred = SentimentPipeline(weights, max_duration_s=60.0).predict(clip, TRANSCRIPT)
        start = time.perf_counter()
        for pair in pred.tcf_images:
            viz.tcf_html(pair, pred.tcf_images[pair], pred.tcf_feature_maps[pair])
        return pred, time.perf_counter() - start

    pipeline_run()
    pipe_times, stages = [], []
    for _ in range(reps):
        start = time.perf_counter()
        pred, heatmaps_s = pipeline_run()
        pipe_times.append(time.perf_counter() - start)
        stages.append(dict(pred.timings, heatmaps=heatmaps_s))

    model, dev = weights.model, weights.device
    tokens = weights.tokenizer([TRANSCRIPT], return_tensors="pt")
    audio = torch.as_tensor(pred.clip.audio, dtype=torch.float32, device=dev)[None]
    vision = torch.as_tensor(pred.clip.vision, dtype=torch.float32, device=dev)[None]
    args = (tokens["input_ids"].to(dev), tokens["attention_mask"].to(dev), audio, torch.tensor([audio.shape[1]]),
            vision, torch.tensor([vision.shape[1]]))

    def forward():
        with torch.inference_mode():
            model(*args, token_type_ids=tokens["token_type_ids"].to(dev), return_maps=True)

    forward_s = statistics.median(timed(forward, dev.type, 1, 10))
    pipeline_s = statistics.median(pipe_times)
    return dict(duration_s=duration, audio_frames=audio.shape[1], face_frames=vision.shape[1], forward_s=forward_s,
                pipeline_s=pipeline_s, forward_x=forward_s / duration, pipeline_x=pipeline_s / duration,
                stages_s={k: statistics.median(s[k] for s in stages) for k in stages[0]})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a running process and of its children it has waited for: steadier than
    wall time on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def app_cold_start(weights_dir: Path | None, clip: Path, timeout: float = 300, env: dict | None = None,
                   root: Path = ROOT) -> dict:
    """Seconds from launching ``root``/app.py (``--weights weights_dir``, else its default) to the server
    answering, and to the first /predict answer; ``env`` is added to the app's environment. Also the app's CPU
    seconds by its first answer (``cpu_s``) and the longest stretch without a console line before the server
    answered (``longest_silence_s``) and the line it followed."""
    from gradio_client import Client, handle_file
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    start = time.perf_counter()
    weights = ["--weights", str(weights_dir)] if weights_dir else []
    proc = subprocess.Popen([sys.executable, "-u", "app.py", *weights, "--port", str(port)], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
    lines = [(0.0, "(launch)")]   # (seconds since launch, console line)

    def read_console():           # as the lines come: a full pipe would also block the app
        for line in proc.stdout:
            lines.append((time.perf_counter() - start, line.rstrip()))

    reader = threading.Thread(target=read_console, daemon=True)
    reader.start()
    try:
        while True:
            if proc.poll() is not None:
                reader.join(5)
                raise RuntimeError("app.py exited:\n" + "\n".join(line for _, line in lines[-30:]))
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"app.py did not answer in {timeout:g} s:\n" + "\n".join(line for _, line in lines[-30:]))
            try:
                client = Client(url, verbose=False)
                break
            except Exception:  # server not up yet
                time.sleep(0.5)
        up = time.perf_counter() - start
        before_up = [entry for entry in lines if entry[0] <= up] + [(up, "(server up)")]
        gap, after = max((b[0] - a[0], a[1]) for a, b in zip(before_up, before_up[1:]))
        client.predict(handle_file(str(clip)), TRANSCRIPT, api_name="/predict")
        answered = time.perf_counter() - start
        return dict(server_up_s=up, first_answer_s=answered, cpu_s=process_cpu_s(proc.pid), longest_silence_s=gap,
                    silence_after=after[:120], console=[(round(t, 2), line[:160]) for t, line in before_up])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: one 2 s clip, small TCF, no app")
    ap.add_argument("--durations", type=float, nargs="+", default=[5, 10, 30])
    ap.add_argument("--tcf-dim", type=int, default=512)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--no-app", action="store_true", help="skip the app cold-start measurement")
    ap.add_argument("--threads", type=int, help="torch threads")
    args = ap.parse_args()
    import torch
    from mclmcf.serving.weights import load_weights
    from preprocessing.synthetic import make_face_clip
    from random_weights import save_random_weights

    if args.threads:
        torch.set_num_threads(args.threads)
    durations = [2.0] if args.quick else args.durations
    tcf_dim = 64 if args.quick else args.tcf_dim
    info = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        weights_dir = save_random_weights(Path(tmp) / "weights", tcf_dim)
        weights = load_weights(str(weights_dir))
        rows, results = [], []
        for duration in durations:
            clip = make_face_clip(Path(tmp) / f"clip{duration:g}.mp4", duration, fps=25, size=(640, 360),
                                  motion="sway", mouth="talk", audio="speech")
            results.append(measure_clip(weights, clip, duration, 1 if args.quick else args.reps))
            r = results[-1]
            rows.append([f"{duration:g} s", r["forward_s"], r["forward_x"], r["pipeline_s"], r["pipeline_x"],
                         " ".join(f"{k} {v:.2f}" for k, v in r["stages_s"].items() if k != "total")])
        cold = None if args.quick or args.no_app else app_cold_start(weights_dir, clip)

    print(f"\ninference on {weights.device}, TCF {tcf_dim}x{tcf_dim}, MiniLM text encoder, random weights; "
          f"{machine_line(info)}")
    table = print_table(["clip", "forward s", "forward x clip", "pipeline s", "pipeline x clip",
                         "pipeline stages (s, median)"], rows)
    if cold:
        print(f"app cold start: server up after {cold['server_up_s']:.1f} s, first /predict answer "
              f"({durations[-1]:g} s clip) after {cold['first_answer_s']:.1f} s")
    write_json("inference_quick" if args.quick else "inference",
               dict(machine=dict(info, torch_threads=torch.get_num_threads()), quick=args.quick, tcf_dim=tcf_dim,
                    device=str(weights.device), results=results, app_cold_start=cold, table=table))


if __name__ == "__main__":
    main()
