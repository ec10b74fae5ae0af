"""The third hardening round (issue #37): every route that runs work obeys the app's limits, and no small request
costs memory or CPU out of proportion. Each test failed on the code before the round (said per test).

Server tests run `python app.py` on a small random checkpoint and speak Gradio's HTTP protocol as a client
program would, without the page: direct REST routes, the queue's join/data routes, the upload route.
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading

import httpx
import numpy as np
import pytest
from PIL import Image

from test_app import launch_app

GOOD = "I loved it"


@pytest.fixture(scope="module")
def app_server(checkpoint, tmp_path_factory):
    """(URL, process id, console log) of `python app.py` on the random checkpoint."""
    log = tmp_path_factory.mktemp("routes-log") / "app.log"
    for url, pid in launch_app(["--weights", str(checkpoint), "--asr-model", "none"], log, with_pid=True):
        yield url, pid, log


def upload(url: str, path) -> dict:
    with open(path, "rb") as f:
        stored = httpx.post(f"{url}gradio_api/upload", files={"files": (path.name, f)}).json()[0]
    return {"path": stored, "meta": {"_type": "gradio.FileData"}}


def fn_index(url: str, name: str) -> int:
    """The index of the event handler called ``name`` (Gradio's /config lists them in order)."""
    dependencies = httpx.get(f"{url}config").json()["dependencies"]
    return next(i for i, d in enumerate(dependencies) if d.get("api_name") == name)


def through_queue(url: str, index: int, data: list, session: str) -> dict:
    """Join the queue as the page does and return the event's last message (``process_completed``)."""
    joined = httpx.post(f"{url}gradio_api/queue/join", json={"data": data, "event_data": None, "fn_index": index,
                                                             "trigger_id": None, "session_hash": session})
    assert joined.status_code == 200, joined.text
    stream = httpx.get(f"{url}gradio_api/queue/data", params={"session_hash": session}, timeout=120).text
    messages = [json.loads(line[6:]) for line in stream.splitlines() if line.startswith("data: ")]
    return next(m for m in messages if m.get("msg") == "process_completed")


def rss_peak_mib(pid: int) -> float:
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return int(status["VmHWM"].split()[0]) / 1024


# ---- 1. the direct REST routes skip the queue --------------------------------------------------

def test_direct_http_routes_are_closed_and_the_queue_still_answers(app_server, make_clip):
    """Before: each direct POST ran the model outside the 2-at-a-time queue and returned the full JSON."""
    url, _, _ = app_server
    clip = upload(url, make_clip("talk.mp4", mouth="talk", audio="speech"))
    data = [clip, GOOD, 10, 0, ""]
    for route in ("api/predict", "run/predict", "api/analyse", "run/analyse"):
        answer = httpx.post(f"{url}gradio_api/{route}", json={"data": data}, timeout=120)
        assert answer.status_code == 404 and "score" not in answer.text, (route, answer.text[:200])
    completed = through_queue(url, fn_index(url, "predict"), data, "queued-1")
    assert completed["success"] and np.isfinite(completed["output"]["data"][0]["score"])


# ---- 2, 8, 9. routes the app does not need ------------------------------------------------------

class CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):   # noqa: N802 (the standard library's name)
        CountingHandler.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"not a video")

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback_site():
    """A web server on loopback that counts the requests it gets: proof that the app fetched nothing."""
    CountingHandler.hits = []
    site = http.server.HTTPServer(("127.0.0.1", 0), CountingHandler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()


def test_gradio_routes_the_app_does_not_use_are_closed(app_server, make_clip, loopback_site):
    """Before: /process_recording ran ffmpeg with the visitor's zoom effects (76.7 s of CPU for a 36 KB clip),
    /monitoring/summary answered without a key, and /file=URL proxied any URL."""
    url, _, _ = app_server
    clip = make_clip("talk.mp4", mouth="talk", audio="speech")
    with open(clip, "rb") as f:
        recording = httpx.post(f"{url}gradio_api/process_recording", files={"video": ("r.mp4", f)},
                               data={"zoom_effects": json.dumps([{"boundingBox": {"topLeft": [0, 0],
                                                                                  "bottomRight": [1, 1]}}])})
    assert recording.status_code == 404
    for route in ("monitoring", "monitoring/summary", "gradio_api/monitoring/summary",
                  f"gradio_api/file={loopback_site}/clip.mp4", f"gradio_api/proxy={loopback_site}/clip.mp4",
                  "gradio_api/vibe-code", "gradio_api/run-history/buckets"):
        assert httpx.get(f"{url}{route}").status_code == 404, route
    assert CountingHandler.hits == []


def test_a_file_named_by_url_is_refused_and_nothing_is_fetched(app_server, loopback_site):
    """Before: Gradio downloaded a FileData whose path is a URL (public hosts, no size cap); the app fetched
    whatever a visitor named. Loopback was refused by Gradio's own host check, with Gradio's message."""
    url, _, _ = app_server
    named = {"path": f"{loopback_site}/clip.mp4", "meta": {"_type": "gradio.FileData"}}
    completed = through_queue(url, fn_index(url, "predict"), [named, GOOD, 10, 0, ""], "url-1")
    assert not completed["success"] and "fetches no URL" in completed["output"]["error"]
    assert CountingHandler.hits == []


# ---- 3. webcam frames are decoded before any handler runs ---------------------------------------

def test_a_huge_webcam_frame_is_refused_before_it_is_decoded(app_server, tmp_path):
    """Before: a 46 KB one-bit PNG of 13000 x 13000 pixels decoded to +1,422 MiB of peak RSS, with no live
    session and no concurrency limit."""
    url, pid, _ = app_server
    bomb = tmp_path / "frame.png"
    Image.new("1", (13000, 13000)).save(bomb, optimize=True)
    assert bomb.stat().st_size < 100_000
    on_frame = fn_index(url, "on_frame")
    peak = rss_peak_mib(pid)
    completed = through_queue(url, on_frame, [upload(url, bomb)], "frame-1")
    assert not completed["success"] and "larger than 8,294,400 pixels" in completed["output"]["error"]
    assert rss_peak_mib(pid) - peak < 200      # the decoded image alone would be 1,400 MiB


def test_webcam_streams_have_a_concurrency_limit(checkpoint):
    """Before: the frame event had none: any number of streams decoded frames at once."""
    import app
    demo = app.build_demo(app.PipelineRegistry(str(checkpoint)))
    on_frame = next(f for f in demo.fns.values() if f.name == "on_frame")
    assert on_frame.concurrency_limit == app.LIVE_FRAME_STREAMS and on_frame.concurrency_id == "live-frames"


# ---- 5. one key per weights folder --------------------------------------------------------------

def test_every_spelling_of_a_weights_folder_loads_it_once(checkpoint, tmp_path, monkeypatch):
    """Before: './w', 'w/.', './/w' and '../parent/w' each loaded another full model (RSS 1.84 -> 3.46 GB for four),
    and the operator's folder answered to its absolute path, telling a visitor where the install lives."""
    from mclmcf.serving import registry as registry_mod
    from mclmcf.serving.registry import PipelineRegistry
    from mclmcf.serving.weights import WeightsError
    builds = []
    build = registry_mod.build_weights
    monkeypatch.setattr(registry_mod, "build_weights", lambda *args, **kw: builds.append(args[0]) or build(*args, **kw))
    allowed = tmp_path / "allowed"
    default = shutil.copytree(checkpoint, allowed / "default")
    shutil.copytree(checkpoint, allowed / "other")
    monkeypatch.setenv("MCLMCF_ALLOWED_WEIGHT_DIRS", str(allowed))
    monkeypatch.chdir(allowed)
    registry = PipelineRegistry(str(default), max_loaded=4)
    first = registry.get("other")
    for spelling in ("./other", "other/.", ".//other", "../allowed/other", str(allowed / "other")):
        assert registry.get(spelling) is first, spelling
    for spelling in ("default", "./default/", str(default)):
        assert registry.get(spelling) is registry.get(), spelling
    assert len(builds) == 1                       # the default is loaded apart from visitors' weights

    outside = PipelineRegistry(str(checkpoint))   # the operator's folder, not among the allowed ones
    with pytest.raises(WeightsError, match="is not a weights source this server accepts"):
        outside.get(str(checkpoint))


# ---- 6. the live slot ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mute_pipeline(loaded):
    from mclmcf.serving.pipeline import SentimentPipeline
    return SentimentPipeline(loaded, asr_model="none")


def test_a_new_tab_id_does_not_renew_the_live_slot_ahead_of_a_waiting_visitor(mute_pipeline, monkeypatch):
    """Before: the 10-minute limit was keyed on the client's session hash, so a client that held the slot with
    0.1 s of silence every 10 s and switched to a fresh hash when its time was up held it indefinitely."""
    from mclmcf.serving import live_sessions as live
    clock = [1000.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: clock[0])
    sessions = live.LiveSessions(max_sessions=1, idle_s=15.0, max_session_s=600.0)
    assert sessions.acquire("holder-1", mute_pipeline) is not None
    for _ in range(60):                                      # 10 minutes: silence every 10 s, a visitor waiting
        clock[0] += 10.0
        sessions.get("holder-1").last_input = clock[0]
        assert sessions.acquire("holder-1", mute_pipeline) is not None
        assert sessions.acquire("visitor", mute_pipeline) is None
    clock[0] += 1.0
    with pytest.raises(live.LiveSessionEnded):              # its time is up, on the server's clock
        sessions.acquire("holder-1", mute_pipeline)
    assert sessions.acquire("holder-2", mute_pipeline) is None   # a fresh id queues behind the visitor
    assert sessions.acquire("visitor", mute_pipeline) is not None


# ---- 7. the timeline's text -----------------------------------------------------------------------

def test_dollar_signs_in_a_transcript_are_drawn_as_text_in_the_timeline():
    """Before: '$x^$' was parsed as mathtext and the analysis was refused with pyparsing's ParseSyntaxException."""
    from mclmcf.serving.prediction import Segment
    from mclmcf.ui.result import timeline_figure
    picture = timeline_figure([Segment(0.0, 1.0, 0.4, "I really $x^$ loved this movie"),
                               Segment(1.0, 2.0, -0.2, "it cost $5 and $10")], label_range=3.0)
    assert picture.ndim == 3 and picture.shape[2] in (3, 4)


# ---- 9. smaller items -------------------------------------------------------------------------------

def test_console_lines_escape_control_characters_and_malformed_requests_log_one_line(app_server, make_clip):
    """Before: escape codes in a weights value reached the console raw, each malformed queue request printed a
    ~20-line traceback (and its client got no message)."""
    url, _, log = app_server
    clip = upload(url, make_clip("talk.mp4", mouth="talk", audio="speech"))
    predict = fn_index(url, "predict")
    refused = through_queue(url, predict, [clip, GOOD, 10, 0, "\x1b[2J\x1b[31mowner"], "escape-1")
    assert not refused["success"]
    malformed = through_queue(url, predict, [12, GOOD, 10, 0, ""], "malformed-1")
    assert not malformed["success"] and "could not be read" in malformed["output"]["error"]
    console = log.read_text()
    assert "\x1b" not in console and "\\x1b[2J" in console
    assert "Traceback" not in console and "unreadable request to predict" in console


def test_hub_refusals_name_no_exception(checkpoint, monkeypatch):
    """Before: 'Could not download ... (LocalEntryNotFoundError)' told a visitor that the server is offline."""
    from mclmcf.serving import weights as weights_mod
    from mclmcf.serving.registry import PipelineRegistry
    monkeypatch.setattr(weights_mod, "hub_reachable", lambda timeout_s=3.0: False)
    with pytest.raises(weights_mod.WeightsError) as refused:
        PipelineRegistry(str(checkpoint)).get("owner/missing")
    assert "Error" not in str(refused.value) and "Could not download 'owner/missing'" in str(refused.value)
