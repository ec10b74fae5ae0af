"""Media for Chromium's fake capture devices (the Live tab's browser tests)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2


def write_y4m(path: str | os.PathLike, frames, fps: int) -> Path:
    """RGB frames -> an uncompressed YUV4MPEG2 (4:2:0) file, the format Chromium's fake camera plays
    (--use-file-for-fake-video-capture). Width and height must be even."""
    path = Path(path)
    with open(path, "wb") as out:
        for i, rgb in enumerate(frames):
            if i == 0:
                out.write(f"YUV4MPEG2 W{rgb.shape[1]} H{rgb.shape[0]} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
            out.write(b"FRAME\n" + cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path
