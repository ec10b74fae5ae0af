"""What the public server exposes of Gradio, and how much work any request can make before a handler runs.

Gradio 6.31 serves routes the app never uses, each answered outside the queue that bounds the analyses:
``/process_recording`` (the footer's screen recorder: ffmpeg with visitor-chosen zoom effects, minutes of CPU
for a 36 KB upload), ``/monitoring/...`` (request counts and latencies without a key), ``/file=https://...``
and ``/proxy=...`` (fetch a URL the visitor names), and the vibe-editing, run-history and profiling routes.
``ClosedRoutes`` answers 404 to all of them before Gradio sees the request. The direct REST routes
(``/run/NAME``, ``/api/NAME``) skip the queue: ``queue(api_open=False)`` closes them (``QUEUE_SETTINGS``).

Inside requests that do reach the queue:
- a file a visitor sends may name a URL instead of an upload (FileData ``path: "https://..."``), which
  Gradio would download: ``refuse_remote_files`` makes the app's input components refuse it;
- an image is opened by Pillow before any handler runs (the webcam's frames): ``bound_image_size`` makes
  Pillow refuse one over ``MAX_IMAGE_PIXELS`` when it reads the header, before decoding a pixel (a 46 KB
  one-bit PNG of 13000 x 13000 decoded to 1.4 GB);
- a payload Gradio cannot read (a number where a file goes, a path that was never uploaded) raised inside
  Gradio, which printed a 20-line traceback per request and told the client nothing: ``readable_refusals``
  answers it with one message and logs one line. Faults in the app's own handlers keep their tracebacks.
"""

from __future__ import annotations

import logging
import re
import warnings

import gradio as gr
from gradio_client.utils import is_http_url_like
from PIL import Image
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse

from mclmcf.serving.console import one_line
from mclmcf.ui.uploads import launch_limits

log = logging.getLogger("mclmcf.app")

# the routes above, with or without Gradio's /gradio_api prefix
CLOSED = re.compile(r"^(/gradio_api)?/(process_recording|monitoring|vibe-edit|undo-vibe-edit|vibe-code|"
                    r"vibe-starter-queries|run-history|profiling|proxy=|file=[a-zA-Z][\w+.-]*:)", re.IGNORECASE)
MAX_IMAGE_PIXELS = 3840 * 2160   # a 4K webcam frame; decoded as RGB, 25 MB
QUEUE_SETTINGS = {"api_open": False}


class ClosedRoutes:
    """ASGI middleware: 404 for the routes in ``CLOSED``, before the application reads the request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and CLOSED.match(scope.get("path", "")):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await PlainTextResponse("Not found.", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def launch_settings(max_file_bytes: int) -> dict:
    """Keyword arguments of ``Blocks.launch``: the upload bounds (``uploads.launch_limits``), the closed routes,
    and Gradio's monitoring off."""
    settings = launch_limits(max_file_bytes)
    settings["app_kwargs"]["middleware"].insert(0, Middleware(ClosedRoutes))
    return {**settings, "enable_monitoring": False}


def bound_image_size(max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Make Pillow refuse, process-wide, any image over ``max_pixels`` when it reads its header (its own
    "decompression bomb" check, a warning below twice its limit, turned into an error)."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def refuse_remote_files(*components: gr.components.Component) -> None:
    """Make these input components refuse a file given as a URL: the server takes uploads and fetches nothing a
    visitor names (Gradio would download it, unbounded in size, into its cache)."""
    for component in components:
        for name in ("move_resource_to_block_cache", "async_move_resource_to_block_cache"):
            setattr(component, name, _refusing_urls(getattr(component, name)))


def _refusing_urls(move):
    def guarded(url_or_file_path):
        if url_or_file_path is not None and is_http_url_like(str(url_or_file_path)):
            raise gr.Error("This server takes uploaded files only and fetches no URL: upload the file itself.",
                           title="Cannot use this file", print_exception=False)
        return move(url_or_file_path)
    return guarded


def readable_refusals(demo: gr.Blocks) -> None:
    """Answer a request whose inputs Gradio cannot read, before any handler runs, with a message and one log
    line (Gradio would print the exception's traceback and send the client no message)."""
    read = demo.preprocess_data

    async def preprocess_data(block_fn, *args, **kwargs):
        try:
            return await read(block_fn, *args, **kwargs)
        except gr.Error:
            raise
        except Exception as err:   # noqa: BLE001 (whatever Gradio raises while reading a visitor's payload)
            cause = err.__cause__ or err.__context__ or err
            log.info("unreadable request to %s: %s: %s", block_fn.name, type(cause).__name__,
                     one_line(str(cause).partition("\n")[0])[:200])
            message = (f"The image is larger than {MAX_IMAGE_PIXELS:,} pixels; send a smaller one."
                       if isinstance(cause, Image.DecompressionBombError) else
                       "The request's inputs could not be read. Send the clip as an uploaded file and the other "
                       "inputs as text and numbers, as the API page shows.")
        raise gr.Error(message, title="Cannot read this request", print_exception=False)

    demo.preprocess_data = preprocess_data
