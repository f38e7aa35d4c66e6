"""Visualisation: track overlays on RGB frames, video files and contact sheets."""

from .overlay import PALETTE, OverlayStyle, TrackHistory, draw_header, draw_tracks, track_colour
from .video import OverlayOutput, VideoWriter, make_contact_sheet, save_contact_sheet

__all__ = [
    "PALETTE",
    "OverlayOutput",
    "OverlayStyle",
    "TrackHistory",
    "VideoWriter",
    "draw_header",
    "draw_tracks",
    "make_contact_sheet",
    "save_contact_sheet",
    "track_colour",
]
