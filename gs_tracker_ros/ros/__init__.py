"""The ROS 2 adapter (the only part of gs_tracker_ros that imports rclpy).

* :mod:`.node` — :class:`~.node.TrackerNode`, the lifecycle node of ``gs_tracker_node``.
* :mod:`.run_node` — the ``gs_tracker_node`` process: signals, start-up errors, exit codes.
* :mod:`.messages` — the ``tracks`` message built from a tracker state; stamp helpers.
* :mod:`.image_conversion` — sensor_msgs/Image <-> numpy without cv_bridge.
* :mod:`.parameters` — the node's parameters, generated from the tracker config.
* :mod:`.diagnostics` — counters, latency and the /diagnostics status.
* :mod:`.process` — the node as a child process with a log file (replay, demo, tests).
* :mod:`.qos`, :mod:`.service_calls` — the one QoS vocabulary; service calls that survive discovery races.
* :mod:`.profiling` — the node's per-frame message work, timed for ``bench --profile``.
* :mod:`.bag_player`, :mod:`.recorder` — rosbag2 playback into, and track recording from, a
  running node (used by ``gs_tracker_ros.bag``).

Submodules are imported on demand: importing this package does not import rclpy. See docs/ros.md.
"""
