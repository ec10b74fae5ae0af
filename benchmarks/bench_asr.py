"""Speech recognition: time as a multiple of clip duration, and word error rate on espeak-ng speech.

    python benchmarks/bench_asr.py [--quick] [--durations 5 10 30] [--reps 3] [--no-pipeline] [--beam-size N]

Model: the app's default (preprocessing.asr.speech_recognizer(): the packaged Whisper tiny.en, int8
on CPU / float16 on CUDA), decoded as the app decodes (beam 5, VAD, word timestamps; --beam-size
changes the beam and writes asr_beamN.json); the result cache is off, so every run transcribes.
  ASR time    N s of espeak-ng speech (SENTENCES in turn, 0.4 s pauses, cut to N s); median of --reps
              transcriptions after a warm-up one; model loading is reported once, apart
  WER         every sentence of SENTENCES spoken by each voice at each speed, one clip per sentence;
              WER = all word edits / all reference words (preprocessing.words.word_error_rate's
              normalisation: case and punctuation ignored)
  pipeline    SentimentPipeline.predict + the three TCF heatmap figures (as bench_inference.py times
              it) with the demo weights (checkpoints/) on an N s face clip with that speech (25 fps,
              640x360 mp4), on a fresh pipeline each run (no feature cache): with an empty transcript
              (ASR) and with the typed one; median of --reps after a warm-up
Writes benchmarks/results/asr.json. Needs espeak-ng.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from common import machine_info, machine_line, print_table, write_json

SENTENCES = (
    "I really enjoyed this movie, it was great.",
    "The acting was wooden and the story made no sense at all.",
    "The music was beautiful and the ending made me cry.",
    "Honestly, it was the worst film I have seen this year.",
    "The director did a fine job with a difficult script.",
    "I would not recommend it to anyone.",
    "What a wonderful surprise, the whole family loved it.",
    "The dialogue was dull and the jokes fell flat.",
)
VOICES = ("en", "en-us", "en-us+f3", "en-gb-scotland")
SPEEDS = (120, 160, 200)          # words per minute (espeak-ng -s)
PAUSE_S = 0.4


def speech_of_length(seconds: float, sr: int) -> np.ndarray:
    from preprocessing.synthetic import speak
    parts, n, i = [], 0, 0
    while n < seconds * sr:
        y = np.concatenate([speak(SENTENCES[i % len(SENTENCES)], sr), np.zeros(int(PAUSE_S * sr), np.float32)])
        parts.append(y)
        n, i = n + len(y), i + 1
    return np.concatenate(parts)[: int(seconds * sr)]


def measure_speed(recognizer, durations: list[float], reps: int) -> list[dict]:
    from preprocessing.asr import SAMPLE_RATE
    rows = []
    for d in durations:
        wave = speech_of_length(d, SAMPLE_RATE)
        recognizer.transcribe(wave)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            recognizer.transcribe(wave)
            times.append(time.perf_counter() - start)
        s = statistics.median(times)
        rows.append(dict(duration_s=d, asr_s=s, x_real_time=s / d))
        print(f"  {d:g} s clip: {s:.3f} s", flush=True)
    return rows


def measure_wer(recognizer, voices, speeds, sentences) -> list[dict]:
    from preprocessing.asr import SAMPLE_RATE
    from preprocessing.synthetic import speak
    from preprocessing.words import edit_distance, normalise
    rows = []
    for voice in voices:
        for wpm in speeds:
            edits = words = 0
            worst = ("", 0.0)
            for text in sentences:
                wave = np.concatenate([speak(text, SAMPLE_RATE, voice=voice, words_per_minute=wpm),
                                       np.zeros(SAMPLE_RATE // 2, np.float32)])
                heard = recognizer.transcribe(wave).text
                e = edit_distance(normalise(text), normalise(heard))
                edits, words = edits + e, words + len(normalise(text))
                if e / len(normalise(text)) > worst[1]:
                    worst = (heard, e / len(normalise(text)))
            rows.append(dict(voice=voice, words_per_minute=wpm, wer=edits / words, words=words, worst_heard=worst[0]))
            print(f"  {voice} {wpm} wpm: WER {edits / words:.3f}", flush=True)
    return rows


def measure_pipeline(recognizer, durations: list[float], reps: int) -> list[dict]:
    import tempfile
    from pathlib import Path

    from mclmcf.ui import result as viz
    from mclmcf.serving.pipeline import SentimentPipeline
    from mclmcf.serving.weights import DEFAULT_DIR, load_weights
    from preprocessing.synthetic import make_face_clip

    weights = load_weights(str(DEFAULT_DIR))
    text = " ".join(SENTENCES * 4)

    def run(clip, transcript):
        pipe = SentimentPipeline(weights, max_duration_s=60.0)
        pipe.asr = recognizer                  # shared model, result cache off
        start = time.perf_counter()
        pred = pipe.predict(clip, transcript)
        for pair in pred.tcf_images:
            viz.tcf_html(pair, pred.tcf_images[pair], pred.tcf_feature_maps[pair])
        return time.perf_counter() - start, pred

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for d in durations:
            clip = make_face_clip(Path(tmp) / f"clip{d:g}.mp4", duration_s=d, size=(640, 360), text=text)
            _, pred = run(clip, "")
            typed = pred.transcript
            with_asr = [run(clip, "") for _ in range(reps)]
            typed_runs = [run(clip, typed) for _ in range(reps)]
            asr_s = statistics.median(t for t, _ in with_asr)
            typed_s = statistics.median(t for t, _ in typed_runs)
            stages = {k: statistics.median(p.timings[k] for _, p in with_asr) for k in with_asr[0][1].timings}
            rows.append(dict(duration_s=d, with_asr_s=asr_s, typed_s=typed_s, with_asr_x=asr_s / d, typed_x=typed_s / d,
                             stages_with_asr_s=stages,
                             stages_typed_s={k: statistics.median(p.timings[k] for _, p in typed_runs)
                                             for k in typed_runs[0][1].timings}))
            print(f"  {d:g} s clip: pipeline {asr_s:.2f} s with ASR, {typed_s:.2f} s typed; with ASR: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one short clip, one voice and speed: checks that it runs")
    ap.add_argument("--durations", type=float, nargs="+", default=[5.0, 10.0, 30.0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-pipeline", action="store_true", help="skip the whole-pipeline rows")
    ap.add_argument("--beam-size", type=int, default=None, help="decoding beam (default: the app's)")
    args = ap.parse_args()
    from preprocessing.asr import ASRConfig, SpeechRecognizer, speech_recognizer

    info = machine_info()
    print(machine_line(info))
    default, status = speech_recognizer()
    if default is None:
        raise SystemExit(status)
    config = ASRConfig(cache_size=0, **({"beam_size": args.beam_size} if args.beam_size else {}))
    recognizer = SpeechRecognizer(default.model, config)
    start = time.perf_counter()
    recognizer.transcribe(np.zeros(16_000, np.float32))   # loads the model
    load_s = time.perf_counter() - start
    durations, reps = ([5.0], 1) if args.quick else (args.durations, args.reps)
    voices, speeds, sentences = ((VOICES[0],), (SPEEDS[1],), SENTENCES[:2]) if args.quick else (VOICES, SPEEDS, SENTENCES)
    speed = measure_speed(recognizer, durations, reps)
    wer = measure_wer(recognizer, voices, speeds, sentences)
    pipeline = [] if args.no_pipeline else measure_pipeline(recognizer, durations, reps)

    print(f"\nASR ({default.model.label}, {recognizer.device}, beam {config.beam_size}); model load {load_s:.2f} s")
    by_duration = {r["duration_s"]: r for r in pipeline}
    print_table(["clip", "ASR s", "ASR x real time", "pipeline with ASR x", "pipeline typed x"],
                [[f"{r['duration_s']:g} s", r["asr_s"], r["x_real_time"],
                  by_duration.get(r["duration_s"], {}).get("with_asr_x"), by_duration.get(r["duration_s"], {}).get("typed_x")]
                 for r in speed])
    print("goals: ASR <= 0.15x, whole pipeline with ASR <= 0.45x (demo weights, heatmaps included)")
    print()
    print_table(["voice", *[f"{w} wpm" for w in speeds]],
                [[v, *[next(r["wer"] for r in wer if r["voice"] == v and r["words_per_minute"] == w) for w in speeds]]
                 for v in voices])
    total = sum(r["wer"] * r["words"] for r in wer) / sum(r["words"] for r in wer)
    print(f"WER over all voices and speeds: {total:.3f} ({len(sentences)} sentences per cell)")
    name = "asr" + ("" if config.beam_size == ASRConfig().beam_size else f"_beam{config.beam_size}")
    write_json(name + ("_quick" if args.quick else ""), dict(machine=info, model=default.model.label, device=recognizer.device,
                           beam_size=config.beam_size, load_s=load_s,
                           speed=speed, pipeline=pipeline, wer=wer, wer_overall=total, quick=args.quick))


if __name__ == "__main__":
    main()
