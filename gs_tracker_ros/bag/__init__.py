"""rosbag2 tools: make bags from videos / frame folders / labelled data, play them over DDS, and
evaluate the live ROS node on them (``gs-tracker bag ...``).

Bags are read and written with ``rosbags`` (pure Python; sqlite3 and mcap storage). Only
:mod:`.play` and :mod:`.replay_eval` talk DDS, through rclpy helpers in
:mod:`gs_tracker_ros.ros.bag_player` and :mod:`gs_tracker_ros.ros.recorder`, imported lazily; the
rest needs no ROS installation beyond the ``rosbags`` package.
"""

from .groundtruth import GT_QUERIES_TOPIC, GT_TRACKS_TOPIC, IMAGE_TOPIC
from .io import BagError

__all__ = ["BagError", "GT_QUERIES_TOPIC", "GT_TRACKS_TOPIC", "IMAGE_TOPIC"]
