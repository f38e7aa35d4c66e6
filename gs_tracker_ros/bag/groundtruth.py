"""Ground truth inside a bag: how it is written and read back for scoring.

A bag made by ``gs-tracker bag make`` from labelled data (a BADJA sequence or a generated scene)
carries, besides the images on the image topic (default ``/camera/image_raw``):

``/ground_truth/tracks`` (gs_tracker_ros/msg/PointTrackArray)
    one message per *labelled* frame, ``header`` = that image's header (same stamp), one
    ``PointTrack`` per ground-truth point: ``id`` = point id (the BADJA joint index; the point's
    index for generated scenes), ``x, y`` in px, ``visible``, ``status`` (visible / occluded), ``variance`` 0. Frames without a
    message are unlabelled and never scored.
``/ground_truth/queries`` (gs_tracker_ros/msg/PointTrackArray)
    one message per *query frame*, ``header`` = that image's header, one ``PointTrack`` per point
    queried on that frame (same ``id``, query ``x, y``, ``visible`` true, ``variance`` 0): the
    points a tracker is asked to follow, exactly the queries ``gs-tracker eval`` places.
``metadata.yaml`` ``custom_data["gs_tracker_ros.ground_truth"]``
    JSON with what messages cannot carry: ``sequence`` name, ``kind`` (badja / synthetic),
    ``image_hw``, ``fps``, topic names, and ``mask_area`` (object-mask area per frame in px^2, for
    ``delta_seg``; null where unknown). Optional: without it (e.g. a bare .mcap file) the
    sequence is named after the bag and ``delta_seg`` is NaN.

Frame index t of an image = its rank by header stamp on the image topic, so ground truth,
queries and tracker output are all matched to frames by header stamp.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.types import track_status
from ..evaluation.badja import TrackingSequence
from .io import (
    BagError,
    GT_METADATA_KEY,
    bag_info,
    deserialize,
    image_cdr_to_rgb,
    iter_messages,
    make_header,
    read_custom_data,
    serialize,
    stamp_to_ns,
)
from .typestore import IMAGE_TYPE, TRACK_TYPE, TRACKS_TYPE, get_typestore
from ..core.frames import open_frames

IMAGE_TOPIC = "/camera/image_raw"
GT_TRACKS_TOPIC = "/ground_truth/tracks"
GT_QUERIES_TOPIC = "/ground_truth/queries"
GT_FORMAT_VERSION = 1


def tracks_cdr(stamp_ns: int, frame_id: str, ids: np.ndarray, xy: np.ndarray, visible: np.ndarray,
               variance: np.ndarray | None = None, p_lost: np.ndarray | None = None) -> bytes:
    """CDR bytes of a PointTrackArray (rosbags typestore, no rclpy); ``variance`` and ``p_lost``
    default to 0 (ground truth: exact and not lost)."""
    store = get_typestore()
    Track = store.types[TRACK_TYPE]
    Array = store.types[TRACKS_TYPE]
    var = np.zeros(len(ids), np.float32) if variance is None else np.asarray(variance, np.float32)
    lost = np.zeros(len(ids), np.float32) if p_lost is None else np.asarray(p_lost, np.float32)
    status = track_status(np.asarray(xy).reshape(-1, 2), visible, None)
    tracks = [Track(id=int(i), x=float(np.float32(p[0])), y=float(np.float32(p[1])), variance=float(v),
                    p_lost=float(q), visible=bool(b), status=int(s))
              for i, p, v, q, b, s in zip(ids, xy, var, lost, visible, status)]
    return serialize(Array(header=make_header(stamp_ns, frame_id), tracks=tracks), TRACKS_TYPE)


@dataclass(frozen=True)
class ParsedTracks:
    """One PointTrackArray: ``stamp_ns``, ``frame_id``, ``ids (N,) int64``, ``xy (N, 2) float32`` px,
    ``visible (N,) bool``, ``variance (N,) float32`` px^2, ``p_lost (N,) float32``."""

    stamp_ns: int
    frame_id: str
    ids: np.ndarray
    xy: np.ndarray
    visible: np.ndarray
    variance: np.ndarray
    p_lost: np.ndarray


def parse_tracks(raw: bytes) -> ParsedTracks:
    """The :class:`ParsedTracks` of PointTrackArray CDR bytes (current layout; bags recorded
    before ``p_lost`` existed are upgraded as they are read, :func:`~.io.iter_messages`)."""
    msg = deserialize(raw, TRACKS_TYPE)
    n = len(msg.tracks)
    return ParsedTracks(stamp_to_ns(msg.header.stamp), str(msg.header.frame_id),
                        np.fromiter((t.id for t in msg.tracks), np.int64, n),
                        np.array([(t.x, t.y) for t in msg.tracks], np.float32).reshape(n, 2),
                        np.fromiter((bool(t.visible) for t in msg.tracks), bool, n),
                        np.fromiter((t.variance for t in msg.tracks), np.float32, n),
                        np.fromiter((t.p_lost for t in msg.tracks), np.float32, n))


@dataclass
class BagSequence:
    """A labelled sequence read back from a bag.

    Attributes:
        seq: the :class:`TrackingSequence` (points in ground-truth message order; frames decoded
            from the bag when loaded with ``with_frames=True``, else None).
        bag: the bag's path.
        stamps_ns: ``(T,) int64`` header stamp of every image, in frame order.
        point_ids: ``(N,) int64`` ground-truth id of each point (``seq.joint_ids`` too).
        fps: frame rate from the stamps (median spacing), or the metadata's.
        image_topic: topic the images are on.
        meta: the ground-truth metadata dict ({} when the bag has none).
    """

    seq: TrackingSequence
    bag: Path
    stamps_ns: np.ndarray
    point_ids: np.ndarray
    fps: float
    image_topic: str
    meta: dict[str, Any] = field(default_factory=dict)

    def frame_of_stamp(self) -> dict[int, int]:
        return {int(s): t for t, s in enumerate(self.stamps_ns)}

    def queries_by_frame(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``{frame: (point rows (M,), xy (M, 2) float32)}`` in point order within a frame."""
        out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for f in np.unique(self.seq.query_frame):
            rows = np.flatnonzero(self.seq.query_frame == f)
            out[int(f)] = (rows, self.seq.query_xy[rows].astype(np.float32))
        return out


