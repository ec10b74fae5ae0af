"""Issue #19: bounded resources, no filesystem reach from the page, clean recovery, clear messages."""

from __future__ import annotations

import dataclasses

import numpy as np

from preprocessing import FeatureSpec
from preprocessing.media import load_media


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """Resident memory (MiB) and thread count of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return {"rss_mib": int(fields["VmRSS"].split()[0]) // 1024, "threads": int(fields["Threads"])}


def test_face_mesh_graphs_stay_bounded_over_many_fps_values(make_clip):
    """Each new fps value used to build and keep one more graph (~20 MB, two threads each)."""
    from preprocessing.clip import face_extractor
    frames = load_media(make_clip("talk.mp4"), fps=2).frames[:2]
    spec = FeatureSpec()
    assert face_extractor(spec)(frames).mask.all()
    before = proc_status()
    for i in range(24):                                  # the fps values one visitor can send
        face_extractor(dataclasses.replace(spec, video_fps=1 + i / 100))(frames)
    for i in range(8):                                   # settings that do need their own graph
        assert face_extractor(dataclasses.replace(spec, min_face_confidence=0.3 + i / 100))(frames).mask.all()
    after = proc_status()
    assert after["threads"] <= before["threads"] + 4, (before, after)      # measured: +2 (32 graphs before: +64)
    assert after["rss_mib"] - before["rss_mib"] < 150, (before, after)    # measured: +98 MiB
