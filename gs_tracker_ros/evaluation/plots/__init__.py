"""Figures drawn from what ``gs-tracker eval`` and ``bench`` write (their results or JSON files).

* :mod:`.calibration` - error against the published sigma (``eval --plot``).
* :mod:`.jitter`      - scores over jittered query draws (``eval --jitter-plot``).
* :mod:`.cost`        - accuracy against cost from eval and bench JSON files (``python -m``).
* :mod:`.tradeoff`    - davis_masks mask-stay against badja_dev accuracy, paired (``python -m``).

They sit above the metrics they plot, so they read them through :mod:`gs_tracker_ros.evaluation`
instead of copying them; drawing tracks on frames stays in :mod:`gs_tracker_ros.viz`.
"""
