"""The one QoS vocabulary of the node, the bag player and the replay: profile names as rclpy
spells them (``qos_profile_sensor_data`` -> ``sensor_data``), plus ROS's own per-topic overrides.

* :data:`QOS_PROFILES`: ``sensor_data`` (best effort, keep last 5, volatile), ``reliable``
  (reliable, keep last ``depth``, volatile) and ``system_default``. The node's ``image_qos``
  parameter, ``gs-tracker bag play --qos`` and ``bag replay-eval --image-qos`` take these names.
* Fine-tuning goes through ROS's QoS overrides (:func:`overriding_options`, rclpy's
  ``QoSOverridingOptions.with_default_policies()``, as in ros2/demos' quality_of_service_demo):
  the node declares read-only parameters ``qos_overrides.<topic>.<subscription|publisher>.<history|
  depth|reliability>`` for its image subscription and tracks publisher, set at start-up like any
  parameter, e.g. ``-p qos_overrides./camera/image_raw.subscription.depth:=1``.

ROS is imported only inside the functions (the names are usable without rclpy).
"""

from __future__ import annotations

from typing import Any

from ..core.errors import InputError

QOS_PROFILES = ("sensor_data", "reliable", "system_default")
# the policies QoSOverridingOptions.with_default_policies() offers as qos_overrides.* parameters
QOS_OVERRIDE_POLICIES = ("history", "depth", "reliability")


def qos_profile(name: str, depth: int = 5) -> Any:
    """A new rclpy ``QoSProfile`` for a profile ``name`` (a copy: QoS overrides edit it in place).

    ``depth`` applies to ``reliable`` (keep last ``depth``); ``sensor_data`` is rclpy's profile
    (keep last 5), ``system_default`` the RMW's. Raises :class:`InputError` naming the choices.
    """
    from rclpy.qos import (
        DurabilityPolicy,
        HistoryPolicy,
        QoSProfile,
        ReliabilityPolicy,
        qos_profile_sensor_data,
        qos_profile_system_default,
    )

    if name == "reliable":
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth), reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)
    base = {"sensor_data": qos_profile_sensor_data, "system_default": qos_profile_system_default}.get(name)
    if base is None:
        raise InputError(f"unknown QoS profile '{name}' (choose {', '.join(QOS_PROFILES)})")
    return QoSProfile(history=base.history, depth=base.depth, reliability=base.reliability,
                      durability=base.durability)


def overriding_options() -> Any:
    """rclpy's ``QoSOverridingOptions.with_default_policies()``: history, depth and reliability of
    the entity become read-only ``qos_overrides.*`` parameters."""
    from rclpy.qos_overriding_options import QoSOverridingOptions

    return QoSOverridingOptions.with_default_policies()
