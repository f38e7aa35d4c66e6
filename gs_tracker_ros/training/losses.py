"""Point losses on the splatted motion of a :class:`GaussianClip` (pseudo-labels and ground truth).

For a frame-1 point p the model's prediction is read off the splatted Gaussians of frame 1 (the
same compositing weights ``w_i(p)`` as the renderer and the motion source), normalised by the
accumulated alpha ``A(p)``:

    d_t(p) = sum_i w_i(p) (x_i^t - x_i^1) / A(p)        motion to frame t (image-size units)
    V_t(p) = sum_i w_i(p) T_i^t / A(p)                  visibility in frame t

``T_i^t`` is the transmittance in front of Gaussian i at its own centre in frame t, the quantity
the motion source thresholds (``tau_occ``) to call a point occluded. Points are in package pixels
(centre of the top-left pixel = 0), x right, y down.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model.gaussians import GaussianClip, render_clip
from ..motion.gaussian import self_visibility
from ..render.splat import EPS2D, project_gaussians


def splat_at_points(g: GaussianClip, points: torch.Tensor, feats: torch.Tensor,
                    render_opts: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame-1 splat of per-Gaussian ``feats (B, N, F)`` read at ``points (B, P, 2)`` package px.

    Returns ``values (B, F, P)`` (alpha-normalised, as in the formulas above) and ``acc (B, P)``.
    """
    h, w = g.height, g.width
    first = GaussianClip(g.means[:, :1], g.quats, g.log_scales, g.opacities, g.colors[:, :1], h, w, g.focal)
    out = render_clip(first, h, w, features=feats[:, None], **render_opts)
    fmap = torch.cat([out.features[:, 0], out.alpha[:, 0]], dim=-1).permute(0, 3, 1, 2)  # (B, F+1, H, W)
    scale = g.means.new_tensor([float(w), float(h)])
    grid = ((points + 0.5) / scale) * 2.0 - 1.0  # continuous coords, align_corners=False convention
    samp = F.grid_sample(fmap, grid[:, None], mode="bilinear", align_corners=False)[:, :, 0]  # (B, F+1, P)
    acc = samp[:, -1]
    return samp[:, :-1] / acc.clamp_min(1e-3)[:, None], acc


def _motion_features(g: GaussianClip) -> torch.Tensor:
    """``(B, N, 2 (T-1))`` Gaussian displacement from frame 1 to frames 2..T, image-size units."""
    b, t, n = g.means.shape[:3]
    scale = g.means.new_tensor([float(g.width), float(g.height)])
    centers = g.projected_centers()  # (B, T, N, 2)
    disp = (centers[:, 1:] - centers[:, :1]) / scale
    return disp.permute(0, 2, 1, 3).reshape(b, n, 2 * (t - 1))


def gaussian_visibility(g: GaussianClip) -> torch.Tensor:
    """``(B, T, N)`` transmittance in front of each Gaussian at its own centre in every frame."""
    b, t, n = g.means.shape[:3]
    scales = torch.exp(g.log_scales)
    out = []
    for i in range(b):
        proj = project_gaussians(g.means[i], g.quats[i][None].expand(t, -1, -1), scales[i][None].expand(t, -1, -1),
                                 g.camera, g.height, g.width, EPS2D)
        out.append(torch.stack([self_visibility(proj.mean2d[k], proj.conic[k], g.opacities[i], proj.depth[k],
                                                proj.valid[k]) for k in range(t)]))
    return torch.stack(out)


def trajectory_loss(g: GaussianClip, tracks: torch.Tensor, valid: torch.Tensor, render_opts: dict) -> torch.Tensor:
    """Mean L1 (image-size units) between the splatted frame-1 motion and ``tracks``.

    ``tracks (B, T, P, 2)`` package pixels of the clip, ``valid (B, T, P)`` where a track counts
    (LK pseudo-labels: where the tracker held; ground truth: every frame). Points the Gaussians do
    not cover at frame 1 (``A < 0.5``) are left out.
    """
    b, t = tracks.shape[:2]
    pred, acc = splat_at_points(g, tracks[:, 0], _motion_features(g), render_opts)
    pred = pred.reshape(b, t - 1, 2, -1).permute(0, 1, 3, 2)  # (B, T-1, P, 2)
    scale = g.means.new_tensor([float(g.width), float(g.height)])
    target = (tracks[:, 1:] - tracks[:, :1]) / scale
    m = (valid[:, 1:] & (acc[:, None, :] > 0.5)).float()  # (B, T-1, P)
    err = (pred - target).abs().sum(-1)
    return (err * m).sum() / m.sum().clamp_min(1.0)


def supervised_losses(g: GaussianClip, tracks: torch.Tensor, visible: torch.Tensor, in_view: torch.Tensor,
                      render_opts: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth losses on a generated clip: ``(trajectory L1, visibility BCE)``.

    ``tracks (B, T, P, 2)`` exact positions (package px; also while hidden), ``visible (B, T, P)``
    and ``in_view (B, T, P)``. The trajectory term counts every frame (the ground truth is exact
    through occlusion); the visibility term compares ``V_t(p)`` with ``visible`` on frames 2..T
    where the point is inside the image (leaving the image is not an occlusion of Gaussians).
    """
    b, t = tracks.shape[:2]
    feats = torch.cat([_motion_features(g), gaussian_visibility(g)[:, 1:].permute(0, 2, 1)], dim=-1)
    vals, acc = splat_at_points(g, tracks[:, 0], feats, render_opts)
    pred = vals[:, : 2 * (t - 1)].reshape(b, t - 1, 2, -1).permute(0, 1, 3, 2)  # (B, T-1, P, 2)
    scale = g.means.new_tensor([float(g.width), float(g.height)])
    target = (tracks[:, 1:] - tracks[:, :1]) / scale
    covered = (acc > 0.5)[:, None, :]  # (B, 1, P)
    m = covered.expand(b, t - 1, -1).float()
    traj = ((pred - target).abs().sum(-1) * m).sum() / m.sum().clamp_min(1.0)
    v_pred = vals[:, 2 * (t - 1):].clamp(1e-4, 1 - 1e-4)  # (B, T-1, P)
    mv = (in_view[:, 1:] & covered).float()
    bce = F.binary_cross_entropy(v_pred, visible[:, 1:].float(), reduction="none")
    vis = (bce * mv).sum() / mv.sum().clamp_min(1.0)
    return traj, vis
