"""Evidence -> (spread, probability of being wrong): the mixture model behind ``variance`` and ``p_lost``.

The error of a position estimate on real footage is a mixture: most estimates are close (a
Gaussian spread that depends on how the estimate was made), some are wrong by an arbitrary amount
(the chain locked onto another surface, the point was lost). One Gaussian sigma cannot say both
"precise" and "possibly lost", so each estimate gets two numbers from its evidence ``x`` (a few
named features, e.g. forward-backward residual, appearance similarity, path travelled)::

    p(e | x) = (1 - p_out(x)) * N2(e; 0, s2(x)) + p_out(x) * U(e)

* ``e`` (px, 2-D): the error of the estimate; ``N2`` an isotropic 2-D Gaussian with per-axis
  variance ``s2`` px^2 (so ``|e| < sigma`` holds 39.3 % and ``< 2 sigma`` 86.5 % of the inliers);
* ``U``: a flat density over a disc of radius ``outlier_radius_px`` (wrong by anything);
* ``s2(x) = exp(b . z(x))``, clipped to ``[min_variance, max_variance]``;
  ``p_out(x) = sigmoid(a . z(x))``; ``z`` = the features standardised by the fitted
  ``mean`` / ``scale`` with a constant 1 appended.

:func:`fit_mixture` fits ``a`` and ``b`` by expectation-maximisation on estimates whose error is
known (generated scenes with exact ground truth): the E-step weighs each sample by the posterior
that it is an outlier, the M-steps are a weighted logistic regression (``a``) and a weighted
Gaussian log-variance regression (``b``), both Newton steps on convex objectives. A fitted
:class:`EvidenceModel` is plain data (JSON); the tracker evaluates it with numpy on every frame.
Pure numpy; no ROS, no torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import InputError

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass
class EvidenceModel:
    """A fitted evidence -> (p_out, s2) model (module doc).

    Attributes:
        features: names of the features, in the order of the weights.
        mean, scale: standardisation of each feature (``z = (x - mean) / scale``).
        w_out: ``len(features) + 1`` logistic weights of ``p_out`` (last: intercept).
        w_logvar: ``len(features) + 1`` weights of ``log s2`` (last: intercept).
        min_variance, max_variance: px^2 bounds of ``s2`` (the spread of a *right* estimate: the
            upper bound is the documented ceiling of a visible point's variance).
        outlier_radius_px: radius of the flat outlier density ``U`` used in the fit.
        info: how the model was fitted (command, data, sample counts, fit log summary).
    """

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    w_out: tuple[float, ...]
    w_logvar: tuple[float, ...]
    min_variance: float = 0.01
    max_variance: float = 4096.0
    outlier_radius_px: float = 500.0
    info: dict = field(default_factory=dict)

    @classmethod
    def constant(cls, features: tuple[str, ...], p_out: float, variance: float) -> "EvidenceModel":
        """A model that ignores its evidence: ``p_out`` and ``variance`` px^2 for every estimate
        (the starting point of a fit, and the "no evidence" reference of an ablation)."""
        n = len(features)
        logit = float(np.log(p_out / (1.0 - p_out)))
        return cls(tuple(features), (0.0,) * n, (1.0,) * n, (0.0,) * n + (logit,), (0.0,) * n + (float(np.log(variance)),),
                   min_variance=min(0.01, variance), max_variance=max(4096.0, variance),
                   info={"constant": True}).validate()

    def validate(self) -> "EvidenceModel":
        n = len(self.features)
        for name, values, size in (("mean", self.mean, n), ("scale", self.scale, n), ("w_out", self.w_out, n + 1),
                                   ("w_logvar", self.w_logvar, n + 1)):
            if len(values) != size or not np.all(np.isfinite(values)):
                raise InputError(f"evidence model: '{name}' must hold {size} finite numbers, got {list(values)}")
        if not all(s > 0 for s in self.scale):
            raise InputError("evidence model: every feature scale must be > 0")
        if not 0 < self.min_variance < self.max_variance:
            raise InputError(f"evidence model: need 0 < min_variance < max_variance, got {self.min_variance}, "
                             f"{self.max_variance}")
        return self

    # ------------------------------------------------------------------ evaluation
    def design(self, x: Mapping[str, np.ndarray]) -> np.ndarray:
        """``(..., F + 1)`` standardised features with the constant; every named feature must be
        present (same shape each); NaN features count as their mean (no evidence)."""
        missing = [f for f in self.features if f not in x]
        if missing:
            raise KeyError(f"evidence features missing: {missing}")
        cols = [(np.asarray(x[f], np.float64) - m) / s for f, m, s in zip(self.features, self.mean, self.scale)]
        z = np.stack(cols + [np.ones_like(cols[0])], axis=-1) if cols else np.ones((1,))
        return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)

    def predict(self, x: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(p_out, s2)`` of every estimate: probability in [0, 1] and variance in px^2."""
        z = self.design(x)
        return _sigmoid(z @ np.asarray(self.w_out)), self._variance(z @ np.asarray(self.w_logvar))

    def _variance(self, log_s2: np.ndarray) -> np.ndarray:
        return np.exp(np.clip(log_s2, np.log(self.min_variance), np.log(self.max_variance)))

    # ------------------------------------------------------------------ files
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping) -> "EvidenceModel":
        try:
            model = cls(features=tuple(str(f) for f in data["features"]),
                        mean=tuple(float(v) for v in data["mean"]), scale=tuple(float(v) for v in data["scale"]),
                        w_out=tuple(float(v) for v in data["w_out"]),
                        w_logvar=tuple(float(v) for v in data["w_logvar"]),
                        min_variance=float(data.get("min_variance", 0.01)),
                        max_variance=float(data.get("max_variance", 4096.0)),
                        outlier_radius_px=float(data.get("outlier_radius_px", 500.0)),
                        info=dict(data.get("info", {})))
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"evidence model: malformed ({type(err).__name__}: {err})") from None
        return model.validate()

    @classmethod
    def load(cls, path: str | Path) -> "EvidenceModel":
        """Read a model written by :meth:`to_json`; :class:`InputError` naming the file otherwise."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(f"cannot read evidence model {path}: {err}") from None
        if not isinstance(data, dict):
            raise InputError(f"evidence model {path}: expected a JSON object")
        try:
            return cls.from_dict(data)
        except InputError as err:
            raise InputError(f"{path}: {err}") from None


def load_evidence_model(path: str | Path) -> EvidenceModel:
    """A fitted model from ``path`` (relative to the repository, see
    :func:`~gs_tracker_ros.core.paths.resolve_path`); :class:`InputError` naming the file when it
    is missing or malformed."""
    from .paths import resolve_path

    return EvidenceModel.load(resolve_path(path))


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(u, np.float64)))


def mixture_log_likelihood(err_px: np.ndarray, p_out: np.ndarray, s2: np.ndarray,
                           outlier_radius_px: float) -> np.ndarray:
    """Per-sample log density of 2-D errors of length ``err_px`` under the mixture (module doc)."""
    e2 = np.asarray(err_px, np.float64) ** 2
    log_in = -_LOG_2PI - np.log(s2) - 0.5 * e2 / s2
    log_out = -np.log(np.pi * outlier_radius_px**2)
    return np.logaddexp(np.log1p(-np.clip(p_out, 1e-9, 1 - 1e-9)) + log_in,
                        np.log(np.clip(p_out, 1e-9, 1 - 1e-9)) + log_out)


def fit_mixture(x: Mapping[str, np.ndarray], err_px: np.ndarray, features: tuple[str, ...], *,
                min_variance: float = 0.01, max_variance: float = 4096.0, outlier_radius_px: float = 500.0,
                ridge: float = 1e-3, iterations: int = 60, weights: np.ndarray | None = None,
                info: dict | None = None) -> EvidenceModel:
    """Fit an :class:`EvidenceModel` to samples with known error length ``err_px (M,)`` px.

    ``x``: the named features, ``(M,)`` each (NaN = not available for that sample). ``ridge``
    is an L2 penalty on the standardised weights (not on the intercepts). ``weights (M,)``: how
    much each sample counts (default 1 each; e.g. to give two data sources equal say). Returns the model with
    ``info`` holding the sample count, the final mean log-likelihood and the fitted outlier share.
    """
    err = np.asarray(err_px, np.float64).reshape(-1)
    if err.size < 10 or not np.all(np.isfinite(err)):
        raise InputError(f"fit_mixture needs at least 10 finite errors, got {err.size}")
    sw = np.ones(err.size) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if sw.shape != err.shape or not np.all(np.isfinite(sw) & (sw >= 0)) or sw.sum() <= 0:
        raise InputError("fit_mixture: weights must be one finite value >= 0 per sample, not all 0")
    sw = sw * (sw.size / sw.sum())  # mean 1: the ridge keeps its meaning
    mean, scale = [], []
    for f in features:
        v = np.asarray(x[f], np.float64).reshape(-1)
        if v.shape != err.shape:
            raise InputError(f"feature {f}: {v.shape[0]} samples for {err.size} errors")
        finite = v[np.isfinite(v)]
        mean.append(float(finite.mean()) if finite.size else 0.0)
        scale.append(float(finite.std()) if finite.size and finite.std() > 1e-9 else 1.0)
    model = EvidenceModel(tuple(features), tuple(mean), tuple(scale), tuple([0.0] * len(features) + [0.0]),
                          tuple([0.0] * len(features) + [float(np.log(np.median(err**2) + min_variance))]),
                          min_variance, max_variance, outlier_radius_px)
    z = model.design({f: np.asarray(x[f], np.float64).reshape(-1) for f in features})  # (M, F+1)
    penalty = np.full(z.shape[1], ridge)
    penalty[-1] = 0.0
    a = np.zeros(z.shape[1])
    a[-1] = -1.0
    b = np.array(model.w_logvar, np.float64)
    e2 = err**2
    history = []
    for _ in range(iterations):
        p = _sigmoid(z @ a)
        s2 = model._variance(z @ b)
        ll = mixture_log_likelihood(err, p, s2, outlier_radius_px)
        history.append(float(np.mean(sw * ll)))
        # E-step: posterior that each sample is an outlier
        gamma = np.clip(np.exp(np.log(np.clip(p, 1e-9, 1 - 1e-9)) - np.log(np.pi * outlier_radius_px**2) - ll),
                        0.0, 1.0)
        a = _newton_logistic(z, gamma, a, penalty, sw)
        b = _newton_logvar(z, e2, sw * (1.0 - gamma), b, penalty, np.log(min_variance), np.log(max_variance))
        if len(history) > 3 and abs(history[-1] - history[-2]) < 1e-7:
            break
    p = _sigmoid(z @ a)
    s2 = model._variance(z @ b)
    fitted = EvidenceModel(tuple(features), tuple(mean), tuple(scale), tuple(float(v) for v in a),
                           tuple(float(v) for v in b), min_variance, max_variance, outlier_radius_px,
                           info={**(info or {}), "samples": int(err.size), "iterations": len(history),
                                 "mean_log_likelihood": float(np.mean(sw * mixture_log_likelihood(
                                     err, p, s2, outlier_radius_px))),
                                 "outlier_share": float(p.mean())})
    return fitted.validate()


def _damped_newton(objective, grad_hess, w: np.ndarray, steps: int) -> np.ndarray:
    """Newton steps on a convex ``objective`` with step halving until it decreases (the plain
    step can overshoot far where the curvature is tiny, e.g. a variance far above the errors)."""
    f = objective(w)
    for _ in range(steps):
        grad, hess = grad_hess(w)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-4:
            cand = w - scale * step
            f_cand = objective(cand)
            if np.isfinite(f_cand) and f_cand <= f:
                w, f = cand, f_cand
                break
            scale *= 0.5
        else:
            break
    return w


def _newton_logistic(z: np.ndarray, target: np.ndarray, w: np.ndarray, penalty: np.ndarray,
                     sample_weight: np.ndarray, steps: int = 4) -> np.ndarray:
    """Weighted (soft-label) logistic regression: a few damped Newton steps from ``w``."""
    m = float(sample_weight.sum())

    def objective(w):
        u = z @ w
        return float(np.sum(sample_weight * (np.logaddexp(0.0, u) - target * u)) / m + 0.5 * np.sum(penalty * w * w))

    def grad_hess(w):
        p = _sigmoid(z @ w)
        grad = z.T @ (sample_weight * (p - target)) / m + penalty * w
        hess = (z.T * (sample_weight * (p * (1 - p) + 1e-6))) @ z / m + np.diag(penalty + 1e-9)
        return grad, hess

    return _damped_newton(objective, grad_hess, w, steps)


def _newton_logvar(z: np.ndarray, e2: np.ndarray, weight: np.ndarray, w: np.ndarray, penalty: np.ndarray,
                   low: float, high: float, steps: int = 4) -> np.ndarray:
    """Weighted Gaussian log-variance regression: minimise ``sum weight * (s + e2 exp(-s) / 2)``
    over ``s = z . w`` (the negative log-likelihood of a 2-D isotropic Gaussian, up to constants),
    with ``s`` clipped to ``[low, high]`` as the model clips it."""
    total = max(float(weight.sum()), 1e-9)

    def objective(w):
        s = np.clip(z @ w, low, high)
        return float(np.sum(weight * (s + 0.5 * e2 * np.exp(-s))) / total + 0.5 * np.sum(penalty * w * w))

    def grad_hess(w):
        raw = z @ w
        inside = (raw > low) & (raw < high)
        s = np.clip(raw, low, high)
        r = 0.5 * e2 * np.exp(-s)
        grad = z.T @ (weight * inside * (1.0 - r)) / total + penalty * w
        hess = (z.T * (weight * (inside * r + 1e-6))) @ z / total + np.diag(penalty + 1e-9)
        return grad, hess

    return _damped_newton(objective, grad_hess, w, steps)
