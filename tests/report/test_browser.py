"""The report in a real browser: headless Chromium (Debian package ``chromium``; .ci/run installs it) renders
the page to a PNG, and its network log shows the page asked for nothing. Skipped, saying why, without it."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from textopt.cli import main

from .runs import HOSTILE, make_run

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                "(apt-get install chromium); the report's browser check needs it")
BROWSER = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]   # root, containers
# Where the screenshots are kept for people to look at (the test's own tmp folder otherwise).
SHOTS = os.environ.get("TEXTOPT_SCREENSHOTS")


def render(page: Path, png: Path, tmp: Path, height: int = 2400) -> list[str]:
    """Screenshot ``page`` with headless Chromium; the URLs the page itself requested (from Chromium's network
    log: requests whose initiator is the page's origin; the browser's own background requests have none)."""
    netlog = tmp / f"{png.stem}.netlog.json"
    cmd = [*BROWSER, "--hide-scrollbars", f"--user-data-dir={tmp / 'profile'}",
           "--proxy-server=127.0.0.1:9",   # nothing could be fetched even if the page asked
           f"--log-net-log={netlog}", f"--screenshot={png}", f"--window-size=1200,{height}", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.is_file(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-800:]}"
    events = json.loads(netlog.read_text())["events"]
    return sorted({e["params"]["url"] for e in events
                   if isinstance(e.get("params"), dict) and "url" in e["params"]
                   and e["params"].get("initiator", "not an origin") != "not an origin"
                   and not e["params"]["url"].startswith("file:")})


def pixels(png: Path) -> tuple[int, int, int]:
    """Width, height and the number of distinct colours of a PNG (Pillow: a matplotlib dependency)."""
    from PIL import Image
    with Image.open(png) as im:
        rgb = im.convert("RGB")
        return rgb.width, rgb.height, len(rgb.getcolors(maxcolors=1 << 24))


@pytest.fixture
def shots(tmp_path):
    out = Path(SHOTS) if SHOTS else tmp_path / "shots"
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_the_check_sees_a_page_that_fetches(tmp_path, shots):
    """The control: a page with a remote image is caught by the network-log check."""
    page = tmp_path / "fetches.html"
    page.write_text('<!DOCTYPE html><html><body><img src="https://example.invalid/x.png"><p>x</p></body></html>')
    assert render(page, tmp_path / "fetches.png", tmp_path, height=300) == ["https://example.invalid/x.png"]


@pytest.mark.parametrize("optimizer", ["tgd", "beam"])
def test_report_renders_in_chromium_without_network(optimizer, tmp_path, shots):
    run = tmp_path / optimizer
    make_run(run, "--prompt", HOSTILE + " Count.", optimizer=optimizer, steps=2)
    assert main(["report", str(run)]) == 0
    png = shots / f"report-{optimizer}.png"
    assert render(run / "report.html", png, tmp_path) == []
    # the prompt's <script> (it would set the title) and <img onerror> are text in the rendered document
    dom = subprocess.run([*BROWSER, f"--user-data-dir={tmp_path}/p2", "--proxy-server=127.0.0.1:9", "--dump-dom",
                          (run / "report.html").as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "<title>textopt run" in dom and "pwned</title>" not in dom and "<script" not in dom.lower()
    assert "&lt;script&gt;document.title" in dom and "<img" not in dom.lower()
    w, h, colours = pixels(png)
    assert (w, h) == (1200, 2400) and png.stat().st_size > 20_000
    assert colours > 20   # text, the curve's two colours, badges, diff highlights: not a blank page


def test_graph_html_renders_in_chromium(tmp_path, shots):
    page = tmp_path / "graph.html"
    assert main(["graph", "--task", "format_count", "--format", "html", "--out", str(page)]) == 0
    png = shots / "graph.png"
    assert render(page, png, tmp_path, height=600) == []
    _, _, colours = pixels(png)
    assert colours > 8 and png.stat().st_size > 5_000
