"""MCL-MCF multimodal sentiment demo: a thin Gradio UI over mclmcf.pipeline and mclmcf.viz.

    python app.py [--weights REPO_ID[@REV] | DIR] [--asr-model NAME | DIR | none] [--port 7860] [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")        # mediapipe's C++ logging: warnings and up only
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gradio as gr  # noqa: E402
import transformers  # noqa: E402

from mclmcf import viz  # noqa: E402
from mclmcf.pipeline import PipelineRegistry, Prediction  # noqa: E402
from mclmcf.weights import ENV_VAR, LoadedWeights, default_source  # noqa: E402
from preprocessing import asr  # noqa: E402

transformers.logging.set_verbosity_error()

try:  # Spaces ZeroGPU: a GPU is attached only while a decorated call runs
    import spaces
    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn

HERE = Path(__file__).resolve().parent
EXAMPLES = [[str(HERE / "examples" / f), text] for f, text in json.loads((HERE / "examples" / "examples.json").read_text())]
MAX_FILE_MB = 50
MAX_DURATION_S = 60.0
CONCURRENCY = 2
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


def run(registry: PipelineRegistry, video, transcript, fps, window, weights) -> Prediction:
    try:
        return registry.get(weights).predict(video, transcript, fps=fps, timeline_window_s=window)
    except ValueError as err:   # bad input, unreadable media, unusable weights: all have user-facing messages
        raise gr.Error(str(err), title="Cannot analyse this clip") from err


def build_demo(registry: PipelineRegistry) -> gr.Blocks:
    banner, default_weights = load_default(registry)
    default_fps = default_weights.spec.video_fps if default_weights else 10.0

    @gpu
    def analyse(video, transcript, fps, window, weights):
        pred = run(registry, video, transcript, fps, window, weights)
        w = registry.get(weights).weights
        tcf = [viz.tcf_figure(p, pred.tcf_images[p], pred.tcf_feature_maps[p]) for p in viz.PAIR_NAMES]
        timeline = viz.timeline_figure(pred.timeline, pred.label_range) if pred.timeline else None
        heard = pred.transcript_source == "asr"
        box = gr.update(value=pred.transcript, label=TRANSCRIPT_LABELS[heard])
        return (box, viz.score_card_html(pred), viz.contributions_html(pred), *tcf, viz.face_mesh_image(pred),
                viz.audio_figure(pred), gr.update(value=timeline, visible=timeline is not None),
                viz.details_markdown(pred, w.source, w.device.type, w.trained_on), pred.to_json())

    @gpu
    def predict(video, transcript=None, fps=None, window=0.0, weights=None) -> dict:
        return run(registry, video, transcript, fps, window, weights).to_json()

    with gr.Blocks(title="MCL-MCF multimodal sentiment") as demo:
        gr.Markdown("# MCL-MCF multimodal sentiment\nUpload or record a short clip of someone speaking, type "
                    "what they say (or leave the box empty: speech recognition fills it in), and the model rates the sentiment from the words, the voice and the face. "
                    "Below: the TCF multimodal “images” (outer products of two modalities) the model convolves.")
        gr.Markdown(banner, elem_id="weights-banner")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                video = gr.Video(sources=["upload", "webcam"], include_audio=True, label="Clip (≤ 60 s)", height=300)
                transcript = gr.Textbox(label=TRANSCRIPT_LABELS[False], lines=2, elem_id="transcript",
                                        placeholder="What is said in the clip; leave empty to have it transcribed")
                with gr.Accordion("Settings", open=False):
                    fps = gr.Slider(1, 25, value=default_fps, step=1, label="Face frames sampled per second",
                                    info=f"the weights were trained at {default_fps:g}; lower is faster")
                    window = gr.Slider(0, 10, value=0, step=1, label="Timeline window (s, 0 = off)",
                                       info="score each window of a long clip with its own words, voice and face")
                    weights = gr.Textbox(label="Weights", placeholder=registry.default_source or "none",
                                         info="Hub repo id[@revision] or local directory; empty = default")
                button = gr.Button("Analyse", variant="primary")
                gr.Examples(EXAMPLES, inputs=[video, transcript], cache_examples=False)
            with gr.Column(scale=6):
                score = gr.HTML(label="Sentiment")
                contributions = gr.HTML()
                face = gr.Image(label="Face mesh on a key frame", height=260, interactive=False)
        gr.Markdown("### TCF multimodal images and their Conv2d feature maps")
        tcf_images = [gr.Image(label=f"{a} × {b}", show_label=False, interactive=False, elem_classes="tcf-map")
                      for a, b in viz.PAIR_NAMES.values()]
        audio = gr.Image(label="Waveform and acoustic features", show_label=False, interactive=False)
        timeline = gr.Image(label="Score over time", show_label=False, interactive=False, visible=False)
        details = gr.Markdown()
        with gr.Accordion("Raw result (JSON, as returned by the API)", open=False):
            result = gr.JSON(label="result")
        inputs = [video, transcript, fps, window, weights]
        button.click(analyse, inputs, [transcript, score, contributions, *tcf_images, face, audio, timeline, details, result],
                     api_name="analyse", api_visibility="undocumented")
        gr.Button(visible=False).click(predict, inputs, result, api_name="predict",
                                       api_description="Sentiment score (JSON) for a clip and its transcript (empty: transcribed)")
    return demo


def main() -> None:
    args = parse_args()
    registry = PipelineRegistry(args.weights or default_source(), max_duration_s=MAX_DURATION_S, max_file_mb=MAX_FILE_MB,
                                asr_model=args.asr_model)
    demo = build_demo(registry)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    demo.launch(server_name=args.host, server_port=args.port, max_file_size=f"{MAX_FILE_MB}mb",
                theme=gr.themes.Soft(primary_hue="indigo"), css=CSS)


if __name__ == "__main__":
    main()
