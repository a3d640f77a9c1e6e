"""The run curve PNG (matplotlib, Agg backend: no display needed), drawn from run-log rows
(:mod:`.runlog`: the "init" and "step" rows' ``train_score`` / ``val_score``; grey lines: reverted steps) —
the same for a Trainer run and a search run."""
from __future__ import annotations

from pathlib import Path

from .runlog import curve_points


def plot_curve(history: list[dict], path: str | Path) -> Path:
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = curve_points(history)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for key, label, style in (("train_score", "train (batch)", "o-"), ("val_score", "validation", "s-")):
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
    reverted = [r["step"] for r in rows if r.get("reverted")]
    for s in reverted:
        ax.axvline(s, color="grey", alpha=0.3, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("score")
    ax.set_title("training curve" + (" (grey: reverted steps)" if reverted else ""))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
