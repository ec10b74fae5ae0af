"""Live mode (mclmcf.serving.live): sessions fed as the Live tab's stream events feed them, with real speech (espeak-ng),
real face frames, the real speech recogniser and real weights; and the Live tab in headless Chromium with a
fake camera and microphone."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from mclmcf.serving.explain import WordAttribution, WordAttributions, default_method, word_spans
from mclmcf.ui import words

from mclmcf.serving.live import LiveConfig, LiveInputError, LiveSession, WindowScore, colour_words, score_window
from mclmcf.serving.live_sessions import LiveSessionEnded, LiveSessions
from test_app import ARTIFACTS, browser_test, chromium, full_page_screenshot, launch_app, wait_for

SR = 48_000                    # what browsers record at
POSITIVE = "What a wonderful, brilliant film. I loved it."
NEGATIVE = "A dull, lifeless mess. I hated it."


@pytest.fixture(scope="module")
def demo_pipeline():
    """The bundled demo weights (text-driven: the score follows the words) with the packaged speech recogniser."""
    from mclmcf.serving.pipeline import SentimentPipeline
    from mclmcf.serving.weights import DEFAULT_DIR, load_weights
    return SentimentPipeline(load_weights(str(DEFAULT_DIR)))


@pytest.fixture(scope="module")
def mute_pipeline(loaded):
    """Small random weights and no speech recogniser: fast, for the bookkeeping tests."""
    from mclmcf.serving.pipeline import SentimentPipeline
    return SentimentPipeline(loaded, asr_model="none")


def feed(session: LiveSession, wave: np.ndarray, chunk_s: float = 0.1) -> None:
    """``wave`` (float at SR) as the microphone stream sends it: int16 chunks of chunk_s seconds."""
    step = int(chunk_s * SR)
    for i in range(0, len(wave), step):
        session.add_audio(SR, (wave[i:i + step] * 32767).astype(np.int16))


def score_now(session: LiveSession, pipeline):
    """What start_scoring's thread does, in this thread: the score, then its words coloured."""
    window = session.window()
    return session.record(window, colour_words(pipeline, window, score_window(pipeline, window)))


def held_bytes(session: LiveSession) -> int:
    """Memory held by the session's buffers (audio ring, face rows, history)."""
    frames = sum(row.nbytes + (0 if p is None else p.nbytes) for _, row, p in session._frames)
    return session._samples.nbytes + frames + 16 * len(session._history)


def test_positive_then_negative_speech_moves_the_score_across_zero(demo_pipeline):
    from preprocessing.synthetic import face_frames, speak
    session = LiveSession(demo_pipeline)
    silence = np.zeros(SR // 2, np.float32)
    feed(session, np.concatenate([silence, speak(POSITIVE, SR), silence]))
    for frame in face_frames(0.5, fps=4, size=(640, 480)):     # frames are timed by the wall clock: film just now
        session.add_frame(frame)
        time.sleep(0.1)
    positive = score_now(session, demo_pipeline)
    feed(session, np.concatenate([speak(NEGATIVE, SR), silence]))
    negative = score_now(session, demo_pipeline)
    assert "loved" in positive.words.lower() and "hated" in negative.words.lower(), (positive.words, negative.words)
    assert positive.score > 0.5 and negative.score < -0.5, (positive.score, negative.score)
    assert positive.face_fraction > 0.9 and positive.expressions is not None
    assert [s for _, s in negative.history] == [positive.score, negative.score]
    for update in (positive, negative):           # the words heard, coloured by the page's method, add up
        result = update.attributions
        assert [w.word for w in result.words] == [update.words[a:b] for a, b in word_spans(update.words)]
        assert result.score == pytest.approx(update.score, abs=1e-4)
        assert abs(result.remainder) < 0.05 and result.method == default_method(demo_pipeline.weights.model,
                                                                                len(result.words))


def test_a_score_is_due_every_second_and_at_once_when_a_phrase_ends(mute_pipeline):
    from preprocessing.synthetic import voice_tone
    session = LiveSession(mute_pipeline, LiveConfig(score_every_s=1.0, pause_s=0.3))
    assert not session.due()
    feed(session, np.zeros(int(1.1 * SR), np.float32))     # (the resampler holds a few ms back)
    assert session.due()                                         # the 1 s tick
    session.window()
    feed(session, voice_tone(0.5, 160.0, SR))
    assert not session.due()                                     # still talking, tick not yet
    feed(session, np.zeros(int(0.4 * SR), np.float32))
    assert session.due()                                         # 0.9 s after the last score: the phrase ended
    session.window()
    feed(session, np.zeros(int(0.5 * SR), np.float32))
    assert not session.due()                                     # quiet without new speech: wait for the tick


def test_audio_is_mixed_down_and_resampled_to_the_weights_rate(mute_pipeline):
    session = LiveSession(mute_pipeline)
    t = np.arange(44_100) / 44_100
    stereo = (np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1) * 0.5 * 32767).astype(np.int16)
    for i in range(0, len(stereo), 4410):
        session.add_audio(44_100, stereo[i:i + 4410])
    window = session.window(2.0)
    rate = mute_pipeline.weights.spec.sample_rate
    assert abs(len(window.waveform) - rate) <= 0.03 * rate      # 1 s of audio (the resampler holds ~20 ms back)
    assert 0.3 < np.abs(window.waveform).max() < 0.6


