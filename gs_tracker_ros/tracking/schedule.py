"""When the tracker's heavy stages run: every frame, every k-th frame, or as a time budget allows.

The stages a step can do without on some frames are the long chains (intervals of
``scheduled_from`` frames and more; the short ones carry every point from frame to frame) and the
observer (re-localisation and keypoint observations, learned descriptors included). They run on
frames ``t`` with ``t % stride == 0`` (the observer on ``t % (relocalize.every * stride) == 0``);
on the other frames the tracker fuses the chains it has, exactly as when a chain's source frame is
missing.

``stride`` is ``ScheduleConfig.stride`` (fixed, the default 1: every stage every frame, so the
results do not depend on timing), or, with ``frame_budget_ms > 0``, adapted to the measured step
time: doubled (up to ``max_stride``) while the mean step time is over the budget, halved while it is
under ``relax * budget``. The stride in use is part of the tracker's state for diagnostics
(:attr:`StageSchedule.stride`), so a skipped stage is never silent.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.config import check_settings, setting


@dataclass
class ScheduleConfig:
    """Per-frame schedule of the tracker's heavy stages (see the module docstring).

    Attributes:
        frame_budget_ms: target mean wall time of one tracker step in ms; 0 = no budget (the
            stride stays ``stride``). A live node at 30 Hz on a shared CPU: about 25.
        stride: the heavy stages' period in frames while there is no budget (1 = every frame),
            and the shortest period under a budget.
        max_stride: the longest period a budget may choose (``stride`` if that is longer).
        scheduled_from: chains of this interval in frames or longer are heavy stages; shorter
            ones run on every frame.
        relax: the budget halves the stride again once the mean step time is under
            ``relax * frame_budget_ms`` (hysteresis, in [0.05, 1]).
        ema_frames: frames the mean step time averages over (exponential moving average).
    """

    frame_budget_ms: float = setting(0.0, range=(0.0, 10_000.0), runtime=True, unit="ms", note="0 = no budget")
    stride: int = setting(1, range=(1, 64), runtime=True)
    max_stride: int = setting(8, range=(1, 64), runtime=True)
    scheduled_from: int = setting(4, range=(1, 256), runtime=True)
    relax: float = setting(0.6, range=(0.05, 1.0), runtime=True)
    ema_frames: int = setting(16, range=(1, 1000))

    def validate(self) -> None:
        check_settings(self, "schedule.")


class StageSchedule:
    """The stride of the heavy stages, adapted to a time budget from measured step times."""

    def __init__(self, config: ScheduleConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self.stride = self.config.stride
        self.mean_ms = 0.0  # exponential moving average of the step time, ms
        self._frames = 0  # steps measured since the stride last changed

    def due(self, frame: int, period: int = 1) -> bool:
        """Whether a heavy stage with its own ``period`` (e.g. ``relocalize.every``) runs on ``frame``."""
        return frame % (period * self.stride) == 0

    def runs_chain(self, frame: int, interval: int) -> bool:
        """Whether the chain of ``interval`` frames runs on ``frame``."""
        return interval < self.config.scheduled_from or self.due(frame)

    def update(self, step_ms: float) -> None:
        """Account one step's wall time (ms) and adapt the stride when there is a budget."""
        cfg = self.config  # read on every step: the node may change it while it runs
        if cfg.frame_budget_ms <= 0:
            self.stride, self._frames = cfg.stride, 0
            return
        longest = max(cfg.max_stride, cfg.stride)
        self.stride = min(max(self.stride, cfg.stride), longest)
        alpha = 1.0 / cfg.ema_frames
        self.mean_ms = step_ms if self._frames == 0 else (1 - alpha) * self.mean_ms + alpha * step_ms
        self._frames += 1
        # wait for the mean to cover a few periods of the current stride before the next change
        if self._frames < max(cfg.ema_frames // 2, 2 * self.stride):
            return
        if self.mean_ms > cfg.frame_budget_ms and self.stride * 2 <= longest:
            self.stride *= 2
            self._frames = 0
        elif self.mean_ms < cfg.relax * cfg.frame_budget_ms and self.stride // 2 >= cfg.stride:
            self.stride //= 2
            self._frames = 0
