"""Decoding stays bounded whatever a file claims (issue #27, point 1): a frame flood (a frame every millisecond,
header and timestamps in agreement, so the header's pixel check passes) is refused while it decodes, with its
real length in the message, and the memory it takes stays small. The flood is generated with real PyAV/x264
(tests/malformed_corpus.py): such files cannot be downloaded offline."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from malformed_corpus import frame_flood
from preprocessing.errors import DecodeTimeoutError, TooManyFramesError
from preprocessing.media import load_media

ROOT = Path(__file__).resolve().parents[1]


def test_frame_flood_is_refused_for_its_frame_rate_with_its_real_length(tmp_path):
    flood = frame_flood(tmp_path / "flood.mp4", duration_s=4.0)
    with pytest.raises(TooManyFramesError) as refused:
        load_media(flood, fps=10, sample_rate=16_000)
    message = str(refused.value)
    # before: "'flood.mp4' is 133.2 s long" (4000 frames timed at an assumed 30 fps) after keeping ~670 frames
    assert "in 4.0 s" in message and "over 240 frames per second" in message, message
    assert "133" not in message


def test_frame_flood_memory_stays_bounded(tmp_path):
    """Peak RSS (VmHWM, /proc) of a fresh process decoding a 20 s flood, over the same process just before.
    Measured before the fix: +1,260 MiB (334 -> 1,595 MiB, refused only at the end as '666.6 s long');
    after: about +100 MiB, refused within the first 5,040 frames."""
    flood = frame_flood(tmp_path / "flood.mp4", duration_s=20.0)
    script = textwrap.dedent(f"""
        from preprocessing.media import load_media
        def peak_mib():
            status = open("/proc/self/status").read()
            return int(status.split("VmHWM:")[1].split()[0]) // 1024
        before = peak_mib()
        try:
            load_media({str(flood)!r}, fps=5, sample_rate=16_000)
        except ValueError as err:
            print(type(err).__name__)
        print(peak_mib() - before)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    refusal, growth = out.stdout.split()
    assert refusal == "TooManyFramesError", out.stdout + out.stderr
    assert int(growth) < 400, f"decoding a 20 s frame flood raised peak RSS by {growth} MiB"


def test_decoding_stops_at_its_time_limit(make_clip):
    with pytest.raises(DecodeTimeoutError, match=r"'talk\.mp4' took more than 0 s to decode"):
        load_media(make_clip("talk.mp4", mouth="talk", audio="speech"), max_decode_s=0.0)


def test_an_ordinary_clip_still_decodes_every_sample(make_clip):
    media = load_media(make_clip("talk.mp4", mouth="talk", audio="speech"), fps=5, sample_rate=16_000)
    assert len(media.frames) == 10 and abs(media.duration_s - 2.0) < 0.2 and not media.notices
