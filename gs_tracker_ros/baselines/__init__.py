"""Classical baseline trackers (no learned weights), measured side by side with ours."""

from .klt import KLTConfig, KLTTracker

__all__ = ["KLTConfig", "KLTTracker"]
