"""Classical baseline trackers (no learned weights), measured side by side with ours."""

from .dis_chain import DISChainTracker
from .klt import KLTTracker

__all__ = ["DISChainTracker", "KLTTracker"]
