"""MCL-MCF multimodal sentiment demo: Gradio wiring of mclmcf.serving (answers) to mclmcf.ui (what the page shows).

    python app.py [--weights REPO_ID[@REV] | DIR] [--asr-model NAME | DIR | none] [--port 7860] [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from mclmcf.serving.memory import limit_malloc_arenas, release_freed_memory

HERE = Path(__file__).resolve().parent
# before any thread allocates: glibc's default, a heap per thread up to 8 per core, each keeping its freed pages,
# kept the soak's RSS ~40-60 MiB higher (docs/demo.md, memory budget); MALLOC_ARENA_MAX, glibc's own setting, wins
limit_malloc_arenas(int(os.environ.get("MALLOC_ARENA_MAX", 2)))
if __name__ == "__main__":   # the imports below take seconds: say so, and keep saying so until the server is up
    from mclmcf.serving.startup import Heartbeat
    HEARTBEAT = Heartbeat("MCL-MCF demo: starting (1/4 importing libraries) ...", "1/4 importing libraries")

import gradio as gr  # noqa: E402  (this and the imports below come after the line above is printed)
import transformers

from mclmcf.serving import live
from mclmcf.serving.live_sessions import LiveSessions
from mclmcf.serving.console import filter_native_stderr, one_line, setup_logging
from mclmcf.serving.messages import user_message
from mclmcf.serving.pipeline import FPS_RANGE, MAX_FILE_BYTES
from mclmcf.serving.prediction import Prediction
from mclmcf.serving.registry import PipelineRegistry
from mclmcf.serving.weights import ENV_VAR, LoadedWeights, default_source
from mclmcf.ui import live as live_viz
from mclmcf.ui import page, server, uploads
from mclmcf.ui.style import CSS
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
MAX_DURATION_S = 60.0
CONCURRENCY = 2
ANALYSES = "analyses"       # the concurrency group of every heavy event: at most CONCURRENCY run at once, all told
# a refusal is scrolled into view wherever the visitor had scrolled to; a result only on a narrow screen, where
# it sits below the inputs and the examples
# on a narrow screen the examples sit below the Analyse button: once one is chosen, bring the button back into view
SHOW_BUTTON_JS = ("() => { if (window.innerWidth < 768) setTimeout(() => [...document.querySelectorAll('button')]"
                  ".find(b => b.textContent.trim() === 'Analyse')?.scrollIntoView({block: 'center'}), 300); }")
SHOW_RESULT_JS = ("() => { const refused = document.getElementById('analysis-error'); "
                  "if (refused) { const r = refused.getBoundingClientRect(); "
                  "if (r.top < 0 || r.bottom > window.innerHeight) refused.scrollIntoView({block: 'center'}); } "
                  "else if (window.innerWidth < 768) document.getElementById('result-score')"
                  "?.scrollIntoView({block: 'start'}); }")
# the app explains every file it cannot use; the browser's failure to play one must not speak first (Gradio's
# "Video not playable" toast and red pill): a capture listener on window stops the clip player's error event
CLIP_PLAYER_HEAD = ("<script>window.addEventListener('error', (event) => { if (event.target instanceof "
                    "HTMLVideoElement && event.target.closest('#clip')) event.stopImmediatePropagation(); }, true);"
                    "</script>")
# live streams at once: one per two CPU cores keeps a phrase's score within 1.5 s (bench_live: two sessions on two
# cores took up to 3 s); raise it on a bigger machine
LIVE_SESSIONS = int(os.environ.get("MCLMCF_LIVE_SESSIONS", 1))
LIVE_TIME_LIMIT_S = 600    # one live stream lasts at most 10 minutes
LIVE_FRAME_EVERY_S = 0.25  # webcam frames sent per second: 4 (the face rows are laid on the weights' frame grid)
# webcam streams at once (each holds at most one frame of <= server.MAX_IMAGE_PIXELS): room for the live session's
# camera beside the cameras of tabs waiting for the slot
LIVE_FRAME_STREAMS = 8
# Gradio keeps, per visitor session, a copy of every component's config (89 KiB for this page) for its 10,000 most
# recent sessions: up to 870 MiB, the soak's slow RSS rise; the last 1,000 sessions keep it under 90 MiB
SESSIONS_KEPT = 1000


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
    log.info("2/4 loading the weights (%s) ...", registry.default_source or "checkpoints/")
    start = time.perf_counter()
    try:
        pipeline = registry.get()
    except ValueError as err:   # no weights / unusable weights: the UI still starts and says why
        log.warning("no usable weights: %s", one_line(err))
        return page.no_weights_banner(str(err)), None
    log.info("weights loaded in %.1f s (%s)", time.perf_counter() - start, pipeline.weights.source)
    return page.weights_banner(pipeline), pipeline.weights


def run(registry: PipelineRegistry, video, transcript, fps, window, weights) -> Prediction:
    """The API's answer; bad input, unreadable media and unusable weights raise ValueError with a message
    written for the user."""
    try:
        return registry.get(weights).predict(video, transcript, fps=fps, timeline_window_s=window)
    finally:
        release_freed_memory()   # the request's decoded frames and buffers: back to the system, not kept by malloc


def refusal_logged(err: ValueError) -> ValueError:
    log.info("refused: %s", one_line(err))        # one line; a real fault keeps its traceback
    return err


def analysis(registry: PipelineRegistry, video, transcript, fps, window, weights) -> tuple:
    """Everything the page shows for one request, in page.SLOTS order."""
    return page.filled(run(registry, video, transcript, fps, window, weights))


def warm_up(registry: PipelineRegistry) -> None:
    """Answer the first bundled example once before serving: the face-mesh graph, the expression model and
    matplotlib's fonts load here instead of in the first visitor's request."""
    log.info("3/4 warming up: analysing the first example once, so that the first visitor does not wait ...")
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
    sessions = LiveSessions(max_sessions=LIVE_SESSIONS, max_session_s=LIVE_TIME_LIMIT_S)

    @gpu
    def scored(window):   # on ZeroGPU a GPU is attached once per score, not for every audio chunk
        return live.score_window(registry.get(), window)

    @gpu
    def coloured(window, result):
        return live.colour_words(registry.get(), window, result)

    def on_audio(chunk, window_s, request: gr.Request):
        if chunk is None:
            return gr.skip()
        try:   # no usable weights, the tab's live time used up, a chunk refused: say so in the score's place
            session = sessions.acquire(request.session_hash, registry.get())
            if session is None:
                return live_viz.busy_html(LIVE_SESSIONS)
            update = session.stream_audio(*chunk, scored, window_s, coloured)
        except ValueError as err:
            return live_viz.ended_html(str(refusal_logged(err)))
        return gr.skip() if update is None else live_viz.panel_html(update, window_s, sessions.config.history_s)

    def on_frame(frame, request: gr.Request):   # frames join the tab's session: only the microphone opens one
        session = sessions.get(request.session_hash) if frame is not None else None
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
    server.refuse_remote_files(webcam, mic)
    webcam.stream(on_frame, webcam, None, stream_every=LIVE_FRAME_EVERY_S, time_limit=LIVE_TIME_LIMIT_S,
                  concurrency_limit=LIVE_FRAME_STREAMS, concurrency_id="live-frames", show_progress="hidden",
                  api_visibility="private")
    # no concurrency limit here: a visitor past the cap must reach on_audio to be told that live mode is busy
    mic.stream(on_audio, [mic, window_s], panel, stream_every=0.1, time_limit=LIVE_TIME_LIMIT_S,
               concurrency_limit=None, show_progress="hidden", api_visibility="private")
    mic.stop_recording(release, api_visibility="private")
    demo.unload(release)
    tab.select(None, None, blocked, js=live_viz.PERMISSIONS_CHECK_JS)


def build_demo(registry: PipelineRegistry, files_kept_s: int = uploads.FILES_KEPT_S) -> gr.Blocks:
    """The page; uploads and outputs are deleted once ``files_kept_s`` old (uploads.delete_schedule)."""
    banner, default_weights = load_default(registry)
    default_fps = default_weights.spec.video_fps if default_weights else 10.0

    @gpu
    def analyse(video, transcript, fps, window, weights):
        try:
            return analysis(registry, video, transcript, fps, window, weights)
        except ValueError as err:
            return page.cleared(str(refusal_logged(err)))

    @gpu
    def predict(video, transcript=None, fps=None, window=0.0, weights=None) -> dict:
        try:
            return run(registry, video, transcript, fps, window, weights).to_json()
        except ValueError as err:
            message = user_message(refusal_logged(err))
        # raised outside the except block, so without the refusal as its context: Gradio keeps the errors it is
        # given, and the refusal's traceback would keep the request's decoded frames and decoder threads alive
        raise gr.Error(message, title="Cannot analyse this clip", print_exception=False)

    with gr.Blocks(title="MCL-MCF multimodal sentiment", delete_cache=uploads.delete_schedule(files_kept_s)) as demo:
        gr.Markdown(page.INTRO, elem_id="intro")
        gr.Markdown(banner, elem_id="weights-banner")
        with gr.Tab("Analyse a clip"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=5):
                    video = gr.Video(sources=["upload", "webcam"], include_audio=True, label="Clip (≤ 60 s)", height=300,
                                     elem_id="clip")
                    shown = page.place("inputs")            # slot name -> component, area by area
                    transcript = shown["transcript"]
                    button = gr.Button("Analyse", variant="primary")
                    with gr.Accordion("Settings", open=False):
                        fps = gr.Slider(*FPS_RANGE, value=default_fps, step=1, label="Face frames sampled per second",
                                        info=f"the weights were trained at {default_fps:g}; lower is faster")
                        window = gr.Slider(0, 10, value=0, step=1, label="Timeline window (s, 0 = off)",
                                           info="score each window of a long clip with its own words, voice and face")
                        weights = gr.Textbox(label="Weights", placeholder=page.weights_placeholder(registry.default_source),
                                             info="Hub repo id[@revision]; empty = the weights this server started with")
                with gr.Column(scale=6):
                    # above the results: on a desktop a first visitor sees the examples and the button without
                    # scrolling; on a phone they follow the button, and the page scrolls to the score after Analyse
                    examples = gr.Examples(EXAMPLES, inputs=[video, transcript], cache_examples=False, elem_id="examples")
                    examples.dataset.click(None, js=SHOW_BUTTON_JS)
                    shown |= page.place("beside")
            gr.Markdown(page.TCF_HEADING)
            with gr.Row(equal_height=False):
                shown |= page.place("tcf")
            shown |= page.place("below")
            with gr.Accordion("Raw result (JSON, as returned by the API)", open=False):
                shown |= page.place("raw")
        with gr.Tab("Live", id="live") as live_tab:
            live_tab_contents(registry, live_tab, demo)
        inputs = [video, transcript, fps, window, weights]
        server.refuse_remote_files(video)
        button.click(analyse, inputs, [shown[slot.name] for slot in page.SLOTS], api_name="analyse",
                     api_visibility="undocumented", concurrency_id=ANALYSES, concurrency_limit=CONCURRENCY
                     ).then(None, js=SHOW_RESULT_JS)
        # the API's numbers reach the pipeline as sent ("abc", NaN): a Slider would reject them with
        # Gradio's own unhelpful errors before the pipeline could say what is wrong
        api_numbers = [gr.Number(value=default_fps, visible=False), gr.Number(value=0, visible=False)]
        gr.Button(visible=False).click(predict, [video, transcript, *api_numbers, weights], shown["result"], api_name="predict",
                                       api_description="Sentiment score (JSON) for a clip and its transcript "
                                                       "(empty: transcribed)",
                                       concurrency_id=ANALYSES, concurrency_limit=CONCURRENCY)
    return demo


def main() -> None:
    args = parse_args()
    filter_native_stderr()
    registry = PipelineRegistry(args.weights or default_source(), max_duration_s=MAX_DURATION_S, max_file_bytes=MAX_FILE_BYTES,
                                asr_model=args.asr_model)
    demo = build_demo(registry)
    warm_up(registry)
    HEARTBEAT.stop()
    serve(demo, args.host, args.port)


def serve(demo: gr.Blocks, host: str, port: int, **launch_kwargs) -> None:
    """Queue and launch ``demo`` with the public server's bounds (mclmcf.ui.server)."""
    server.bound_image_size()
    server.readable_refusals(demo)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64, **server.QUEUE_SETTINGS)
    log.info("4/4 starting the web server on http://%s:%d", host, port)
    demo.launch(server_name=host, server_port=port, theme=gr.themes.Soft(primary_hue="indigo"), css=CSS,
                head=CLIP_PLAYER_HEAD, state_session_capacity=SESSIONS_KEPT,
                **server.launch_settings(MAX_FILE_BYTES), **launch_kwargs)


if __name__ == "__main__":
    main()
