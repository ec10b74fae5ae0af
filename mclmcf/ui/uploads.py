"""What one visitor can leave on the server's disk: a cap on each HTTP request's body, and the schedule on
which Gradio deletes uploads and outputs.

Gradio checks each uploaded file against ``max_file_size`` but accepts up to 1000 files in one request
(gradio 6.31, routes.py and route_utils.py: ``max_files=1000``, not configurable), so RequestBodyLimit refuses a
request whose body is larger than one file plus its form fields before a byte of it is read. Gradio's
``delete_cache`` deletes every upload and output file older than ``kept_s`` seconds, checking every ``kept_s / 3``.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse

from mclmcf.serving.messages import megabytes

FILES_KEPT_S = 900            # an upload or output lives 15-20 minutes: long enough to analyse a clip again
FORM_BYTES = 64 * 1024        # a multipart body's own bytes around one file: boundaries, headers, small fields


def delete_schedule(kept_s: int = FILES_KEPT_S) -> tuple[int, int]:
    """Gradio's delete_cache (every N seconds, older than ``kept_s``): a file lives at most 4/3 ``kept_s``."""
    return max(1, kept_s // 3), kept_s


class RequestBodyLimit:
    """ASGI middleware: answers 413 to a request that declares a body over ``max_bytes`` (one clip plus FORM_BYTES)
    and 411 to one that sends a body without declaring its length, before the application reads any of it. (The
    server reads no more than the declared length, so the declaration is the bound.)"""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            length = headers.get(b"content-length", b"").decode("latin-1")
            refusal = None
            if not length and b"transfer-encoding" in headers:
                refusal = 411, "Send the request with a Content-Length."
            elif length and (not length.isdigit() or int(length) > self.max_bytes):
                refusal = 413, (f"One request may send one clip of at most {megabytes(self.max_bytes - FORM_BYTES)}. "
                                "Trim or compress the clip and upload it again.")
            if refusal:
                await PlainTextResponse(refusal[1], status_code=refusal[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)


def launch_limits(max_file_bytes: int) -> dict:
    """Keyword arguments of ``Blocks.launch``: each file at most ``max_file_bytes``, each request one such file.
    A new dict per launch: Gradio adds its own entries to ``app_kwargs``."""
    body = Middleware(RequestBodyLimit, max_bytes=max_file_bytes + FORM_BYTES)
    return {"max_file_size": max_file_bytes, "app_kwargs": {"middleware": [body]}}
