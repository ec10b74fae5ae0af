"""Decoding real clips in several containers, and every user-facing media error."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from preprocessing import (EmptyMediaError, MediaError, NoFaceError, NoVideoStreamError,
                           TooLongError, UnreadableMediaError, UnsupportedFormatError, extract_clip)
from preprocessing.media import load_media
from preprocessing.synthetic import reencode_video, voice_tone

# (file, video codec, audio codec); None = the container's default (see synthetic.CONTAINERS)
CONTAINERS = [("clip.mp4", None, None), ("clip.webm", None, None), ("vp8.webm", "libvpx", None),
              ("clip.mkv", None, None), ("clip.mov", None, None), ("clip.avi", None, None), ("mp3.avi", None, "mp3")]


@pytest.mark.parametrize("name,vcodec,acodec", CONTAINERS)
def test_decodes_container(make_clip, name, vcodec, acodec):
    path = make_clip(name, video_codec=vcodec, audio_codec=acodec, audio="tone")
    m = load_media(path, fps=5, sample_rate=16_000)
    assert m.waveform.dtype == np.float32 and m.waveform.ndim == 1
    assert abs(len(m.waveform) / 16_000 - 2.0) < 0.1          # codec padding is a few ms at most
    assert 0.05 < np.abs(m.waveform).max() <= 1.0
    # 2 s sampled at 5 fps; AVI timestamps can be a frame off, so allow one frame more
    assert m.frames.shape[0] in (10, 11) and m.frames.shape[1:] == (180, 320, 3) and m.frames.dtype == np.uint8
    assert m.frame_times[0] == 0 and np.all(np.abs(np.diff(m.frame_times) - 0.2) < 0.11)
    assert abs(m.duration_s - 2.0) < 0.15


def test_frames_are_downscaled_and_rgb(make_clip):
    m = load_media(make_clip("big.mp4", size=(640, 360), duration_s=0.5), fps=10, max_side=320)
    assert m.frames.shape[1:] == (180, 320, 3)
    # the astronaut's orange suit at the bottom centre: red channel dominates (not BGR)
    r, g, b = m.frames[0, -10:, 150:170].reshape(-1, 3).mean(0)
    assert r > b


def audio_only(path):
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=48_000)
        s.layout = "mono"
        wave = voice_tone(1.0, 150.0, 48_000)
        for start in range(0, len(wave), 1024):
            frame = av.AudioFrame.from_ndarray(wave[None, start:start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48_000, start
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    return path


def assert_human(err: MediaError, name: str):
    msg = str(err)
    assert isinstance(err, ValueError) and name in msg and len(msg) > 60 and "Traceback" not in msg


def test_corrupt_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 500)
    with pytest.raises(UnreadableMediaError) as e:
        load_media(bad)
    assert_human(e.value, "broken.mp4")


def test_truncated_file(make_clip, tmp_path):
    data = make_clip("clip.mp4", audio="tone").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])          # the moov index lives at the end: unreadable
    with pytest.raises(MediaError):
        load_media(cut)


def test_missing_file(tmp_path):
    with pytest.raises(UnreadableMediaError):
        load_media(tmp_path / "nope.mp4")


def test_no_audio_stream_decodes_as_silence_the_video_s_length(make_clip):
    """No sound track is scored as a silent one (tests/test_real_world_media.py has the notice)."""
    m = load_media(make_clip("mute.mp4", audio="none"), fps=5, sample_rate=16_000)
    assert not m.sound_track and not m.waveform.any() and len(m.frames) == 10
    assert abs(len(m.waveform) / 16_000 - 2.0) < 0.15


def test_no_video_stream(tmp_path):
    with pytest.raises(NoVideoStreamError) as e:
        load_media(audio_only(tmp_path / "voice.mp4"))
    assert_human(e.value, "voice.mp4")


def test_zero_length(tmp_path):
    empty = tmp_path / "empty.webm"
    empty.write_bytes(b"")
    with pytest.raises(EmptyMediaError) as e:
        load_media(empty)
    assert_human(e.value, "empty.webm")


def test_container_without_frames(tmp_path):
    path = tmp_path / "nothing.mkv"
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 320, 180, "yuv420p"
        out.add_stream("libopus", rate=48_000).layout = "mono"
        out.start_encoding()      # header only, not a single frame
    with pytest.raises(EmptyMediaError):
        load_media(path)


def test_too_long(make_clip):
    with pytest.raises(TooLongError) as e:
        load_media(make_clip("clip.mkv"), max_duration_s=1.0)
    assert_human(e.value, "clip.mkv")
    assert "1 s" in str(e.value)
    load_media(make_clip("clip.mkv"), max_duration_s=None)     # no cap


def test_unsupported_format(tmp_path):
    gif = tmp_path / "funny.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 100)
    with pytest.raises(UnsupportedFormatError) as e:
        load_media(gif)
    assert_human(e.value, "funny.gif")


def test_no_face_anywhere(make_clip):
    with pytest.raises(NoFaceError) as e:
        extract_clip(make_clip("wall.mp4", face=False, audio="tone"))
    assert_human(e.value, "wall.mp4")


# ---- timestamps: trusted when present, increasing and plausible; else frame order at the nominal rate ----

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def frame_times(path) -> list:
    with av.open(str(path)) as c:
        return [f.time for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from preprocessing.synthetic import make_face_clip
    return make_face_clip(tmp_path_factory.mktemp("ts") / "src.mkv", 3.0, fps=10, size=(320, 180), audio="tone")


def assert_timed_by_order(m, notice=True):
    """3 s at a stated 10 fps sampled at 5 fps: 15 frames 0.2 s apart."""
    assert len(m.frames) == 15 and np.allclose(m.frame_times, np.arange(15) * 0.2, atol=1e-4)
    assert abs(m.duration_s - 3.0) < 0.1
    assert bool(m.notices) == notice and (not notice or "timed by their order at its stated 10 fps" in m.notices[0])


@pytest.mark.parametrize("name", ["positive.mp4", "negative.mp4"])
def test_bundled_examples_have_increasing_timestamps(name):
    times = frame_times(EXAMPLES / name)
    assert len(times) == 90 and all(b > a for a, b in zip(times, times[1:]))
    m = load_media(EXAMPLES / name, fps=10)
    assert len(m.frames) >= 55 and m.frame_times[-1] > 5.5 and not m.notices


def test_all_zero_timestamps_fall_back_to_frame_order(source, tmp_path):
    path = reencode_video(source, tmp_path / "zero.mp4", None)      # what the old example generator did
    assert set(frame_times(path)) == {0.0}
    assert_timed_by_order(load_media(path, fps=5))


def test_repeated_timestamps_fall_back_to_frame_order(source, tmp_path):
    path = reencode_video(source, tmp_path / "repeat.mkv", lambda i: (i // 2) * 200)
    times = frame_times(path)
    assert times[0] == times[1] and times[2] > times[1]
    assert_timed_by_order(load_media(path, fps=5))


def test_missing_timestamps_fall_back_to_frame_order(source, tmp_path):
    """Packets without timestamps: the muxer numbers them 1 ms apart (30 frames in 0.03 s, 1000 fps)."""
    path = tmp_path / "nopts.mkv"
    with av.open(str(source)) as inp, av.open(str(path), "w") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        streams = {vin: out.add_stream_from_template(vin), ain: out.add_stream_from_template(ain)}
        for packet in inp.demux(vin, ain):
            if packet.dts is None:
                continue
            if packet.stream is vin:
                packet.pts = packet.dts = None
            packet.stream = streams[packet.stream]
            out.mux(packet)
    assert frame_times(path)[-1] < 0.1
    assert_timed_by_order(load_media(path, fps=5))


def test_recording_without_duration(source, tmp_path):
    """A live-muxed webm as browsers' MediaRecorder writes it: no duration in the header."""
    path = reencode_video(source, tmp_path / "live.webm", lambda i: i * 100, options={"live": "1"})
    with av.open(str(path)) as c:
        assert c.duration is None
    assert_timed_by_order(load_media(path, fps=5), notice=False)
    with pytest.raises(TooLongError):
        load_media(path, max_duration_s=1.0)


def test_variable_frame_rate_uses_the_timestamps(source, tmp_path):
    """20 fps for the first second, then 5 fps; timed by order at the stated 10 fps, the frame shown at
    1.2 s would be the one filmed at 0.6 s."""
    stamps = [i * 50 if i < 20 else 1000 + (i - 20) * 200 for i in range(30)]
    path = reencode_video(source, tmp_path / "vfr.mkv", lambda i: stamps[i])
    m = load_media(path, fps=5)
    assert not m.notices and len(m.frames) == 15
    with av.open(str(path)) as c:
        filmed = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    for t, frame in zip(m.frame_times, m.frames):    # each sample is the first frame filmed at or after k / 5 s
        first = next(i for i, (ft, _) in enumerate(filmed) if ft >= t - 1e-3)
        assert filmed[first][0] == pytest.approx(t, abs=1e-3) and np.array_equal(frame, filmed[first][1])
    assert np.allclose(m.frame_times, np.arange(15) * 0.2, atol=1e-3)
