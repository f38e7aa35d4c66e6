"""On-disk cache of TensorRT plans, keyed by what a plan depends on.

A plan is only valid for the exact ONNX graph, TensorRT version, GPU model and precision it was
built for. The key is those four values; a plan ``<stem>-<precision>-<digest[:16]>.plan`` is
stored with a sidecar ``<plan>.json`` holding the full key, the plan's size and sha256, and the
encoder metadata (so a plan can be used on its own). A plan is reused only if the sidecar's key
equals the current key and the bytes match the recorded size and hash and the runtime can
deserialize them; otherwise it is rebuilt (missing file, key mismatch, truncated or corrupt plan).

This module is pure logic: the build and deserialize steps are callables passed in (the real
TensorRT ones live in :mod:`.tensorrt_engine`), so the policy is unit-tested without a GPU.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from .base import EngineBuildError
from ..core.output import write_bytes
from .settings import default_cache_dir
from ..core.errors import InputError

log = logging.getLogger(__name__)

SIDECAR_FORMAT = "gs_tracker_ros.trt-plan/1"


@dataclass(frozen=True)
class CacheKey:
    """What a TensorRT plan depends on."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    precision: str

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def differences(self, other: dict[str, Any]) -> list[str]:
        """Human-readable ``field: old -> new`` for each field that differs from a stored key."""
        mine = self.to_dict()
        return [f"{k}: {other.get(k)!r} -> {mine[k]!r}" for k in mine if other.get(k) != mine[k]]


@dataclass
class CacheResult:
    """Outcome of :meth:`EngineCache.load_or_build`."""

    engine: Any
    plan_path: Path
    status: str  # "hit", "built" (no plan yet) or "rebuilt" (stale or corrupt plan)
    reason: str = ""  # why it was (re)built


def sidecar_path(plan: Path) -> Path:
    return plan.with_name(plan.name + ".json")


class EngineCache:
    """Plans in ``cache_dir`` (default :func:`~gs_tracker_ros.engines.settings.default_cache_dir`)."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()

    def plan_path(self, key: CacheKey, stem: str = "gmae") -> Path:
        return self.cache_dir / f"{stem}-{key.precision}-{key.digest()[:16]}.plan"

    # ------------------------------------------------------------------ read / write
    @staticmethod
    def read_sidecar(plan: Path) -> dict[str, Any] | None:
        try:
            meta = json.loads(sidecar_path(plan).read_text())
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) and meta.get("format") == SIDECAR_FORMAT else None

    def check(self, plan: Path, key: CacheKey) -> tuple[bytes | None, str]:
        """``(plan bytes, "")`` if the plan is usable for ``key``, else ``(None, reason)``."""
        if not plan.is_file():
            return None, "no plan file"
        meta = self.read_sidecar(plan)
        if meta is None:
            return None, f"no readable key file {sidecar_path(plan).name}"
        stored = meta.get("key") or {}
        diff = key.differences(stored)
        if diff:
            return None, "key mismatch (" + "; ".join(diff) + ")"
        data = plan.read_bytes()
        if len(data) != meta.get("size"):
            return None, f"corrupt plan (size {len(data)} bytes, expected {meta.get('size')})"
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            return None, "corrupt plan (sha256 mismatch)"
        return data, ""

    def store(self, plan: Path, key: CacheKey, data: bytes, extra: dict[str, Any] | None = None) -> None:
        """Write the plan, then its sidecar (both atomically; a crash leaves no plan that looks valid)."""
        plan.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": SIDECAR_FORMAT, "key": key.to_dict(), "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(), "encoder": extra or {}}
        sidecar_path(plan).unlink(missing_ok=True)  # invalidate first
        write_bytes(plan, data)
        write_bytes(sidecar_path(plan), json.dumps(meta, indent=1, sort_keys=True).encode())

    def check_plan_only(self, plan: Path, key: CacheKey) -> tuple[bytes, dict[str, Any]]:
        """A plan given without its ONNX: ``(bytes, sidecar)`` if it fits this TensorRT / GPU / precision.

        ``key.onnx_sha256`` is not compared (there is no ONNX to hash); there is also nothing to
        rebuild from, so every problem is an error naming the plan.
        """

        if not plan.is_file():
            raise InputError(f"TensorRT plan not found: {plan}")
        meta = self.read_sidecar(plan)
        if meta is None:
            raise InputError(f"TensorRT plan {plan} has no readable key file {sidecar_path(plan).name}; "
                             "give the ONNX encoder (onnx_path) so the plan can be checked and rebuilt")
        stored = dict(meta.get("key") or {})
        diff = CacheKey(stored.get("onnx_sha256", ""), key.tensorrt_version, key.gpu_name,
                        key.precision).differences(stored)
        if diff:
            raise EngineBuildError(f"TensorRT plan {plan} was built for another setup (" + "; ".join(diff)
                                   + "); give the ONNX encoder (onnx_path) to rebuild it")
        data = plan.read_bytes()
        if len(data) != meta.get("size") or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            raise InputError(f"TensorRT plan {plan} is corrupt or truncated (size {len(data)}, expected "
                             f"{meta.get('size')}); give the ONNX encoder (onnx_path) to rebuild it")
        return data, meta

    # ------------------------------------------------------------------ policy
    def load_or_build(self, key: CacheKey, build: Callable[[], bytes], deserialize: Callable[[bytes], Any],
                      plan: str | Path | None = None, extra: dict[str, Any] | None = None) -> CacheResult:
        """Deserialize the cached plan for ``key``, or build, store and deserialize a new one.

        ``deserialize`` returns the engine object, or None (or raises) for bytes the runtime rejects.
        """
        plan = Path(plan) if plan else self.plan_path(key)
        data, reason = self.check(plan, key)
        if data is not None:
            try:
                engine = deserialize(data)
            except Exception as err:  # any runtime failure means: rebuild
                engine, reason = None, f"corrupt plan (deserialize raised {type(err).__name__}: {err})"
            if engine is not None:
                log.info("TensorRT plan cache hit: %s", plan)
                return CacheResult(engine, plan, "hit")
            reason = reason or "corrupt plan (the runtime could not deserialize it)"
        log.warning("building TensorRT plan %s: %s", plan, reason)
        data = build()
        if not data:
            raise EngineBuildError(f"TensorRT returned an empty plan for {plan}")
        self.store(plan, key, bytes(data), extra)
        engine = deserialize(bytes(data))
        if engine is None:
            raise EngineBuildError(f"the freshly built TensorRT plan {plan} could not be deserialized")
        return CacheResult(engine, plan, "built" if reason == "no plan file" else "rebuilt", reason)
