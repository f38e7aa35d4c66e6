"""ROS messages built from tracker output, and the stamp arithmetic the node needs.

Plain functions, no node: the node publishes what they build, ``bench --profile``
(:mod:`.profiling`) times them, and the tests call them directly.
"""

from __future__ import annotations

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from gs_tracker_ros.msg import PointTrack, PointTrackArray

from ..core.types import TrackState


def tracks_msg(state: TrackState, header: Header) -> PointTrackArray:
    """The ``tracks`` message of ``state``: one PointTrack per live point, in the state's order,
    stamped with the image's ``header`` (stamp and frame_id)."""
    out = PointTrackArray()
    out.header.stamp = header.stamp
    out.header.frame_id = header.frame_id
    # one tolist() per column: building from Python scalars is several times faster than
    # indexing numpy arrays per point
    ids = state.ids.tolist()
    xs = state.xy[:, 0].tolist()
    ys = state.xy[:, 1].tolist()
    variance = state.variance.tolist()
    p_lost = state.p_lost.tolist()
    visible = state.visible.tolist()
    status = state.status.tolist()
    tracks = []
    for k in range(len(ids)):
        t = PointTrack()
        t.id, t.x, t.y, t.variance, t.visible, t.status = ids[k], xs[k], ys[k], variance[k], visible[k], status[k]
        t.p_lost = p_lost[k]
        tracks.append(t)
    out.tracks = tracks
    return out


def stamp_ns(stamp: Time) -> int:
    """A builtin_interfaces/Time as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_text(ns: int) -> str:
    """Nanoseconds as ``sec.nanosec`` (the way ``ros2 topic echo`` shows a stamp)."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def stamp_text(stamp: Time) -> str:
    """A builtin_interfaces/Time as ``sec.nanosec``."""
    return f"{stamp.sec}.{stamp.nanosec:09d}"
