"""Retrieval-augmented QA with text AND tensor parameters trained together from the judge's feedback.

    python examples/rag_hybrid.py --engine scripted            # offline: scripted answerer, judge and optimizer
    python examples/rag_hybrid.py --engine openai:gpt-4o-mini

Parameters: a query adapter ``a`` (per-dimension weights, starts at 1) and a log-temperature over embeddings (tensors,
Adam), and the answerer's system prompt (text, TGD) — one ``MixedOptimizer``.

Forward per question: embed -> ``q = e * a`` -> ``textopt.kernels.cosine_topk`` over the corpus (Triton on CUDA,
chunked torch on CPU) -> softmax(similarities / tau) over the top-k -> ``WeightedItems`` formats the passages
with their weights into the prompt -> ``LLMCall`` answers -> ``TextLoss`` judges against the reference.

Backward (one per question): the judge's evaluation flows back as text to the prompt; at the passages it becomes a
per-item helpful / harmful judgement, i.e. a gradient on the weights, which torch carries to ``a`` and ``tau``.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import textopt as tx  # noqa: E402
from textopt import numeric as N  # noqa: E402
from textopt.engines import ScriptedEngine, get_engine  # noqa: E402
from textopt.errors import OptimizerStepError  # noqa: E402
from textopt.kernels import cosine, cosine_topk  # noqa: E402
from textopt.optim.mixed import MixedOptimizer  # noqa: E402
from textopt.prompts import BACKWARD_SYSTEM  # noqa: E402

FACTS = [("France", "Paris", "cheese"), ("Spain", "Madrid", "paella"), ("Italy", "Rome", "pasta"),
         ("Germany", "Berlin", "bread"), ("Japan", "Tokyo", "sushi"), ("Egypt", "Cairo", "pyramids"),
         ("Peru", "Lima", "ceviche"), ("Kenya", "Nairobi", "tea"), ("Canada", "Ottawa", "maple syrup"),
         ("Chile", "Santiago", "wine"), ("Norway", "Oslo", "fjords"), ("Greece", "Athens", "olives")]
JUDGE = ("Compare the model answer with the reference answer. Say 'Correct' when they match, otherwise explain "
         "what is wrong and what the answer should have been.")
START_PROMPT = "Answer the question using the passages."


def build_corpus():
    passages = []
    for country, city, thing in FACTS:
        passages += [f"{city} is the capital of {country}.",
                     f"What is the capital question people ask about {country}? Many ask what the capital of "
                     f"{country} is.",
                     f"{country} is famous for its {thing}."]
    return passages


class RAG(tx.nn.Module):
    def __init__(self, engine, passages, embedder, k: int = 3, tau: float = 0.1):
        super().__init__()
        self.embedder, self.passages, self.k = embedder, passages, k
        self.corpus = embedder.many(passages)
        d = self.corpus.shape[1]
        # a diagonal adapter (per-dimension reweighting, starts at 1) generalises from few questions; a full d x d
        # matrix memorises the training questions
        self.adapter = N.parameter(torch.ones(d), "query adapter: per-dimension weights of question embeddings",
                                   name="adapter")
        self.log_tau = N.parameter(torch.tensor(math.log(tau)), "log temperature of the passage weights",
                                   name="log_tau")
        self.prompt = tx.Variable(START_PROMPT, role="system prompt of the question answerer", requires_grad=True,
                                  name="prompt")
        self.answerer = tx.nn.LLMCall(engine, self.prompt, name="answerer")
        self.items = N.WeightedItems(role="retrieved passages with their weights")

    def retrieve(self, question: str):
        e = self.embedder(question)
        with torch.no_grad():
            top = cosine_topk(e * self.adapter.value, self.corpus, self.k)
        rows = self.corpus[top.indices]

        def weights(w, log_tau):
            sims = cosine((e * w)[None, :], rows)
            return torch.softmax(sims / log_tau.exp(), 0)
        return N.apply(weights, self.adapter, self.log_tau, role="passage weights"), top.indices.tolist()

    def forward(self, question: str):
        weights, idx = self.retrieve(question)
        context = self.items(weights, [self.passages[i] for i in idx])
        q = tx.Variable(f"Question: {question}", role="question")
        answer = self.answerer(tx.concat([context, q], sep="\n\n", role="passages and question"))
        return answer, weights, idx


def scripted_engine(model_ref: dict) -> ScriptedEngine:
    """Offline stand-ins: an answerer that trusts the highest-weight passage, a judge, a feedback writer, an item
    judge and an optimizer. They follow the prompts' contracts (tags, JSON) like a real model would."""
    def respond(req):
        user = req.messages[-1].content
        if "For each of the" in user:  # per-item judgement
            items = re.findall(r"^\[\d+\] (.*)$", user.split("<FEEDBACK>")[0], re.M)
            fb = user.split("<FEEDBACK>")[1]
            gold = re.search(r"(?:expected|answer is|contains) (\w+)", fb)
            ok = "Correct" in fb and "Incorrect" not in fb
            labels = []
            for it in items:
                if gold and gold.group(1) in it:
                    labels.append("helpful")
                else:
                    labels.append("neutral" if ok else "harmful")
            return '{"labels": ' + str(labels).replace("'", '"') + "}"
        if req.system == BACKWARD_SYSTEM:
            fb = re.search(r"<OUTPUT_FEEDBACK>(.*?)</OUTPUT_FEEDBACK>", user, re.S)
            return "Feedback from downstream: " + (fb.group(1) if fb else "the output was evaluated.")[-400:]
        if req.role == "loss":
            gold = re.search(r"Reference answer: (\w+)", user).group(1)
            got = user.split("Model answer:")[-1].strip()
            if got.strip(" .") == gold:
                return f"Correct: the answer is {gold}."
            if gold in got:
                return f"Partially correct: it contains {gold} but must be only the city name, no extra words."
            return f"Incorrect: expected {gold}; the passages shown did not state the capital."
        if req.role == "optimizer":
            current = model_ref["model"].prompt.value
            extra = " Reply with only the city name."
            return f"<NEW_VALUE>{current if extra.strip() in current else current + extra}</NEW_VALUE>"
        # the answerer: trust the highest-weight passage that states a capital of the asked country
        country = re.search(r"capital of (\w+)\?", user).group(1)
        best = None
        for w, text in re.findall(r"^\[\d+\] \(weight ([\d.]+)\) (.*)$", user, re.M):
            m = re.match(rf"(\w+) is the capital of {country}\.", text)
            if m and (best is None or float(w) > best[0]):
                best = (float(w), m.group(1))
        if best is None:
            return "I don't know."
        return best[1] if "only the city name" in (req.system or "") else f"I think the answer is {best[1]}."
    return ScriptedEngine(respond)


