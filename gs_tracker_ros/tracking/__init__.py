"""The online probabilistic tracker and the configuration that composes every layer below it.

:class:`~.tracker.ProbabilisticTracker` chains the motion sources (``motion``), filters and
observes with the re-localiser (``relocalize``) and fuses with the core's integration maths;
:class:`~.config.TrackerConfig` is the one typed configuration of all of those parts.
"""
