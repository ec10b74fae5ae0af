"""Live mode latency: from the end of a spoken phrase to the first updated score that has heard it.

    python benchmarks/bench_live.py [--quick] [--phrases 8] [--chunks 0.1 0.02] [--concurrent 2]

A recorded clip (espeak-ng phrases, alternately positive and negative, each followed by 2.5 s of silence;
the synthetic face at 640x480) goes through the Live tab's streaming path at real-time pace, as the
browser sends it: one thread hands LiveSession.stream_audio the audio recorded since its last call every
CHUNK seconds (the app's microphone stream handler; Gradio's microphone streams 0.1 s chunks, and a
chunk recorded while the handler runs goes out with the next one), another hands add_frame a webcam frame
every 0.25 s (the app's LIVE_FRAME_EVERY_S). Scoring runs on its own thread as in the app, with the bundled
demo weights and the packaged Whisper tiny.en.

Latency of a phrase = wall time at which the handler returned the first update whose window reaches the
phrase's end (known from the generated audio), minus the moment that end was "spoken" (start + its offset
in the clip). It holds waiting for the next chunk, for the running score to finish, the pause detection
(0.3 s of quiet) and the score itself (speech recognition, acoustic features, model); not the network
(localhost HTTP is a few ms; on Spaces add the visitor's round trip). The words' colours follow the score as a
second update of the same point (mclmcf.serving.live.colour_words), as in the app: "coloured" is the same
latency to the first update that has heard the phrase with its words coloured. Rows: Gradio's 0.1 s chunks; 0.02 s
chunks, the audio frames a WebRTC transport (FastRTC) would deliver: what a faster transport could gain at
most; and two sessions streaming at once (what MCLMCF_LIVE_SESSIONS=2 would allow), sharing the cores.
FastRTC itself is not measured: its releases require gradio<6 and this project pins gradio 6.31 (benchmarks/README.md,
"Live mode"). Writes benchmarks/results/live[_quick].json.
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from common import machine_info, machine_line, print_table, write_json

GOAL_S = 1.5
SR = 48_000
FRAME_EVERY_S = 0.25
PHRASES = [("What a wonderful, brilliant film. I loved it.", 1), ("A dull, lifeless mess. I hated it.", -1),
           ("A great movie, I really enjoyed it.", 1), ("The worst film I have seen, so boring.", -1),
           ("Beautiful and moving, simply excellent.", 1), ("Terrible acting, an awful waste of time.", -1),
           ("A charming and delightful story.", 1), ("I was bored and annoyed the whole time.", -1)]


def recorded_clip(n_phrases: int) -> tuple[np.ndarray, list[dict]]:
    """(waveform at SR, phrases with their end time and polarity): 1 s of silence, then each phrase + 2.5 s."""
    from preprocessing.synthetic import speak
    parts, phrases, t = [np.zeros(SR, np.float32)], [], 1.0
    for text, polarity in (PHRASES * 2)[:n_phrases]:
        speech = speak(text, SR)
        voiced = np.flatnonzero(np.abs(speech) > 0.02)       # espeak pads its output with a little silence
        t_end = t + (voiced[-1] + 1) / SR
        phrases.append(dict(text=text, polarity=polarity, end_s=round(t_end, 3)))
        parts += [speech, np.zeros(int(2.5 * SR), np.float32)]
        t += len(speech) / SR + 2.5
    return np.concatenate(parts), phrases


def stream(pipeline, wave: np.ndarray, frames: list[np.ndarray], chunk_s: float) -> list[dict]:
    """Play ``wave`` and ``frames`` (looped) into a LiveSession in real time; every update the handler returned."""
    from mclmcf.serving.live import LiveSession, colour_words, score_window
    session = LiveSession(pipeline)
    done = threading.Event()
    start = time.perf_counter()

    def camera():
        i = 0
        while not done.wait(max(0.0, start + i * FRAME_EVERY_S - time.perf_counter())):
            session.add_frame(frames[i % len(frames)])
            i += 1

    filming = threading.Thread(target=camera)
    filming.start()
    updates, sent, step = [], 0, 0
    while sent < len(wave):
        step += 1
        time.sleep(max(0.0, start + step * chunk_s - time.perf_counter()))
        recorded = min(len(wave), int((time.perf_counter() - start) * SR))   # all audio up to now goes out
        chunk, sent = wave[sent:recorded], recorded
        update = session.stream_audio(SR, (chunk * 32767).astype(np.int16), lambda w: score_window(pipeline, w),
                                      colourer=lambda w, result: colour_words(pipeline, w, result))
        if update is not None and not isinstance(update, str):
            updates.append(dict(at_s=time.perf_counter() - start, end_s=update.end_s, score=update.score,
                                words=update.words, timings=update.timings, coloured=update.attributions is not None))
    done.set()
    filming.join()
    while session.scoring:                                         # native threads must not outlive the interpreter
        time.sleep(0.05)
    return updates


def phrase_latencies(phrases: list[dict], updates: list[dict]) -> list[dict]:
    """Per phrase: the first update that has heard its end (the score), and the first such with its words coloured."""
    rows = []
    for p in phrases:
        # the resampler holds ~20 ms back: a window ending that close to the phrase's end has heard it
        heard = [u for u in updates if u["end_s"] >= p["end_s"] - 0.03]
        first = heard[0] if heard else None
        coloured = next((u for u in heard if u["coloured"]), None)
        rows.append(dict(**p, latency_s=None if first is None else round(first["at_s"] - p["end_s"], 3),
                         coloured_s=None if coloured is None else round(coloured["at_s"] - p["end_s"], 3),
                         score=None if first is None else round(first["score"], 3),
                         words=None if first is None else first["words"]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 phrases, 0.1 s chunks only")
    ap.add_argument("--phrases", type=int, default=8)
    ap.add_argument("--chunks", type=float, nargs="+", default=[0.1, 0.02], help="chunk intervals (s) to measure")
    ap.add_argument("--concurrent", type=int, nargs="*", default=[2],
                    help="also measure this many sessions streaming at once (0.1 s chunks)")
    args = ap.parse_args()
    if args.quick:
        args.phrases, args.chunks, args.concurrent = 2, [0.1], []
    from mclmcf.serving.live import warm_up
    from mclmcf.serving.pipeline import SentimentPipeline
    from mclmcf.serving.weights import DEFAULT_DIR, load_weights
    from preprocessing.synthetic import face_frames

    info = machine_info()
    pipeline = SentimentPipeline(load_weights(str(DEFAULT_DIR)))
    warm_up(pipeline)
    wave, phrases = recorded_clip(args.phrases)
    frames = list(face_frames(2.0, fps=int(1 / FRAME_EVERY_S), size=(640, 480)))
    stream(pipeline, wave[:3 * SR], frames, 0.1)                  # warm: face mesh, expression model, kernels
    results, table_rows = [], []
    runs = [(chunk_s, 1) for chunk_s in args.chunks] + [(0.1, n) for n in args.concurrent]
    for chunk_s, sessions in runs:
        with ThreadPoolExecutor(sessions) as pool:                # each session streams the clip from its own thread
            streams = list(pool.map(lambda _: stream(pipeline, wave, frames, chunk_s), range(sessions)))
        rows = [r for updates in streams for r in phrase_latencies(phrases, updates)]
        updates = [u for s in streams for u in s]
        lat = np.array([r["latency_s"] for r in rows if r["latency_s"] is not None])
        coloured = np.array([r["coloured_s"] for r in rows if r["coloured_s"] is not None])
        agree = np.mean([r["score"] is not None and np.sign(r["score"]) == r["polarity"] for r in rows])
        gaps = np.concatenate([np.diff([u["at_s"] for i, u in enumerate(s) if i == 0 or u["end_s"] != s[i - 1]["end_s"]])
                               for s in streams])                  # between scores: a coloured update is the same point
        asr = np.median([u["timings"]["asr"] for u in updates])
        name = (f"Gradio stream events, {chunk_s:g} s chunks" if chunk_s >= 0.1 else
                f"{chunk_s:g} s chunks (WebRTC-like; FastRTC not installable)")
        if sessions > 1:
            name += f", {sessions} sessions at once"
        table_rows.append([name, len(rows), float(np.median(lat)), float(np.quantile(lat, 0.9)), float(lat.max()),
                           GOAL_S, f"{agree:.0%}", float(np.median(gaps)), float(asr),
                           float(np.median(coloured)) if len(coloured) else None])
        results.append(dict(chunk_s=chunk_s, sessions=sessions, phrases=rows, updates=len(updates),
                            median_s=float(np.median(lat)), p90_s=float(np.quantile(lat, 0.9)), max_s=float(lat.max()),
                            coloured_median_s=float(np.median(coloured)) if len(coloured) else None,
                            sign_agreement=float(agree), update_interval_median_s=float(np.median(gaps)),
                            asr_median_s=float(asr)))
    print(f"\nLive mode: end of a spoken phrase -> updated score ({args.phrases} phrases, 4 s window, demo weights, "
          f"Whisper tiny.en); {machine_line(info)}")
    table = print_table(["streaming path", "phrases", "median s", "p90 s", "max s", "goal s", "sign right",
                         "update every s", "asr s", "coloured: median s"], table_rows)
    met = all(r["max_s"] <= GOAL_S for r in results if r["sessions"] == 1)
    print(f"goal: <= {GOAL_S:g} s from the end of a phrase to the updated score (one session, max): "
          f"{'met' if met else 'NOT met'}")
    write_json("live_quick" if args.quick else "live", dict(machine=info, goal_s=GOAL_S, frame_every_s=FRAME_EVERY_S,
                                                            results=results, table=table))


if __name__ == "__main__":
    main()