def evaluate(model: RAG, data, engine) -> dict:
    hits, gold_w, correct = 0, 0.0, 0
    with tx.no_grad():
        for country, city, _ in data:
            answer, weights, idx = model(f"What is the capital of {country}?")
            gold = model.passages.index(f"{city} is the capital of {country}.")
            hits += int(idx[0] == gold)
            gold_w += float(weights.value.detach()[idx.index(gold)]) if gold in idx else 0.0
            correct += int(answer.value.strip(" .") == city)
    n = len(data)
    return {"top1": hits / n, "gold_weight": gold_w / n, "exact": correct / n}


def run(engine_spec: str = "scripted", epochs: int = 3, lr: float = 0.2, k: int = 3, verbose: bool = True) -> dict:
    torch.manual_seed(0)
    ref: dict = {}
    engine = scripted_engine(ref) if engine_spec == "scripted" else get_engine(engine_spec)
    model = RAG(engine, build_corpus(), N.HashingEmbedder(128), k=k)
    ref["model"] = model
    judge = tx.nn.TextLoss(JUDGE, engine)
    train, test = FACTS[:8], FACTS[8:]
    opt = MixedOptimizer(model.parameters(), text="tgd", tensor="adam", tensor_options={"lr": lr},
                         text_options={"engine": engine})
    log = {"before": {"train": evaluate(model, train, engine), "test": evaluate(model, test, engine)}}
    if verbose:
        print("before:", log["before"])
    for epoch in range(epochs):
        opt.zero_grad()
        for country, city, _ in train:
            answer, _, _ = model(f"What is the capital of {country}?")
            graded = tx.concat([tx.Variable(f"Question: What is the capital of {country}?\nReference answer: "
                                            f"{city}\nModel answer:", role="question and reference"), answer],
                               sep=" ", role="graded answer")
            judge(graded).backward(engine=engine)   # one backward: text grads + torch grads
        try:
            opt.step()
        except OptimizerStepError as exc:  # the text update failed: still take the numeric step
            if verbose:
                print("text step failed:", str(exc)[:200])
            opt.step(text=False)
        scores = {"train": evaluate(model, train, engine), "test": evaluate(model, test, engine),
                  "tau": float(model.log_tau.value.detach().exp()), "prompt": model.prompt.value}
        log[f"epoch{epoch}"] = scores
        if verbose:
            print(f"epoch {epoch}:", scores)
    return log


def main(argv=None):
    ap = argparse.ArgumentParser(description="RAG with a learnable query adapter, temperature and prompt")
    ap.add_argument("--engine", default="scripted")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.2)
    args = ap.parse_args(argv)
    run(args.engine, args.epochs, args.lr)


if __name__ == "__main__":
    main()
