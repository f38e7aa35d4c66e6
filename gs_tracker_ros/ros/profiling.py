"""The ROS node's per-frame message work, timed for ``gs-tracker bench --profile``."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from ..viz.overlay import TrackHistory, draw_tracks
from .image_conversion import rgb_to_image
from .messages import tracks_msg


def profile_ros_messages(state: Any, frame: np.ndarray, repeats: int = 20) -> dict[str, float]:
    """ms per frame of the ROS node's tracks message build, its serialisation (what DDS sends)
    and the overlay (draw + Image message) for ``state``."""
    header = Header()
    history = TrackHistory(max_len=15)
    for _ in range(15):
        history.update(state)
    rows: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        t0 = time.perf_counter()
        msg = tracks_msg(state, header)
        t1 = time.perf_counter()
        serialize_message(msg)
        t2 = time.perf_counter()
        img = draw_tracks(frame, history, fps=30.0, extra_header="probfuse")
        t3 = time.perf_counter()
        serialize_message(rgb_to_image(img, header))
        t4 = time.perf_counter()
        rows["ros: tracks message build"].append((t1 - t0) * 1e3)
        rows["ros: tracks message serialisation"].append((t2 - t1) * 1e3)
        rows["ros: overlay draw"].append((t3 - t2) * 1e3)
        rows["ros: overlay Image message + serialisation"].append((t4 - t3) * 1e3)
    return {k: float(np.median(v)) for k, v in rows.items()}
