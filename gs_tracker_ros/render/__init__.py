"""Gaussian splatting: one ``render`` function, a pure-torch tile backend and a gsplat backend."""

from .camera import Camera
from .rendering import render
from .splat import RenderOutput, Splats, project_gaussians

__all__ = ["Camera", "RenderOutput", "Splats", "project_gaussians", "render"]
