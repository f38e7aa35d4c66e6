"""Time the renderer at the training size: ``python -m gs_tracker_ros.render.bench``.

Renders B*T frames of N Gaussians spread over the image (sizes like a freshly initialised
GMAE) and reports the median forward and forward+backward time of the torch tile renderer
(and gsplat on CUDA when available).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from .camera import Camera
from .rendering import render
from .splat import Splats


def make_splats(frames: int, n: int, h: int, w: int, sigma_cells: float = 0.6, seed: int = 0,
                device: str = "cpu") -> Splats:
    g = torch.Generator().manual_seed(seed)
    side = int(round(n**0.5))
    cam = Camera.default(h, w)
    ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    uv = torch.stack([(xs.reshape(-1) + 0.5) * w / side, (ys.reshape(-1) + 0.5) * h / side], -1).float()
    uv = uv[None].expand(frames, -1, -1) + torch.randn(frames, side * side, 2, generator=g)
    z = 2.0 + 0.2 * torch.rand(frames, side * side, generator=g)
    sig = sigma_cells * w / side * (0.5 + torch.rand(frames, side * side, 3, generator=g))
    sp = Splats(cam.unproject(uv, z), torch.randn(frames, side * side, 4, generator=g), sig * z[..., None] / cam.fx,
                0.3 + 0.6 * torch.rand(frames, side * side, generator=g), torch.rand(frames, side * side, 3, generator=g))
    return Splats(*(t.to(device).requires_grad_() for t in (sp.means, sp.quats, sp.scales, sp.opacities, sp.colors)))


def bench(frames: int = 32, n: int = 256, size: int = 64, backend: str = "torch", repeats: int = 7,
          device: str = "cpu", **opts) -> dict:
    sp = make_splats(frames, n, size, size, device=device)
    cam = Camera.default(size, size)
    fwd, both = [], []
    for _ in range(repeats):
        for p in (sp.means, sp.quats, sp.scales, sp.opacities, sp.colors):
            p.grad = None
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = render(sp, cam, size, size, backend=backend, **opts)
        loss = out.rgb.square().mean()
        if device == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        fwd.append(t1 - t0)
        both.append(t2 - t0)
    return {"frames": frames, "gaussians": n, "size": size, "backend": backend, **opts,
            "forward_ms": 1000 * statistics.median(fwd[1:]), "forward_backward_ms": 1000 * statistics.median(both[1:])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=32, help="B * T frames per step (default 4 x 8)")
    ap.add_argument("--gaussians", type=int, default=256)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    for tile, cap in ((8, 64), (8, None), (16, None)):
        print(bench(args.frames, args.gaussians, args.size, tile_size=tile, max_per_tile=cap))
    if torch.cuda.is_available():
        from .gsplat_backend import gsplat_available

        print(bench(args.frames, args.gaussians, args.size, device="cuda", backend="torch"))
        if gsplat_available():
            print(bench(args.frames, args.gaussians, args.size, device="cuda", backend="gsplat"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
