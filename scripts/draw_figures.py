"""Draw the book's static figures into images/. Run: python scripts/draw_figures.py (or
make figures)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from aebook.plotting import draw_architecture

IMAGES = Path(__file__).resolve().parents[1] / "images"


def main(out: Path = IMAGES) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "autoencoder_architecture.png"
    draw_architecture(path)
    return [path]


if __name__ == "__main__":
    for p in main():
        print(f"wrote {p}")