def test_face_rows_lie_on_the_weights_frame_grid(mute_pipeline):
    from preprocessing.synthetic import face_frames
    session = LiveSession(mute_pipeline)
    no_camera = session.window(2.0)
    mean = mute_pipeline.weights.model.vision_norm.mean.numpy().reshape(1, -1)
    assert no_camera.face_fraction == 0 and no_camera.expressions is None and np.allclose(no_camera.vision, mean)
    for frame in face_frames(1.0, fps=4, size=(640, 480), motion="still"):
        session.add_frame(frame)
        time.sleep(0.25)                                         # frames arrive over a second, as a webcam sends them
    window = session.window(2.0)
    fps = mute_pipeline.weights.spec.video_fps
    assert 0.9 * fps <= len(window.vision) <= 2 * fps            # one row per grid point since the first frame
    assert window.face_fraction == 1.0 and np.all(window.vision.any(axis=1))
    assert window.expressions.shape == (7,) and abs(window.expressions.sum() - 1) < 1e-3
    session.add_frame(np.full((480, 640, 3), 90, np.uint8))      # a wall: no face...
    time.sleep(0.3)
    assert session.window(2.0).face_fraction < 1.0               # ...from the next grid points on


def test_face_rows_are_the_clip_analysis_features_of_the_same_frames(mute_pipeline, make_clip):
    """Live rows = extract_clip's vision rows for the same decoded frames (whatever the spec version), up to the
    face mesh's own difference: the clip analysis tracks the face from frame to frame, live mode finds it in
    each frame (frames arrive one at a time, 0.25 s apart)."""
    from preprocessing import extract_clip
    from preprocessing.media import load_media
    from preprocessing.spec import VISUAL_FEATURES_BY_VERSION
    spec = mute_pipeline.weights.spec
    path = make_clip("talk.mp4")
    clip = extract_clip(path, spec)
    session = LiveSession(mute_pipeline)
    for frame in load_media(path, fps=spec.video_fps, sample_rate=spec.sample_rate).frames:
        session.add_frame(frame)
    rows = np.stack([row for _, row, _ in session._frames])
    assert rows.shape == clip.vision.shape == (len(clip.vision), spec.visual_dim)
    geometry = len(VISUAL_FEATURES_BY_VERSION[1])
    assert np.abs(rows[:, :geometry] - clip.vision[:, :geometry]).max() < 0.1, np.abs(rows - clip.vision).max(axis=0)
    if spec.visual_dim > geometry:    # spec version 2: the FER crop follows the mesh, so its probabilities move more
        live, analysed = rows[:, geometry:], clip.vision[:, geometry:]
        assert np.abs(live - analysed).max() < 0.35
        assert np.mean(live.argmax(1) == analysed.argmax(1)) >= 0.8


