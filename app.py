"""MCL-MCF multimodal sentiment demo: a thin Gradio UI over mclmcf.serving.pipeline and mclmcf.ui.result.

    python app.py [--weights REPO_ID[@REV] | DIR] [--asr-model NAME | DIR | none] [--port 7860] [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# librosa compiles its numba kernels when these modules are first imported (~14 s on 2 cores after a fresh
# install); a side process does it into numba's disk cache while this one imports, loads weights, builds the page
LIBROSA_KERNELS = "import librosa.core.audio, librosa.core.pitch, librosa.feature"
KERNEL_COMPILE = (subprocess.Popen([sys.executable, "-c", LIBROSA_KERNELS], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL) if __name__ == "__main__" else None)

import gradio as gr  # noqa: E402  (this and the imports below come after the side process has started)
import transformers

from mclmcf.serving import live
from mclmcf.serving.console import filter_native_stderr, one_line, setup_logging
from mclmcf.serving.pipeline import FPS_RANGE, PipelineRegistry, Prediction, user_message
from mclmcf.serving.weights import DEFAULT_DIR, ENV_VAR, LoadedWeights, default_source
from mclmcf.ui import live as live_viz
from mclmcf.ui import result as viz
from mclmcf.ui import words as explain_viz
from mclmcf.ui.expression_strip import expression_strip
from preprocessing import asr

transformers.logging.set_verbosity_error()
log = setup_logging()

try:  # Spaces ZeroGPU: a GPU is attached only while a decorated call runs
    import spaces
    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn

EXAMPLES = [[str(HERE / "examples" / f), text] for f, text in json.loads((HERE / "examples" / "examples.json").read_text())]
MAX_FILE_MB = 50
MAX_DURATION_S = 60.0
CONCURRENCY = 2
# live streams at once: one per two CPU cores keeps a phrase's score within 1.5 s (bench_live: two sessions on two
# cores took up to 3 s); raise it on a bigger machine
LIVE_SESSIONS = int(os.environ.get("MCLMCF_LIVE_SESSIONS", 1))
LIVE_TIME_LIMIT_S = 600    # one live stream lasts at most 10 minutes
LIVE_FRAME_EVERY_S = 0.25  # webcam frames sent per second: 4 (the face rows are laid on the weights' frame grid)
TRANSCRIPT_LABELS = {False: "Transcript", True: "Transcript (from speech recognition: correct it and analyse again)"}
CSS = """
.score-card {padding: 12px 16px; border-radius: 12px; background: var(--block-background-fill);}
.score-top {display: flex; align-items: center; gap: 18px;}
.score-value {font-size: 3rem; font-weight: 700; font-variant-numeric: tabular-nums;}
.score-labels {font-size: 1.05rem; line-height: 1.5;}
.gauge {position: relative; height: 14px; margin: 10px 0 4px; border-radius: 7px;
        background: linear-gradient(90deg, #d9485f, #f2c14e 40%, #c9ccd1 50%, #9ad29a 60%, #2f9e6e);}
.gauge-marker {position: absolute; top: -5px; width: 6px; height: 24px; margin-left: -3px; border-radius: 3px;
               background: #111; box-shadow: 0 0 0 2px #fff;}
.gauge-ticks {display: flex; justify-content: space-between; font-size: .8rem; opacity: .75; text-align: center;}
.contrib {padding: 8px 16px;} .contrib-title {font-weight: 600; margin-bottom: 6px;}
.contrib-row {display: grid; grid-template-columns: 60px 1fr 56px; align-items: center; gap: 8px; margin: 4px 0;}
.contrib-track {position: relative; height: 12px; background: var(--background-fill-secondary); border-radius: 6px;}
.contrib-track::after {content: ""; position: absolute; left: 50%; top: -3px; bottom: -3px; width: 1px; background: #888;}
.contrib-bar {position: absolute; top: 0; bottom: 0; border-radius: 6px;}
.contrib-value {font-variant-numeric: tabular-nums; text-align: right;}
.contrib-note {font-size: .85rem; opacity: .85; margin-top: 6px;}
.score-notices {margin: 10px 0 0; padding: 0; list-style: none; font-size: .9rem;} .score-notices li {margin: 3px 0;}
.score-error {border: 2px solid #d9485f;}
.tcf-pair {margin: 4px 0 16px;} .tcf-heading {font-weight: 600; margin-bottom: 6px;}
.tcf-empty p, .score-empty p {margin: 0; padding: 14px; opacity: .75; border: 1px dashed var(--border-color-primary); border-radius: 8px;}
.tcf-panels {display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 12px;}
.tcf-panel {margin: 0; font-size: .8rem; min-width: 0;} .tcf-panel figcaption {font-weight: 600; margin-bottom: 2px;}
.tcf-plot {display: flex; gap: 2px;} .tcf-plot img {flex: 1; min-width: 0; aspect-ratio: 1; image-rendering: pixelated;}
.tcf-ylabel {writing-mode: vertical-rl; transform: rotate(180deg); text-align: center; font-size: .72rem; opacity: .8;}
.tcf-xlabel {text-align: center; font-size: .72rem; opacity: .8; margin-left: 14px;}
.tcf-bar {height: 8px; border-radius: 3px; margin: 4px 0 0 14px;}
.tcf-bar-ticks {display: flex; justify-content: space-between; margin-left: 14px; font-size: .7rem;
                font-variant-numeric: tabular-nums;}
.block.tcf-map .html-container {padding: 0;}
@media (max-width: 520px) {.score-value {font-size: 2.3rem;} .score-top {gap: 12px;}}
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None,
                        help=f"Hub repo id (optionally @revision) or local directory; default ${ENV_VAR}, "
                             "else checkpoints/")
    parser.add_argument("--asr-model", default=None,
                        help=f"speech recognition for empty transcripts: a faster-whisper size, Hub repo id or local "
                             f"directory, or 'none'; default ${asr.ENV_VAR}, else the packaged Whisper tiny.en")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    return parser.parse_args()


def load_default(registry: PipelineRegistry) -> tuple[str, LoadedWeights | None]:
    """Load the default weights at start-up: (banner to show, weights or None). Never raises."""
    try:
        pipeline = registry.get()
    except ValueError as err:   # no weights / unusable weights: the UI still starts and says why
        return f"⚠️ **No usable model weights.** {err}", None
    w = pipeline.weights
    notices = "".join(f"\n\n⚠️ {n}" for n in w.notices)
    return f"Model: `{w.source}` on **{w.device.type}** · trained on: {w.trained_on}{notices}\n\n{pipeline.asr_status}", w


def weights_placeholder(source: str | None) -> str:
    """What the Weights box shows when empty: never a path on the server."""
    if not source:
        return "none"
    if not os.path.isdir(source):
        return source                                   # a Hub repo id is public
    same = Path(source).resolve() == DEFAULT_DIR.resolve()
    return "bundled demo weights" if same else "the server's default weights"


def run(registry: PipelineRegistry, video, transcript, fps, window, weights) -> Prediction:
    """The API's answer; bad input, unreadable media and unusable weights raise ValueError with a message
    written for the user."""
    return registry.get(weights).predict(video, transcript, fps=fps, timeline_window_s=window)


def refusal_logged(err: ValueError) -> ValueError:
    log.info("refused: %s", one_line(err))        # one line; a real fault keeps its traceback
    return err


def analysis(registry: PipelineRegistry, video, transcript, fps, window, weights) -> tuple:
    """Everything the page shows for one request, in the order of build_demo's outputs."""
    pred = run(registry, video, transcript, fps, window, weights)
    w = registry.get(weights).weights
    tcf = [viz.tcf_html(p, pred.tcf_images[p], pred.tcf_feature_maps[p]) for p in viz.PAIR_NAMES]
    timeline = viz.timeline_figure(pred.timeline, pred.label_range) if pred.timeline else None
    box = gr.update(value=pred.transcript, label=TRANSCRIPT_LABELS[pred.transcript_source == "asr"])
    return (box, viz.score_card_html(pred), viz.contributions_html(pred), explain_viz.words_html(pred.attributions),
            *tcf, viz.face_mesh_image(pred), expression_strip(pred), viz.audio_figure(pred),
            explain_viz.voice_html(pred.voice), gr.update(value=timeline, visible=timeline is not None),
            viz.details_markdown(pred, w.source, w.device.type, w.trained_on), pred.to_json())


def refused(message: str) -> tuple:
    """The outputs after a refused request: the reason in the score's place, every old result cleared."""
    return (gr.update(), viz.error_html(message), "", "", *(viz.tcf_placeholder(p) for p in viz.PAIR_NAMES), None,
            None, None, "", gr.update(value=None, visible=False), "", None)


def warm_up(registry: PipelineRegistry) -> None:
    """Answer the first bundled example once before serving: librosa's kernels (compiled by the side process),
    the face-mesh graph and matplotlib's fonts load here instead of in the first visitor's request."""
    if KERNEL_COMPILE is not None:
        try:
            KERNEL_COMPILE.wait(timeout=300)            # its cache, not a second compile here
        except subprocess.TimeoutExpired:
            KERNEL_COMPILE.kill()
    start = time.perf_counter()
    try:
        analysis(registry, *EXAMPLES[0], None, 0.0, None)
    except ValueError as err:
        log.warning("warm-up failed: %s", one_line(err))
        return
    log.info("warm-up: the first analysis took %.1f s", time.perf_counter() - start)
    live.warm_up(registry.get())


def live_tab_contents(registry: PipelineRegistry, tab: gr.Tab, demo: gr.Blocks) -> None:
    """The Live tab: webcam and microphone streamed to mclmcf.serving.live, a running score back (live_viz)."""
    sessions = live.LiveSessions(max_sessions=LIVE_SESSIONS)

    @gpu
    def scored(window):   # on ZeroGPU a GPU is attached once per score, not for every audio chunk
        return live.score_window(registry.get(), window)

    def on_audio(chunk, window_s, request: gr.Request):
        if chunk is None:
            return gr.skip()
        try:
            session = sessions.acquire(request.session_hash, registry.get())
        except ValueError as err:              # no usable weights: say so in the score's place
            return live_viz.ended_html(str(refusal_logged(err)))
        if session is None:
            return live_viz.busy_html(LIVE_SESSIONS)
        update = session.stream_audio(*chunk, scored, window_s)
        return gr.skip() if update is None else live_viz.panel_html(update, window_s, sessions.config.history_s)

    def on_frame(frame, request: gr.Request):
        try:
            session = sessions.acquire(request.session_hash, registry.get()) if frame is not None else None
        except ValueError:                     # no usable weights: on_audio says so
            return
        if session is not None:
            session.add_frame(frame)

    def release(request: gr.Request):
        sessions.release(request.session_hash)

    gr.Markdown("Turn on the camera and the microphone and talk: every second the model scores the last few seconds "
                "(what you say, how you say it and your face) and the score below follows you.")
    gr.HTML(live_viz.PERMISSIONS)
    blocked = gr.HTML(elem_id="live-blocked-note")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera", height=300,
                              elem_id="live-camera")
            mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="Microphone", elem_id="live-mic")
            window_s = gr.Slider(*live.WINDOW_RANGE, value=sessions.config.window_s, step=1, label="Window (s)",
                                 info="how many of the last seconds each score reads")
        with gr.Column(scale=6):
            panel = gr.HTML(live_viz.PLACEHOLDER, elem_id="live-output")
    webcam.stream(on_frame, webcam, None, stream_every=LIVE_FRAME_EVERY_S, time_limit=LIVE_TIME_LIMIT_S,
                  concurrency_limit=None, show_progress="hidden", api_visibility="private")
    # no concurrency limit here: a visitor past the cap must reach on_audio to be told that live mode is busy
    mic.stream(on_audio, [mic, window_s], panel, stream_every=0.1, time_limit=LIVE_TIME_LIMIT_S,
               concurrency_limit=None, show_progress="hidden", api_visibility="private")
    mic.stop_recording(release, api_visibility="private")
    demo.unload(release)
    tab.select(None, None, blocked, js=live_viz.PERMISSIONS_CHECK_JS)


def build_demo(registry: PipelineRegistry) -> gr.Blocks:
    banner, default_weights = load_default(registry)
    default_fps = default_weights.spec.video_fps if default_weights else 10.0

    @gpu
    def analyse(video, transcript, fps, window, weights):
        try:
            return analysis(registry, video, transcript, fps, window, weights)
        except ValueError as err:
            return refused(str(refusal_logged(err)))

    @gpu
    def predict(video, transcript=None, fps=None, window=0.0, weights=None) -> dict:
        try:
            return run(registry, video, transcript, fps, window, weights).to_json()
        except ValueError as err:
            raise gr.Error(user_message(refusal_logged(err)), title="Cannot analyse this clip",
                           print_exception=False) from None

    with gr.Blocks(title="MCL-MCF multimodal sentiment") as demo:
        gr.Markdown("# MCL-MCF multimodal sentiment\nUpload or record a short clip of someone speaking, type "
                    "what they say (or leave the box empty: speech recognition fills it in), and the model rates the sentiment from the words, the voice and the face. "
                    "Below: the TCF multimodal “images” (outer products of two modalities) the model convolves.")
        gr.Markdown(banner, elem_id="weights-banner")
        with gr.Tab("Analyse a clip"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=5):
                    video = gr.Video(sources=["upload", "webcam"], include_audio=True, label="Clip (≤ 60 s)", height=300)
                    transcript = gr.Textbox(label=TRANSCRIPT_LABELS[False], lines=2, elem_id="transcript",
                                            placeholder="What is said in the clip; leave empty to have it transcribed")
                    with gr.Accordion("Settings", open=False):
                        fps = gr.Slider(*FPS_RANGE, value=default_fps, step=1, label="Face frames sampled per second",
                                        info=f"the weights were trained at {default_fps:g}; lower is faster")
                        window = gr.Slider(0, 10, value=0, step=1, label="Timeline window (s, 0 = off)",
                                           info="score each window of a long clip with its own words, voice and face")
                        weights = gr.Textbox(label="Weights", placeholder=weights_placeholder(registry.default_source),
                                             info="Hub repo id[@revision]; empty = the weights this server started with")
                    button = gr.Button("Analyse", variant="primary")
                    gr.Examples(EXAMPLES, inputs=[video, transcript], cache_examples=False)
                with gr.Column(scale=6):
                    score = gr.HTML(viz.SCORE_PLACEHOLDER, label="Sentiment")
                    contributions = gr.HTML()
                    words = gr.HTML(explain_viz.WORDS_PLACEHOLDER)
                    face = gr.Image(label="Face mesh on a key frame", height=260, interactive=False)
                    expressions = gr.Image(label="Facial expression over time", show_label=False, elem_id="expression-strip",
                                           interactive=False)   # the figure's title says what it shows
            gr.Markdown("### TCF multimodal images and their Conv2d feature maps")
            tcf_images = [gr.HTML(viz.tcf_placeholder(p), elem_classes="tcf-map") for p in viz.PAIR_NAMES]
            audio = gr.Image(label="Waveform and the acoustic features the model reads (after Analyse)", interactive=False)
            voice = gr.HTML()
            timeline = gr.Image(label="Score over time", show_label=False, interactive=False, visible=False)
            details = gr.Markdown()
            with gr.Accordion("Raw result (JSON, as returned by the API)", open=False):
                result = gr.JSON(label="result")
        with gr.Tab("Live", id="live") as live_tab:
            live_tab_contents(registry, live_tab, demo)
        inputs = [video, transcript, fps, window, weights]
        button.click(analyse, inputs, [transcript, score, contributions, words, *tcf_images, face, expressions, audio, voice,
                                       timeline, details, result],
                     api_name="analyse", api_visibility="undocumented")
        # the API's numbers reach the pipeline as sent ("abc", NaN): a Slider would reject them with
        # Gradio's own unhelpful errors before the pipeline could say what is wrong
        api_numbers = [gr.Number(value=default_fps, visible=False), gr.Number(value=0, visible=False)]
        gr.Button(visible=False).click(predict, [video, transcript, *api_numbers, weights], result, api_name="predict",
                                       api_description="Sentiment score (JSON) for a clip and its transcript "
                                                       "(empty: transcribed)")
    return demo


def main() -> None:
    args = parse_args()
    filter_native_stderr()
    registry = PipelineRegistry(args.weights or default_source(), max_duration_s=MAX_DURATION_S, max_file_mb=MAX_FILE_MB,
                                asr_model=args.asr_model)
    demo = build_demo(registry)
    warm_up(registry)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    demo.launch(server_name=args.host, server_port=args.port, max_file_size=f"{MAX_FILE_MB}mb",
                theme=gr.themes.Soft(primary_hue="indigo"), css=CSS + explain_viz.CSS + live_viz.CSS)


if __name__ == "__main__":
    main()
