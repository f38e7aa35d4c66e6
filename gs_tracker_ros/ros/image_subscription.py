"""The node's image subscription: its QoS from ``image_qos``, matched to the publishers under
``auto``, and its QoS events reported.

* ``auto`` (the default): reliable when every publisher of the topic is reliable, best effort
  otherwise (:func:`.qos.auto_choice`). The graph is looked at every :data:`RECHECK_S` seconds;
  when the choice changes (a publisher came or went) the subscription is created again with the new
  reliability, and each choice is one log line. A reliable camera then delivers every frame, large
  ones too (a best-effort reader loses most 640x480 frames between processes with Fast DDS), and a
  best-effort one still matches.
* ``reliable`` / ``sensor_data`` / ``system_default``: fixed; a publisher whose QoS cannot match
  (a best-effort camera under ``reliable``) is logged and counted (``incompatible_qos_events``,
  a WARN status on /diagnostics).
* Images DDS loses before the node sees them (message-lost event) are counted as ``frames_lost``;
  /diagnostics turns WARN above 5 % of a period with the likely cause and the fix.

ROS's ``qos_overrides.<topic>.subscription.*`` parameters apply on top (history, depth; and
reliability unless ``auto`` chooses it).
"""

from __future__ import annotations

from typing import Any, Callable

from .diagnostics import NodeStats
from .qos import AUTO, AUTO_OVERRIDE_POLICIES, QOS_OVERRIDE_POLICIES, auto_choice, describe, overriding_options, \
    qos_profile

RECHECK_S = 0.25  # how often auto looks at the publishers of the topic (s)


def ros_type_name(msg_type: type) -> str:
    """``sensor_msgs/msg/Image`` for the rclpy message class ``sensor_msgs.msg.Image``."""
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


class ImageSubscription:
    """The image subscription of ``node`` on ``topic`` (a name as given to create_subscription;
    ``resolved`` is its fully qualified form, looked up on the graph).

    Args:
        node: the rclpy node.
        msg_type: sensor_msgs Image or CompressedImage.
        topic / resolved: the topic as subscribed and fully qualified.
        callback: called with each message.
        image_qos: one of :data:`.qos.IMAGE_QOS_CHOICES`.
        stats: where lost images and incompatible publishers are counted.
        warn: ``warn(key, text)``, a throttled warning.
    """

    def __init__(self, node: Any, msg_type: type, topic: str, resolved: str, callback: Callable[[Any], None],
                 image_qos: str, stats: NodeStats, warn: Callable[[Any, str], None]) -> None:
        self._node, self._type, self._topic, self.resolved = node, msg_type, topic, resolved
        self._callback, self.image_qos, self._stats, self._warn = callback, image_qos, stats, warn
        self._type_name = ros_type_name(msg_type)
        self.sub = None
        self.choice = ""  # the profile in use (auto: its current choice)
        self._timer = None
        if image_qos == AUTO:
            choice, reason = self._auto_choice()
            self._subscribe(choice)
            self._log(f"{describe(self.sub.qos_profile)} ({reason})")
            self._timer = node.create_timer(RECHECK_S, self.recheck)
        else:
            self._subscribe(image_qos)
            self._log(describe(self.sub.qos_profile))

    @property
    def topic_name(self) -> str:
        return self.sub.topic_name

    @property
    def qos_profile(self) -> Any:
        """The QoS of the subscription in use (overrides applied)."""
        return self.sub.qos_profile

    def describe(self) -> str:
        """``auto: reliable, keep last 5`` (image_qos, then the QoS in use)."""
        return f"{self.image_qos}: {describe(self.sub.qos_profile)}" if self.image_qos == AUTO \
            else describe(self.sub.qos_profile)

    # ------------------------------------------------------------------------------------ auto
    def publishers_reliable(self) -> list[bool]:
        """Whether each publisher of the topic (of the subscription's type) offers reliable delivery."""
        from rclpy.qos import ReliabilityPolicy

        return [info.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                for info in self._node.get_publishers_info_by_topic(self.resolved)
                if info.topic_type == self._type_name]

    def _auto_choice(self) -> tuple[str, str]:
        return auto_choice(self.publishers_reliable(), self.resolved)

    def recheck(self) -> None:
        """Under ``auto``: subscribe again when the publishers call for the other reliability."""
        if self.image_qos != AUTO or self.sub is None:
            return
        choice, reason = self._auto_choice()
        if choice == self.choice:
            return
        self._node.destroy_subscription(self.sub)
        self._subscribe(choice)
        self._log(f"subscribing again, {describe(self.sub.qos_profile)}: {reason}")

    # ------------------------------------------------------------------------------------ events
    def _on_lost(self, info: Any) -> None:
        if info.total_count_change > 0:
            self._stats.lost(info.total_count_change)

    def _on_incompatible(self, info: Any) -> None:
        if self.image_qos == AUTO:  # a publisher of the other reliability came: auto follows it
            return
        # rmw's enum: RMW_QOS_POLICY_RELIABILITY -> reliability
        policy = str(getattr(info.last_policy_kind, "name", info.last_policy_kind)).lower()
        policy = policy.removeprefix("rmw_qos_policy_").removeprefix("qospolicykind.")
        hint = (f"image_qos '{self.image_qos}' needs a reliable publisher; use image_qos auto (follows the "
                f"publishers) or sensor_data" if policy == "reliability"
                else f"check the publisher's {policy} policy (`ros2 topic info -v {self.resolved}`)")
        text = (f"a publisher of '{self.resolved}' offers incompatible QoS ({policy}): no images from it "
                f"reach the node; {hint}")
        self._stats.incompatible_qos(text)
        self._warn(("incompatible_qos", policy), text)

    # ------------------------------------------------------------------------------------ plumbing
    def _subscribe(self, profile: str) -> None:
        from rclpy.event_handler import SubscriptionEventCallbacks

        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible, message_lost=self._on_lost)
        policies = AUTO_OVERRIDE_POLICIES if self.image_qos == AUTO else QOS_OVERRIDE_POLICIES
        self.sub = self._node.create_subscription(self._type, self._topic, self._callback, qos_profile(profile),
                                                  qos_overriding_options=overriding_options(policies),
                                                  event_callbacks=events)
        self.choice = profile

    def _log(self, text: str) -> None:
        self._node.get_logger().info(f"image QoS (image_qos {self.image_qos}) on '{self.resolved}': {text}")

    def destroy(self) -> None:
        """Unsubscribe and stop re-checking. Idempotent."""
        if self._timer is not None:
            self._node.destroy_timer(self._timer)
            self._timer = None
        if self.sub is not None:
            self._node.destroy_subscription(self.sub)
            self.sub = None