def gt_metadata_json(kind: str, name: str, image_hw: tuple[int, int], fps: float, image_topic: str,
                     mask_area: np.ndarray | None) -> str:
    areas = None
    if mask_area is not None:
        areas = [None if not np.isfinite(a) else float(a) for a in np.asarray(mask_area, np.float64)]
    return json.dumps({
        "version": GT_FORMAT_VERSION, "kind": kind, "sequence": name, "image_hw": [int(v) for v in image_hw],
        "fps": float(fps), "image_topic": image_topic, "gt_tracks_topic": GT_TRACKS_TOPIC,
        "gt_queries_topic": GT_QUERIES_TOPIC, "mask_area": areas,
    })


def read_gt_metadata(path: str | Path) -> dict[str, Any]:
    raw = read_custom_data(path).get(GT_METADATA_KEY)
    if not raw:
        return {}
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as err:
        raise BagError(f"bag {path}: ground-truth metadata is not valid JSON ({err})") from None
    return meta if isinstance(meta, dict) else {}


def _pick_image_topic(path: Path, topics: dict[str, str], wanted: str | None) -> str:
    images = sorted(t for t, ty in topics.items() if ty == IMAGE_TYPE)
    if wanted:
        if wanted not in topics:
            raise BagError(f"bag {path} has no topic {wanted} (topics: {', '.join(sorted(topics)) or 'none'})")
        return wanted
    if IMAGE_TOPIC in images:
        return IMAGE_TOPIC
    if len(images) == 1:
        return images[0]
    if not images:
        raise BagError(f"bag {path} has no sensor_msgs/msg/Image topic")
    raise BagError(f"bag {path} has several image topics ({', '.join(images)}): choose one with --topic")


