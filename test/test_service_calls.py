"""gs_tracker_ros.ros.service_calls: a request whose reply never comes (what Fast DDS does to the
first reply when the server has not yet discovered the client's reply reader, see the module
docstring) is resent when idempotent, and a non-idempotent request goes out exactly once, after a
probe proved the reply path. The server here simply never answers its first request."""

from __future__ import annotations

import threading

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup)")


@pytest.fixture
def lossy_server(ros_context):
    """A Trigger service whose first two requests and an AddQueries service whose first request
    stay unanswered."""
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.executors import MultiThreadedExecutor
    from std_srvs.srv import Trigger

    from gs_tracker_ros.srv import AddQueries

    release = threading.Event()
    seen = {"trigger": 0, "add": 0, "probe": 0, "points": 0}
    lock = threading.Lock()

    def count(*kinds) -> int:
        """Count a request; how many its service has had (this one included)."""
        with lock:
            for kind in kinds:
                seen[kind] += 1
            return seen[kinds[0]]

    def on_trigger(req, resp):
        if count("trigger") <= 2:
            release.wait(30)
        resp.success, resp.message = True, "ok"
        return resp

    def on_add(req, resp):
        if count("add", "points" if req.x else "probe") == 1:
            release.wait(30)
        resp.success, resp.ids = True, list(range(len(req.x)))
        return resp

    server = rclpy.create_node("lossy_server", context=ros_context)
    group = ReentrantCallbackGroup()
    server.create_service(Trigger, "/lossy/reset", on_trigger, callback_group=group)
    server.create_service(AddQueries, "/lossy/add_queries", on_add, callback_group=group)
    client_node = rclpy.create_node("lossy_client", context=ros_context)
    executor = MultiThreadedExecutor(num_threads=4, context=ros_context)
    executor.add_node(server)
    executor.add_node(client_node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield client_node, seen
    finally:
        release.set()
        executor.shutdown(timeout_sec=5)
        server.destroy_node()
        client_node.destroy_node()
        thread.join(5)


def test_an_idempotent_request_is_resent_until_answered(lossy_server):
    from std_srvs.srv import Trigger

    from gs_tracker_ros.ros.service_calls import ServiceError, call_service

    node, seen = lossy_server
    client = node.create_client(Trigger, "/lossy/reset")
    with pytest.raises(ServiceError, match="did not answer within 2 s"):
        call_service(client, Trigger.Request(), timeout_s=2.0, what="reset")  # sent once: lost
    assert seen["trigger"] == 1
    reply = call_service(client, Trigger.Request(), timeout_s=15.0, what="reset", resend_s=0.5)
    assert reply.success and reply.message == "ok"
    assert seen["trigger"] == 3  # the second request was lost too, the resent third one answered


def test_a_link_probes_first_and_sends_points_exactly_once(lossy_server):
    from gs_tracker_ros.ros.service_calls import ServiceLink
    from gs_tracker_ros.srv import AddQueries

    node, seen = lossy_server
    link = ServiceLink(node.create_client(AddQueries, "/lossy/add_queries"), AddQueries.Request)
    req = AddQueries.Request()
    req.x, req.y = [1.0, 2.0], [3.0, 4.0]
    reply = link.call(req, timeout_s=15.0, what="2 points")
    assert reply.success and list(reply.ids) == [0, 1]
    assert seen["probe"] >= 2  # the first probe was lost and resent
    assert seen["points"] == 1  # the points themselves went out once
    assert link.confirmed
    assert link.call(req, timeout_s=15.0).success and seen["points"] == 2  # no probe any more