def test_memory_stays_flat_over_a_long_session(mute_pipeline):
    """A session's buffers fill up within one window / one history span and then stay the same size."""
    from preprocessing.synthetic import face_frames, voice_tone
    config = LiveConfig(window_s=2.0, history_s=5.0)
    session = LiveSession(mute_pipeline, config)
    frame = next(face_frames(0.1, fps=10, size=(320, 240), motion="still"))
    held = []
    for second in range(24):
        feed(session, voice_tone(1.0, 160.0, SR))
        session.add_frame(frame)
        update = score_now(session, mute_pipeline)
        held.append(held_bytes(session))
    assert len(update.history) <= 6 and update.history[0][0] >= update.end_s - config.history_s
    rate = mute_pipeline.weights.spec.sample_rate
    assert len(session._samples) == 10 * rate                    # the ring holds the longest window, no more
    assert max(held[12:]) <= 1.01 * held[12], held               # full after 10 s (the ring), flat since
    wall = np.full((48, 64, 3), 90, np.uint8)
    for _ in range(400):                                         # frames faster than any webcam sends them
        session.add_frame(wall)
    assert len(session._frames) == session._frames.maxlen


def test_background_scoring_reports_each_result_once_and_failures_as_text(mute_pipeline):
    session = LiveSession(mute_pipeline)
    feed(session, np.zeros(SR, np.float32))
    assert session.start_scoring(lambda w: score_window(mute_pipeline, w))
    update = wait_for(session.take_update, timeout=60, what="a background score")
    assert isinstance(update.score, float) and session.take_update() is None

    def broken(window):
        raise RuntimeError("boom")
    assert session.start_scoring(broken)
    message = wait_for(session.take_update, timeout=60, what="the failure")
    assert isinstance(message, str) and "failed" in message and "boom" not in message


def test_the_score_is_shown_first_and_its_coloured_words_follow_unless_a_new_score_is_due(mute_pipeline):
    """The score's update does not wait for the colours; the colours come as a second update of the same point.
    When audio enough for the next score arrived while scoring (a phrase ended), that score goes first."""
    session = LiveSession(mute_pipeline)
    feed(session, np.zeros(SR, np.float32))
    release, coloured = threading.Event(), WordAttributions([WordAttribution("good", 0.5, True)], 1.0, 0.5)

    def colourer(window, result):
        assert release.wait(60)
        return replace(result, attributions=coloured, timings={**result.timings, "explain": 0.0})
    assert session.start_scoring(lambda window: WindowScore(1.0, "good", {"model": 0.0}), colourer=colourer)
    first = wait_for(session.take_update, timeout=60, what="the score")
    assert first.score == 1.0 and first.attributions is None and session.scoring
    release.set()
    second = wait_for(session.take_update, timeout=60, what="the coloured words")
    assert second.attributions is coloured and "explain" in second.timings
    assert second.history == first.history and len(second.history) == 1 and second.end_s == first.end_s

    def scorer_while_a_phrase_ends(window):
        feed(session, np.zeros(int(1.2 * SR), np.float32))       # a score is due again before the colours
        return WindowScore(-1.0, "bad", {"model": 0.0})
    assert session.start_scoring(scorer_while_a_phrase_ends, colourer=colourer)
    assert wait_for(session.take_update, timeout=60, what="the score").attributions is None
    wait_for(lambda: not session.scoring, timeout=60, what="the scoring thread's end")
    assert session.take_update() is None


def test_sessions_are_capped_released_and_idle_ones_give_way(mute_pipeline):
    sessions = LiveSessions(max_sessions=1, idle_s=60.0)
    first = sessions.acquire("tab-1", mute_pipeline)
    assert first is not None and sessions.acquire("tab-1", mute_pipeline) is first
    assert sessions.acquire("tab-2", mute_pipeline) is None      # busy
    sessions.release("tab-1")
    assert len(sessions) == 0 and sessions.acquire("tab-2", mute_pipeline) is not None
    sessions.idle_s = 0.0                                        # tab-2 sent nothing since: it gives way
    assert sessions.acquire("tab-3", mute_pipeline) is not None and len(sessions) == 1


