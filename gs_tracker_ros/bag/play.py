"""``gs-tracker bag play``: publish a bag's messages over DDS like ``ros2 bag play``.

The recorded CDR bytes are published as-is (see :mod:`gs_tracker_ros.ros.bag_player`) with the
recorded spacing of log times divided by ``rate``. Before publishing, the whole bag is checked
once (every message read, nothing decoded) so that a truncated or corrupt bag fails with a clear
error naming the file before anything goes out.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Iterable

from ..core.errors import InputError
from .io import BagError, bag_info, iter_messages


def check_bag(path: Path, topics: list[str]) -> tuple[int, int]:
    """Read every message of ``topics`` once; return (count, largest size in bytes). Raises
    BagError naming the bag if it is damaged."""
    n = biggest = 0
    for _, _, _, raw in iter_messages(path, topics):
        n += 1
        biggest = max(biggest, len(raw))
    return n, biggest


def select_topics(path: Path, available: dict[str, str], wanted: Iterable[str] | None) -> dict[str, str]:
    if not wanted:
        return dict(available)
    out = {}
    for t in wanted:
        name = t if t.startswith("/") else "/" + t
        if name not in available:
            raise BagError(f"bag {path} has no topic {name} (topics: {', '.join(sorted(available))})")
        out[name] = available[name]
    return out


def play_bag(path: str | Path, rate: float = 1.0, loop: bool = False, remap: list[str] | None = None,
             topics: list[str] | None = None, qos: str = "reliable", wait_subscribers_s: float = 10.0,
             wait_all: bool = False, domain_id: int | None = None, quiet: bool = False,
             stop: threading.Event | None = None, large_data_shm: bool = True) -> dict:
    """Publish the bag; return ``{"published", "loops", "wall_s", "per_topic"}``."""
    from ..ros.bag_player import BagPublishers, create_node, init_context, parse_remaps, play
    from ..ros.qos import qos_profile

    path = Path(path).expanduser()
    if not rate > 0:
        raise InputError(f"--rate must be > 0, got {rate}")
    info = bag_info(path)
    selected = select_topics(path, {t: ty for t, (ty, _) in info.topics.items()}, topics)
    if not selected:
        raise BagError(f"bag {path} has no messages to play")
    total, biggest = check_bag(path, list(selected))
    remaps = parse_remaps(remap or [])
    log = (lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    if large_data_shm:
        from ..ros.bag_player import configure_large_messages

        configure_large_messages(biggest)

    context = init_context(domain_id)
    node = None
    try:
        node = create_node("gs_tracker_bag_player", context)
        pubs = BagPublishers(node, selected, qos_profile(qos, depth=10), remaps)
        names = ", ".join(pubs.out_topic(t) for t in selected)
        if wait_subscribers_s > 0:
            log(f"waiting up to {wait_subscribers_s:.0f} s for subscribers on {names}")
            if not pubs.wait_for_subscribers(wait_subscribers_s, require_all=wait_all):
                log(f"warning: no subscriber after {wait_subscribers_s:.0f} s; playing anyway")
        log(f"playing {path} ({total} messages, {info.duration_s:.2f} s at rate {rate:g}{', looping' if loop else ''}) "
            f"on {names}")
        stats = play(pubs, lambda: iter_messages(path, list(selected)), rate=rate, loop=loop, stop=stop)
        log(f"published {stats.published} messages in {stats.wall_s:.2f} s")
        pubs.wait_for_all_acked(2.0)  # let reliable subscribers get the last messages
        return {"published": stats.published, "loops": stats.loops, "wall_s": stats.wall_s,
                "per_topic": {pubs.out_topic(t): n for t, n in stats.per_topic.items()}}
    finally:
        if node is not None:
            node.destroy_node()
        context.try_shutdown()
