"""Runs people can look at: one self-contained HTML page per run folder (``textopt report RUN_DIR``) and per
computation graph (``textopt graph --format html``) — inline CSS and SVG, no script, nothing fetched."""
from .html import diff_html, graph_page, run_page
from .run import Run, Step, load_run

__all__ = ["Run", "Step", "diff_html", "graph_page", "load_run", "run_page"]
