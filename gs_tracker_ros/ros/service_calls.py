"""Calling the tracker node's services from another process without losing replies.

Why this exists: a ROS 2 service is two DDS topics (request and reply) whose four endpoints are
discovered independently. ``wait_for_service()`` only says that *this client* has matched the
server's endpoints; the server may not have matched the client's reply reader yet. With Fast DDS
(the RMW here) the server then waits 100 ms (the reply writer's ``max_blocking_time``) for that
match and drops the reply otherwise (rclpy prints ``failed to send response (timeout): client will
not receive response`` in the server's log; ros2/rmw_fastrtps#842). A lost discovery message is
only repaired at the next discovery heartbeat (seconds), so on a loaded machine the very first
call to a freshly started node can go unanswered for good, although ``wait_for_service()``
succeeded.

The cure is on the client side, as the DDS-RPC "enhanced service mapping" would do it: keep asking
until an answer proves that the way back works.

* :func:`call_service` sends a request and waits; with ``resend_s`` it sends the same request again
  every ``resend_s`` seconds until a reply arrives. Only for idempotent requests (``~/reset``,
  ``get_parameters``, an empty ``~/add_queries``).
* :class:`ServiceLink` confirms the way back once, with an idempotent probe request resent until it
  is answered, before the first request that must be sent exactly once (adding points).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

RESEND_S = 1.0  # >> the 100 ms the server waits for the match; << any caller's timeout


class ServiceError(RuntimeError):
    """A service of the tracker node failed or did not answer in time."""


def call_service(client: Any, request: Any, timeout_s: float, what: str = "",
                 resend_s: float | None = None) -> Any:
    """``client``'s reply to ``request`` within ``timeout_s`` (waiting for the service included).

    ``resend_s``: send the request again every this many seconds while no reply came (idempotent
    requests only, see the module docstring); None sends it once. Raises :class:`ServiceError`.
    """
    label = f" ({what})" if what else ""
    deadline = time.monotonic() + timeout_s
    if not client.wait_for_service(timeout_sec=timeout_s):
        raise ServiceError(f"service {client.srv_name} not available after {timeout_s:.0f} s{label}")
    done = threading.Event()
    futures = []
    try:
        while True:
            future = client.call_async(request)
            future.add_done_callback(lambda _f: done.set())
            futures.append(future)
            left = deadline - time.monotonic()
            wait_s = left if resend_s is None else min(left, resend_s)
            if done.wait(max(0.0, wait_s)):
                break
            if time.monotonic() >= deadline:
                sent = f"; sent {len(futures)} time(s)" if len(futures) > 1 else ""
                raise ServiceError(f"service {client.srv_name} did not answer within {timeout_s:.0f} s"
                                   f"{label}{sent}")
        answered = next(f for f in futures if f.done())
        exc = answered.exception()
        if exc is not None:
            raise ServiceError(f"service {client.srv_name} failed{label}: {exc}")
        return answered.result()
    finally:
        for f in futures:
            if not f.done() and hasattr(client, "remove_pending_request"):
                client.remove_pending_request(f)


class ServiceLink:
    """A service client whose reply path is confirmed before its first non-idempotent request.

    Args:
        client: an rclpy client.
        probe: makes a request that changes nothing on the server (e.g. an empty
            ``AddQueries``); sent, and resent, until one is answered.
    """

    def __init__(self, client: Any, probe: Callable[[], Any]) -> None:
        self.client = client
        self._probe = probe
        self.confirmed = False

    @property
    def srv_name(self) -> str:
        return self.client.srv_name

    def call(self, request: Any, timeout_s: float, what: str = "", idempotent: bool = False) -> Any:
        """The reply to ``request``; ``idempotent`` requests are resent until answered, others are
        sent once, after the link was confirmed. Raises :class:`ServiceError`."""
        deadline = time.monotonic() + timeout_s
        if idempotent:
            reply = call_service(self.client, request, timeout_s, what, resend_s=RESEND_S)
        else:
            if not self.confirmed:
                call_service(self.client, self._probe(), timeout_s, f"probe before {what or 'the call'}",
                             resend_s=RESEND_S)
                self.confirmed = True
            reply = call_service(self.client, request, max(0.1, deadline - time.monotonic()), what)
        self.confirmed = True
        return reply
