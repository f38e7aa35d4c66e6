"""Turn a generated scene (exact ground truth) into a :class:`TrackingSequence` for scoring."""

from __future__ import annotations

import numpy as np

from ..core.frames import open_frames
from ..synthetic.scene import SyntheticScene
from .badja import TrackingSequence


def scene_sequence(scene: SyntheticScene, num_points: int = 256, query_frame: int = 0, seed: int = 0,
                   name: str = "synthetic") -> TrackingSequence:
    """Random visible queries on ``query_frame`` with their exact tracks; every frame is labelled.

    There are no object masks, so ``delta_seg`` is NaN for such a sequence; the TAP-Vid metrics
    (delta_avg, OA, AJ) and delta_3px are exact.
    """
    query_xy = scene.sample_queries(num_points, frame=query_frame, seed=seed)
    qf = np.full(len(query_xy), query_frame, np.int64)
    tracks, visible = scene.track(query_xy, qf)
    frames = np.stack(list(scene.frames()))
    return TrackingSequence(
        name=name, frames=open_frames(frames), tracks_xy=tracks.astype(np.float32), visible=visible,
        annotated=np.ones(scene.num_frames, bool), query_frame=qf, query_xy=query_xy.astype(np.float32),
        mask_area=np.full(scene.num_frames, np.nan), image_hw=(scene.height, scene.width),
        joint_ids=np.arange(len(query_xy), dtype=np.int64),
    )