def load_bag_sequence(path: str | Path, image_topic: str | None = None, with_frames: bool = False,
                      require_gt: bool = True) -> BagSequence:
    """Read images' stamps (and frames), ground truth and queries back from a bag.

    Raises:
        BagError: unreadable bag, no image topic, or (``require_gt``) no ground truth / queries,
            or ground truth on a stamp that matches no image.
    """

    path = Path(path).expanduser()
    meta = read_gt_metadata(path) if path.is_dir() else {}
    info = bag_info(path)
    topic_types = {t: ty for t, (ty, _) in info.topics.items()}
    image_topic = _pick_image_topic(path, topic_types, image_topic or meta.get("image_topic"))
    gt_topic = meta.get("gt_tracks_topic", GT_TRACKS_TOPIC)
    q_topic = meta.get("gt_queries_topic", GT_QUERIES_TOPIC)
    if require_gt:
        missing = [t for t in (gt_topic, q_topic) if t not in topic_types]
        if missing:
            raise BagError(f"bag {path} has no ground truth (missing topic(s) {', '.join(missing)}); make it "
                           "with `gs-tracker bag make` from a BADJA sequence or `synthetic`")

    stamps: list[int] = []
    frames: list[np.ndarray] = []
    gt_msgs: list[ParsedTracks] = []
    q_msgs: list[ParsedTracks] = []
    for topic, msgtype, _, raw in iter_messages(path, [image_topic, gt_topic, q_topic]):
        try:
            if topic == image_topic:
                if with_frames:
                    stamp, rgb = image_cdr_to_rgb(raw)
                    frames.append(rgb)
                else:
                    stamp = stamp_to_ns(deserialize(raw, IMAGE_TYPE).header.stamp)
                stamps.append(stamp)
            elif topic == gt_topic:
                gt_msgs.append(parse_tracks(raw))
            elif topic == q_topic:
                q_msgs.append(parse_tracks(raw))
        except BagError:
            raise
        except Exception as err:  # a message that does not deserialise
            raise BagError(f"bag {path}: cannot decode a {msgtype} message on {topic}: {err}") from None
    if not stamps:
        raise BagError(f"bag {path} has no images on {image_topic}")
    order = np.argsort(np.asarray(stamps, np.int64), kind="stable")
    stamps_ns = np.asarray(stamps, np.int64)[order]
    if len(np.unique(stamps_ns)) != len(stamps_ns):
        raise BagError(f"bag {path}: several images on {image_topic} share a header stamp; frames are "
                       "matched by stamp, so stamps must be unique")
    if with_frames:
        frames = [frames[i] for i in order]
    frame_of = {int(s): t for t, s in enumerate(stamps_ns)}
    t_all = len(stamps_ns)
    diffs = np.diff(stamps_ns)
    fps = float(meta.get("fps") or (1e9 / np.median(diffs) if len(diffs) else 30.0))

    def frame_index(stamp: int, what: str) -> int:
        if stamp not in frame_of:
            raise BagError(f"bag {path}: a {what} message has stamp {stamp} ns that matches no image on {image_topic}")
        return frame_of[stamp]

    # Points: those with a query, in order of first appearance in the ground truth.
    query_of: dict[int, tuple[int, np.ndarray]] = {}
    for stamp, ids, xy in ((m.stamp_ns, m.ids, m.xy) for m in q_msgs):
        f = frame_index(stamp, "query")
        for i, p in zip(ids, xy):
            if int(i) in query_of:
                raise BagError(f"bag {path}: point id {int(i)} is queried twice")
            query_of[int(i)] = (f, p)
    gt_order: list[int] = []
    seen: set[int] = set()
    for ids in (m.ids for m in sorted(gt_msgs, key=lambda m: m.stamp_ns)):
        for i in ids:
            if int(i) in query_of and int(i) not in seen:
                seen.add(int(i))
                gt_order.append(int(i))
    gt_order += [i for i in query_of if i not in seen]  # queried but never labelled
    point_ids = np.asarray(gt_order, np.int64)
    row_of = {int(i): r for r, i in enumerate(point_ids)}
    n = len(point_ids)
    tracks = np.full((n, t_all, 2), np.nan, np.float32)
    visible = np.zeros((n, t_all), bool)
    annotated = np.zeros(t_all, bool)
    for stamp, ids, xy, vis in ((m.stamp_ns, m.ids, m.xy, m.visible) for m in gt_msgs):
        t = frame_index(stamp, "ground-truth")
        annotated[t] = True
        for i, p, v in zip(ids, xy, vis):
            r = row_of.get(int(i))
            if r is not None:
                tracks[r, t] = p
                visible[r, t] = v
    query_frame = np.array([query_of[int(i)][0] for i in point_ids], np.int64).reshape(n)
    query_xy = np.array([query_of[int(i)][1] for i in point_ids], np.float32).reshape(n, 2)
    if require_gt and n == 0:
        raise BagError(f"bag {path} has no queries on {q_topic}")

    hw = meta.get("image_hw")
    if hw is None:
        if with_frames:
            hw = frames[0].shape[:2]
        else:
            first = next(iter_messages(path, [image_topic]))
            img = deserialize(first[3], IMAGE_TYPE)
            hw = (int(img.height), int(img.width))
    areas = meta.get("mask_area")
    mask_area = np.full(t_all, np.nan)
    if areas is not None:
        if len(areas) != t_all:
            raise BagError(f"bag {path}: metadata has {len(areas)} mask areas for {t_all} images")
        mask_area = np.array([np.nan if a is None else float(a) for a in areas], np.float64)

    seq = TrackingSequence(
        name=str(meta.get("sequence") or path.name), frames=open_frames(frames) if with_frames else None,
        tracks_xy=tracks, visible=visible, annotated=annotated, query_frame=query_frame, query_xy=query_xy,
        mask_area=mask_area, image_hw=(int(hw[0]), int(hw[1])), joint_ids=point_ids.copy(),
    )
    return BagSequence(seq=seq, bag=path, stamps_ns=stamps_ns, point_ids=point_ids, fps=fps,
                       image_topic=image_topic, meta=meta)


def find_bags(paths: list[str | Path]) -> list[Path]:
    """Expand the arguments to bags: a bag (directory with metadata.yaml, or a .db3/.mcap file)
    stays as is; a folder of bags becomes its bags, sorted by name."""
    out: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if not p.exists():
            raise BagError(f"bag not found: {p}")
        if p.is_file() or (p / "metadata.yaml").is_file():
            out.append(p)
            continue
        inner = sorted(c for c in p.iterdir() if c.is_dir() and (c / "metadata.yaml").is_file())
        if not inner:
            raise InputError(f"{p} is neither a rosbag2 bag (no metadata.yaml) nor a folder of bags")
        out.extend(inner)
    return out
