"""PNG plots without a plotting library (Pillow ships with torchvision): the Pareto front of a
round (FID against IS, first front highlighted) and the learning curves of IS and FID per round
(the form of the paper's Fig. 6–7)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

W, H, M = 640, 420, 56
COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


class _Axes:
    def __init__(
        self, title: str, xlabel: str, ylabel: str, xs: Sequence[float], ys: Sequence[float]
    ) -> None:
        self.img = Image.new("RGB", (W, H), "white")
        self.draw = ImageDraw.Draw(self.img)
        fx, fy = _finite(xs) or [0.0, 1.0], _finite(ys) or [0.0, 1.0]
        self.x0, self.x1 = min(fx), max(fx)
        self.y0, self.y1 = min(fy), max(fy)
        if self.x1 == self.x0:
            self.x0, self.x1 = self.x0 - 1, self.x1 + 1
        if self.y1 == self.y0:
            self.y0, self.y1 = self.y0 - 1, self.y1 + 1
        d = self.draw
        d.rectangle([M, M // 2, W - M // 2, H - M], outline="black")
        d.text((M, 6), title, fill="black")
        d.text((W // 2 - 20, H - 20), xlabel, fill="black")
        d.text((4, M // 2 - 14), ylabel, fill="black")
        for t in range(5):
            xv = self.x0 + (self.x1 - self.x0) * t / 4
            yv = self.y0 + (self.y1 - self.y0) * t / 4
            px, py = self.px(xv, self.y0)[0], self.px(self.x0, yv)[1]
            d.text((px - 10, H - M + 4), f"{xv:.3g}", fill="gray")
            d.text((4, py - 6), f"{yv:.3g}", fill="gray")

    def px(self, x: float, y: float) -> tuple[float, float]:
        u = M + (x - self.x0) / (self.x1 - self.x0) * (W - 1.5 * M)
        v = (H - M) - (y - self.y0) / (self.y1 - self.y0) * (H - 1.5 * M)
        return u, v

    def points(
        self, xs: Sequence[float], ys: Sequence[float], color: tuple[int, int, int], r: int = 3
    ) -> None:
        for x, y in zip(xs, ys):
            if math.isfinite(x) and math.isfinite(y):
                u, v = self.px(x, y)
                self.draw.ellipse([u - r, v - r, u + r, v + r], fill=color)

    def line(
        self,
        xs: Sequence[float],
        ys: Sequence[float],
        color: tuple[int, int, int],
        label: str,
        slot: int,
    ) -> None:
        pts = [self.px(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
        if len(pts) > 1:
            self.draw.line(pts, fill=color, width=2)
        self.points(xs, ys, color)
        self.draw.text((W - M - 120, M // 2 + 6 + 14 * slot), label, fill=color)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.img.save(path)


def pareto_plot(
    path: Path,
    title: str,
    is_: Sequence[float],
    fid: Sequence[float],
    ranks: Sequence[int],
    distance: str = "FID",
) -> None:
    ax = _Axes(title, "IS (higher is better)", distance, is_, fid)
    rest = [i for i, r in enumerate(ranks) if r != 0]
    front = sorted((i for i, r in enumerate(ranks) if r == 0), key=lambda i: is_[i])
    ax.points([is_[i] for i in rest], [fid[i] for i in rest], (150, 150, 150))
    ax.line([is_[i] for i in front], [fid[i] for i in front], COLORS[1], "first front", 0)
    ax.save(path)


def curves_plot(
    path: Path, title: str, series: dict[str, tuple[Sequence[float], Sequence[float]]], ylabel: str
) -> None:
    xs = [x for s in series.values() for x in s[0]]
    ys = [y for s in series.values() for y in s[1]]
    ax = _Axes(title, "round", ylabel, xs, ys)
    for slot, (label, (sx, sy)) in enumerate(series.items()):
        ax.line(sx, sy, COLORS[slot % len(COLORS)], label, slot)
    ax.save(path)
