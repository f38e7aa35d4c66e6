"""The one QoS vocabulary of the node, the bag player and the replay: profile names as rclpy
spells them (``qos_profile_sensor_data`` -> ``sensor_data``), plus ROS's own per-topic overrides.

* :data:`QOS_PROFILES`: ``sensor_data`` (best effort, keep last 5, volatile), ``reliable``
  (reliable, keep last ``depth``, volatile) and ``system_default``. ``gs-tracker bag play --qos``
  and ``bag replay-eval --image-qos`` take these names; the node's ``image_qos`` parameter also
  takes ``auto`` (:data:`IMAGE_QOS_CHOICES`, the default): the reliability of the image
  subscription follows its publishers (:func:`auto_choice`, as ``ros2 topic echo`` and rviz
  choose), re-checked as publishers come and go (:mod:`.image_subscription`).
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
AUTO = "auto"
IMAGE_QOS_CHOICES = (AUTO, *QOS_PROFILES)  # the node's image_qos
# the policies QoSOverridingOptions.with_default_policies() offers as qos_overrides.* parameters
QOS_OVERRIDE_POLICIES = ("history", "depth", "reliability")
# under image_qos auto the subscription's reliability is auto's choice, not an override
AUTO_OVERRIDE_POLICIES = ("history", "depth")


def auto_choice(publishers_reliable: list[bool], topic: str) -> tuple[str, str]:
    """``(profile name, reason)`` of ``image_qos: auto`` for the publishers of ``topic``, given
    whether each offers reliable delivery: ``reliable`` when there is at least one and all are
    reliable (a reliable reader gets every frame a reliable writer sends, large ones included);
    ``sensor_data`` (best effort) otherwise, the one reliability every publisher matches (no
    publisher yet: any can come)."""
    n = len(publishers_reliable)
    if n == 0:
        return "sensor_data", f"no publisher of '{topic}' yet: best effort matches any; re-checked as they come"
    best_effort = n - sum(bool(r) for r in publishers_reliable)
    if best_effort == 0:
        return "reliable", (f"the publisher of '{topic}' is reliable" if n == 1
                            else f"all {n} publishers of '{topic}' are reliable")
    return "sensor_data", (f"the publisher of '{topic}' is best effort" if n == 1
                           else f"{best_effort} of the {n} publishers of '{topic}' are best effort")


def describe(profile: Any) -> str:
    """``reliable, keep last 5`` for an rclpy ``QoSProfile``."""
    reliability = profile.reliability.name.lower().replace("_", " ")
    history = profile.history.name.lower().replace("_", " ")
    return f"{reliability}, {history} {profile.depth}" if history == "keep last" else f"{reliability}, {history}"


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


def overriding_options(policies: tuple[str, ...] = QOS_OVERRIDE_POLICIES) -> Any:
    """rclpy's ``QoSOverridingOptions``: the ``policies`` (default history, depth and reliability,
    as ``with_default_policies()``) of the entity become read-only ``qos_overrides.*`` parameters."""
    from rclpy.qos import QoSPolicyKind
    from rclpy.qos_overriding_options import QoSOverridingOptions

    return QoSOverridingOptions([getattr(QoSPolicyKind, p.upper()) for p in policies])
