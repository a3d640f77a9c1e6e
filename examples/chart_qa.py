"""Questions about charts: optimize the system prompt of a model that reads images (bar charts drawn here).

    python examples/chart_qa.py                                   # replays examples/cassettes/chart_qa.jsonl
    python examples/chart_qa.py --engine openai:gpt-4o-mini --record runs/chart_qa.jsonl   # a real vision model
    python examples/chart_qa.py --stand-in --record examples/cassettes/chart_qa.jsonl     # re-record the cassette

The example draws small bar charts with matplotlib (seeded, so the same PNG bytes each run), asks which bar is
tallest or shortest (answer: its colour), and trains the system prompt with TGD: each chart is an
``ImageVariable`` read by the forward call, shown again to the backward call (the feedback can say what the chart
shows) and to the optimizer. Cache and cassette keys hold the charts' content hashes, never their bytes.

The committed cassette was recorded with ``--stand-in``: no vision model was reachable where it was recorded, so
a stand-in served over the OpenAI wire format (the official SDK, a loopback HTTP server) reads the charts by
measuring the bars' pixels and answers in the format its system prompt asks for (a sentence otherwise). Record
your own with a real model as shown above and replay it with ``--engine replay:FILE``.
"""
from __future__ import annotations

import argparse
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

import textopt as tx

CASSETTE = Path(__file__).resolve().parent / "cassettes" / "chart_qa.jsonl"
COLOURS = {"red": (230, 25, 25), "green": (25, 170, 25), "blue": (25, 25, 230), "orange": (250, 150, 0)}
QUESTIONS = {"tallest": "Which colour is the tallest bar in this chart?",
             "shortest": "Which colour is the shortest bar in this chart?"}
START_PROMPT = "Look at the chart and answer the question."
NEW_PROMPT = ("Compare the heights of all the bars in the chart, then end your reply with one line "
              "'Answer: <colour>' naming the colour of the bar asked for, in one lowercase word.")

ADDITION = "Judge only the tops of the bars, not their width or position."


@dataclass
class Chart:
    image: tx.ImageVariable
    values: dict          # colour -> bar height
    question: str
    answer: str


def draw(values: dict) -> bytes:
    """A bar chart as PNG bytes (no global pyplot state; no timestamp or version in the file)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(3, 2), dpi=60)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = list(values)
    ax.bar(range(len(names)), [values[n] for n in names], color=[tuple(c / 255 for c in COLOURS[n]) for n in names],
           antialiased=False)
    ax.set_xticks([])
    ax.set_ylim(0, 10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def make_charts(n: int, seed: int = 0) -> list[Chart]:
    rng = random.Random(seed)
    charts = []
    for i in range(n):
        names = rng.sample(list(COLOURS), 4)
        heights = rng.sample(range(1, 10), 4)          # distinct: one tallest, one shortest
        values = dict(zip(names, heights))
        kind = "tallest" if i % 2 == 0 else "shortest"
        answer = (max if kind == "tallest" else min)(values, key=values.get)
        image = tx.ImageVariable(draw(values), role="bar chart", label=f"chart-{seed}-{i}.png")
        charts.append(Chart(image, values, QUESTIONS[kind], answer))
    return charts


def run(engine: "tx.Engine | str | None" = None, *, steps: int = 2, batch_size: int = 2, n_train: int = 4,
        n_test: int = 4, seed: int = 0, optimizer_engine=None) -> dict:
    engine = tx.get_engine(engine or f"replay:{CASSETTE}")
    optimizer_engine = tx.get_engine(optimizer_engine) if optimizer_engine else engine
    train, test = make_charts(n_train, seed), make_charts(n_test, seed + 1)
    prompt = tx.Variable(START_PROMPT, role="system prompt of a model answering questions about charts",
                         requires_grad=True)
    reader = tx.nn.LLMCall(engine, system_prompt=prompt, max_tokens=200, name="chart_reader")
    metric = tx.nn.ExactMatch(extract=r"Answer:\s*([A-Za-z]+)")
    optimizer = tx.optim.TGD([prompt], engine=optimizer_engine, max_tokens=300)

    def accuracy(charts) -> float:
        with tx.no_grad():
            return sum(metric(reader(c.question, images=c.image), c.answer).meta["score"] for c in charts) / len(charts)

    before = accuracy(test)
    for step in range(steps):
        batch = [train[(step * batch_size + k) % len(train)] for k in range(batch_size)]
        optimizer.zero_grad()
        losses = [metric(reader(c.question, images=c.image), c.answer) for c in batch]
        with tx.backward_engine(engine):
            tx.aggregate(losses).backward()
        optimizer.step()
    return {"before": before, "after": accuracy(test), "prompt": prompt.value,
            "calls": engine.usage.as_dict()["total"]["calls"]}


# -- the stand-in reader (what --stand-in serves over the OpenAI wire format) --------------------------------------
def bar_heights(png: bytes) -> dict:
    """Colour -> bar height in pixels, measured on the chart (the tallest column of each bar colour)."""
    from PIL import Image
    img = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = img.size
    px = img.load()
    heights = {}
    for name, rgb in COLOURS.items():
        cols = [sum(all(abs(a - b) < 12 for a, b in zip(px[x, y], rgb)) for y in range(h)) for x in range(w)]
        if max(cols) > 0:
            heights[name] = max(cols)
    return heights


def stand_in(body: dict) -> str:
    from textopt.testing.wire import images_of, last_user_text, messages_of
    text = last_user_text(body)
    images = [data for _, data in images_of(body)]
    if "<ADDITION>" in text:                             # the optimizer, asked for one more instruction
        return f"<ADDITION>{ADDITION}</ADDITION>"
    if "<NEW_VALUE>" in text:                            # the optimizer
        return f"<NEW_VALUE>{NEW_PROMPT}</NEW_VALUE>"
    if "Give feedback on" in text:                       # the backward call: it sees the chart too
        facts = ", ".join(f"{c} {v}px" for c, v in bar_heights(images[0]).items()) if images else "no chart"
        return (f"Measured bars: {facts}. The output never ends with a line 'Answer: <colour>', so the answer "
                f"cannot be read. The system prompt should ask the model to compare the bar heights and to end "
                f"with 'Answer: <colour>' in one lowercase word.")
    heights = bar_heights(images[0])
    pick = (max if "tallest" in text else min)(heights, key=heights.get)
    system = next((t for r, t in messages_of(body) if r == "system"), "")
    if "Answer:" in system:
        return f"The {pick} bar is the {'tallest' if 'tallest' in text else 'shortest'}.\nAnswer: {pick}"
    return f"Looking at the chart, I would say the {pick} one stands out."


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default=None, help=f"engine spec (default: replay:{CASSETTE})")
    ap.add_argument("--record", default=None, help="append every call to this cassette")
    ap.add_argument("--stand-in", action="store_true", help="serve the pixel-measuring stand-in (recording)")
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args(argv)
    kw = {"record": args.record, "cache": False} if args.record else {}
    if args.stand_in:
        from textopt.testing import LoopbackServer
        with LoopbackServer(stand_in, port=8765) as srv:
            result = run(tx.get_engine(srv.openai_spec("chart-reader"), **kw), steps=args.steps)
    else:
        result = run(tx.get_engine(args.engine, **kw) if args.engine else None, steps=args.steps)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