def test_chunks_with_an_impossible_rate_or_length_are_refused_before_resampling(mute_pipeline):
    """Before: a chunk declaring 1 Hz was resampled to 16 kHz (2,000 samples -> 32 M), one of any length taken."""
    session = LiveSession(mute_pipeline)
    tone = np.zeros(2_000, np.int16)
    for rate in (1, 7_999, 192_001, 48_000.0, True):
        with pytest.raises(LiveInputError, match=r"live mode takes 8-192 kHz"):
            session.add_audio(rate, tone)
    with pytest.raises(LiveInputError, match=r"sent 11\.0 s of sound at once; live mode takes at most 10 s"):
        session.add_audio(SR, np.zeros(11 * SR, np.int16))
    with pytest.raises(LiveInputError, match=r"not microphone sound"):
        session.add_audio(SR, np.zeros((100, 64), np.int16))
    assert len(session._samples) == 0 and session._received_s == 0.0
    for rate in (8_000, 192_000):                                # the ends of the range pass
        session.add_audio(rate, np.zeros(rate // 10, np.int16))
    assert session._received_s > 0


def test_frames_never_open_a_session_and_do_not_keep_one_alive(mute_pipeline):
    from preprocessing.synthetic import face_frames
    sessions = LiveSessions(max_sessions=1, idle_s=60.0)
    assert sessions.get("camera-only") is None and len(sessions) == 0      # what the webcam's handler asks
    session = sessions.acquire("tab-1", mute_pipeline)                    # the microphone opens it
    assert sessions.get("tab-1") is session
    heard = session.last_input
    session.add_frame(next(face_frames(0.1, fps=10, size=(320, 240), motion="still")))
    assert session.last_input == heard                                    # only audio counts as activity


def test_a_tabs_live_time_is_capped_even_when_it_stops_and_starts_again(mute_pipeline):
    sessions = LiveSessions(max_sessions=1, idle_s=60.0, max_session_s=1.0)
    assert sessions.acquire("tab-1", mute_pipeline) is not None
    time.sleep(1.1)
    with pytest.raises(LiveSessionEnded, match=r"Reload the page to start again"):
        sessions.acquire("tab-1", mute_pipeline)
    assert len(sessions) == 0                                              # its slot is free for others
    sessions.release("tab-1")                                              # the page's stop / restart
    with pytest.raises(LiveSessionEnded):
        sessions.acquire("tab-1", mute_pipeline)
    assert sessions.acquire("tab-2", mute_pipeline) is not None


def test_live_panel_shows_score_timeline_words_and_expressions(demo_pipeline):
    from mclmcf.ui import live as live_viz
    from mclmcf.serving.live import LiveUpdate
    update = LiveUpdate(end_s=12.0, score=-1.2, label_range=3.0, sentiment_class="negative", polarity="negative",
                        words="I hated <it>", attributions=None, face_fraction=0.5, expressions={"happy": 0.1, "sad": 0.7},
                        timings={"asr": 0.4}, history=[(10.0, 1.0), (11.0, 0.2), (12.0, -1.2)])
    page = live_viz.panel_html(update, 4.0, 60.0)
    assert 'id="live-score"' in page and ">-1.20<" in page
    assert "I hated &lt;it&gt;" in page and page.count("<circle") == 3 and "sad" in page
    assert "No face in view" in live_viz.panel_html(
        LiveUpdate(**{**update.__dict__, "expressions": None, "words": ""}), 4.0, 60.0)
    assert "failed" in live_viz.panel_html("Scoring this window failed", 4.0, 60.0)
    no_recogniser = LiveUpdate(**{**update.__dict__, "words": None})
    assert "speech recognition is off" in live_viz.panel_html(no_recogniser, 4.0, 60.0)
    coloured = WordAttributions([WordAttribution("I", 0.1), WordAttribution("hated", -1.1),
                                 WordAttribution("<it>", 0.0)], score=-1.2, baseline_score=-0.2)
    page = live_viz.panel_html(LiveUpdate(**{**update.__dict__, "attributions": coloured}), 4.0, 60.0)
    spans = re.findall(r'<span class="word" style="background:(#[0-9a-f]{6})[^"]*" title="([^"]+)">([^<]*)</span>', page)
    assert [(title, word) for _, title, word in spans] == [("+0.100", "I"), ("-1.100", "hated"), ("+0.000", "&lt;it&gt;")]
    assert spans[1][0] == words.DOWN and spans[2][0] == "#ffffff" and "pushed the score up" in page


# ---- the Live tab in a browser ---------------------------------------------------------------

@pytest.fixture(scope="module")
def live_media(tmp_path_factory):
    """Chromium's fake devices: a y4m of the face and a wav of positive speech, silence, negative speech,
    silence (Chromium loops both files)."""
    import soundfile as sf

    from fake_camera import write_y4m
    from preprocessing.synthetic import face_frames, speak
    root = tmp_path_factory.mktemp("live-media")
    gap = np.zeros(3 * SR, np.float32)
    wave = np.concatenate([gap[:SR // 2], speak(POSITIVE, SR), gap, speak(NEGATIVE, SR), gap])
    sf.write(root / "speech.wav", wave, SR, subtype="PCM_16")
    return write_y4m(root / "face.y4m", face_frames(2.0, fps=10, size=(320, 240)), 10), root / "speech.wav"


@pytest.fixture(scope="module")
def live_server_log(tmp_path_factory):
    return tmp_path_factory.mktemp("live-log") / "app.log"


@pytest.fixture(scope="module")
def live_server(live_server_log):
    """The app as `python app.py` starts it (bundled demo weights, packaged speech recogniser)."""
    yield from launch_app([], live_server_log)


def live_reading(driver) -> tuple[float, str] | None:
    """(score, words heard) of the panel now, read in one go (it is replaced about once a second)."""
    reading = driver.execute_script("const p = document.getElementById('live-panel'); return p && "
                                    "[p.dataset.score, document.getElementById('live-words').textContent];")
    return (float(reading[0]), reading[1].lower()) if reading else None


@browser_test
def test_browser_live_score_follows_positive_then_negative_speech(live_server, live_server_log, live_media):
    from selenium.webdriver.common.by import By

    video, audio = live_media
    fake_devices = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-video-capture={video}", f"--use-file-for-fake-audio-capture={audio}"]
    with chromium("app-live-failure.png", extra_args=fake_devices) as driver:
        wait = start_live(driver, live_server)
        assert "allow both for this site" in driver.find_element(By.ID, "live-permissions").text
        # the wav loops: whichever phrase plays first, a clearly positive and then a clearly negative score follow
        positive, negative = ("loved", "wonderful", "brilliant"), ("hated", "lifeless", "mess", "dull")
        wait.until(lambda d: (r := live_reading(d)) and r[0] > 0.5 and any(w in r[1] for w in positive))
        wait.until(lambda d: (r := live_reading(d)) and r[0] < -0.5 and any(w in r[1] for w in negative))
        assert "Facial expression" in driver.find_element(By.ID, "live-expressions").text     # the camera's face
        timeline = driver.find_elements(By.CSS_SELECTOR, "#live-timeline circle")
        assert len(timeline) >= 3 and {c.get_attribute("fill") for c in timeline} >= {"#2f9e6e", "#d9485f"}
        assert not driver.find_elements(By.ID, "live-blocked")
        full_page_screenshot(driver, 1400, "app-live.png")
        assert (ARTIFACTS / "app-live.png").stat().st_size > 0
        assert "live session opened (1 of" in live_server_log.read_text()
        driver.get("about:blank")                                # the tab leaves the page: its session goes
        wait_for(lambda: "live session closed (0 of" in live_server_log.read_text(), timeout=60,
                 what="the session to be released")
    assert "Traceback" not in live_server_log.read_text()


@pytest.fixture
def one_slot_app(checkpoint, monkeypatch):
    """The app in this process with one live slot (small random weights); yields its URL."""
    import app
    from mclmcf.serving.registry import PipelineRegistry
    from test_app import free_port
    monkeypatch.setattr(app, "LIVE_SESSIONS", 1)
    demo = app.build_demo(PipelineRegistry(str(checkpoint)))
    port = free_port()
    demo.queue().launch(server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def start_live(driver, url: str, camera: bool = True):
    """Open the Live tab at ``url`` and press Record on the microphone (and the camera)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    wait = WebDriverWait(driver, 120)
    driver.get(url)
    wait.until(lambda d: next((t for t in d.find_elements(By.CSS_SELECTOR, "button[role=tab]")
                               if t.text.strip() == "Live"), None)).click()
    if camera:
        wait.until(lambda d: d.find_element(By.XPATH, "//*[@id='live-camera']//button[normalize-space()="
                                                      "'Click to Access Webcam']")).click()
        wait.until(lambda d: d.find_element(By.XPATH, "//*[@id='live-camera']//button[normalize-space()="
                                                      "'Record']")).click()
    wait.until(lambda d: d.find_element(By.XPATH, "//*[@id='live-mic']//button[normalize-space()='Record']")).click()
    return wait


@browser_test
def test_browser_second_visitor_is_told_busy_and_joins_when_the_first_stops(one_slot_app, live_media, caplog):
    from selenium.webdriver.common.by import By
    video, audio = live_media
    fake_devices = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-audio-capture={audio}"]
    caplog.set_level("INFO", logger="mclmcf.app.live")
    with chromium("app-live-busy-failure.png", extra_args=fake_devices) as driver:
        wait = start_live(driver, one_slot_app, camera=False)
        wait.until(lambda d: d.find_elements(By.ID, "live-panel"))
        first = driver.current_window_handle
        driver.switch_to.new_window("tab")
        wait = start_live(driver, one_slot_app, camera=False)
        busy = wait.until(lambda d: d.find_elements(By.ID, "live-busy"))[0].text
        assert "Live mode is busy" in busy and "1 live stream at a time" in busy
        assert "joins as soon as one frees up" in busy
        driver.save_screenshot(str(ARTIFACTS / "app-live-busy.png"))
        second = driver.current_window_handle
        driver.switch_to.window(first)
        driver.find_element(By.XPATH, "//*[@id='live-mic']//button[normalize-space()='Stop']").click()
        wait_for(lambda: "live session closed (0 of 1 open)" in caplog.text, what="the stopped session to go")
        driver.switch_to.window(second)
        wait.until(lambda d: d.find_elements(By.ID, "live-panel"))       # the waiting tab got the slot
        driver.find_element(By.XPATH, "//*[@id='live-mic']//button[normalize-space()='Stop']").click()
        wait_for(lambda: caplog.text.count("live session closed (0 of 1 open)") == 2, what="the second session to go")


@browser_test
def test_browser_says_what_to_allow_when_camera_and_microphone_are_blocked(one_slot_app):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    with chromium("app-live-blocked-failure.png") as driver:
        for permission in ("microphone", "camera"):
            driver.execute_cdp_cmd("Browser.setPermission", {"permission": {"name": permission}, "setting": "denied",
                                                             "origin": one_slot_app.rstrip("/")})
        wait = WebDriverWait(driver, 120)
        driver.get(one_slot_app)
        wait.until(lambda d: next((t for t in d.find_elements(By.CSS_SELECTOR, "button[role=tab]")
                                   if t.text.strip() == "Live"), None)).click()
        note = wait.until(lambda d: d.find_elements(By.ID, "live-blocked"))[0].text
        assert "blocks the microphone and the camera" in note and "allow them, and reload" in note, note
        driver.save_screenshot(str(ARTIFACTS / "app-live-blocked.png"))
