"""The local engine's decode loop: one batched, KV-cached forward per step for many requests at once.

Each row keeps its own settings (max_tokens, temperature/top_p with its own seeded generator, stop strings,
constraint), so any mix of requests can share a batch: prompts are left-padded, position ids follow the
attention mask, and a finished row leaves the batch (its KV-cache rows are dropped). Greedy decoding at
temperature 0 is therefore the same whether a request runs alone or batched (up to float rounding).
Per-token log-probs are the model's own (before masks and temperature), like ``score``.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch

from ...errors import ContextLengthError
from ...kernels import token_logprobs
from ..types import Message, Request, Response


def prompt_text(tokenizer, messages: tuple[Message, ...], prefill: str | None) -> str:
    """The chat-templated conversation, opened for the assistant's turn, plus the prefill."""
    msgs = [{"role": m.role, "content": m.content} for m in messages]
    if msgs and msgs[-1]["role"] == "assistant":  # an assistant message at the end is a prefill too
        prefill = msgs.pop()["content"] + (prefill or "")
    text = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    return text + (prefill or "")


@dataclass
class Row:
    request: Request
    prompt_ids: list[int]
    prefill: str
    constraint: object = None
    generator: torch.Generator | None = None
    out_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    done: bool = False
    finish: str | None = None
    cut: int | None = None  # character position of a stop string in the generated text
    n_forced: int = 0       # leading out_ids that were put into the prompt (counted as completion tokens)


def make_row(tokenizer, request: Request, constraint, context: int | None = None) -> Row:
    prefill = request.prefill or ""
    ids = tokenizer.encode(prompt_text(tokenizer, request.messages, request.prefill), add_special_tokens=False)
    if context and len(ids) + request.max_tokens > context:
        raise ContextLengthError(f"the prompt has {len(ids)} tokens and max_tokens={request.max_tokens}, more than "
                                 f"the local model's context of {context} tokens; shorten the prompt or max_tokens")
    gen = None
    if request.temperature and request.temperature > 0:
        gen = torch.Generator().manual_seed(((request.seed or 0) * 1_000_003 + request.sample_index) % (1 << 62))
    if request.messages and request.messages[-1].role == "assistant":
        prefill = request.messages[-1].content + prefill
    row = Row(request, ids, prefill, constraint, gen)
    if constraint is not None and not request.logprobs:
        # literal tokens the constraint forces first (e.g. '{"answer": "') go into the prompt: no decode steps
        for tok in getattr(constraint, "leading_literal", lambda: [])():
            row.prompt_ids.append(tok)
            row.out_ids.append(tok)
            row.logprobs.append(0.0)
            constraint.advance(tok)
        row.n_forced = len(row.out_ids)
    return row


def _pick(row: Row, logits: torch.Tensor, mask: torch.Tensor | None) -> int:
    scores = logits if mask is None else logits.masked_fill(~mask, float("-inf"))
    req = row.request
    if row.generator is None:
        return int(torch.argmax(scores))
    probs = torch.softmax(scores / req.temperature, dim=-1)
    if req.top_p is not None and 0 < req.top_p < 1:
        sorted_p, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_p, 0) - sorted_p < req.top_p
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
    return int(torch.multinomial(probs, 1, generator=row.generator))


def run_batch(model, tokenizer, rows: list[Row], eos_ids: set[int]) -> None:
    """Decode every row to completion in place (``out_ids``, ``logprobs``, ``finish``, ``cut``)."""
    from transformers import DynamicCache

    device = model.device
    width = max(len(r.prompt_ids) for r in rows)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r.prompt_ids)) + r.prompt_ids for r in rows], device=device)
    attn = torch.tensor([[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in rows], device=device)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    ck = _cache_kwarg(model)
    steps = max(r.request.max_tokens for r in rows)
    live = list(range(len(rows)))  # batch position -> row index; finished rows leave the batch
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True, logits_to_keep=1,
                    **{ck: cache})
        for _ in range(steps):
            logits = out.logits[:, -1, :].float().cpu()
            logp = torch.log_softmax(logits, dim=-1)
            nxt = []
            for b, r in enumerate(live):
                row = rows[r]
                if row.done:
                    nxt.append(pad)
                    continue
                mask = None
                if row.constraint is not None:
                    mask = row.constraint.allowed(row.request.max_tokens - len(row.out_ids))
                    if mask.shape[0] < logits.shape[1]:
                        mask = torch.cat([mask, torch.zeros(logits.shape[1] - mask.shape[0], dtype=torch.bool)])
                tok = _pick(row, logits[b], mask)
                nxt.append(tok)
                _accept(row, tok, float(logp[b, tok]), tokenizer, eos_ids)
            keep = [b for b, r in enumerate(live) if not rows[r].done]
            if not keep:
                break
            if len(keep) < len(live):  # drop finished rows from the KV cache: later steps get cheaper
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                attn, pos = attn[index], pos[index]
                live, nxt = [live[b] for b in keep], [nxt[b] for b in keep]
            pos = pos[:, -1:] + 1
            attn = torch.cat([attn, torch.ones((len(live), 1), dtype=attn.dtype, device=device)], dim=1)
            out = model(input_ids=torch.tensor(nxt, device=device)[:, None], attention_mask=attn, position_ids=pos,
                        use_cache=True, **{ck: cache})
    for row in rows:
        if not row.done:
            row.done, row.finish = True, "length"


def _cache_kwarg(model) -> str:
    """``cache`` in recent transformers, ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _accept(row: Row, tok: int, lp: float, tokenizer, eos_ids: set[int]) -> None:
    c = row.constraint
    if tok in eos_ids:  # constraints only allow EOS where the output is complete
        row.done, row.finish = True, "stop"
        return
    row.out_ids.append(tok)
    row.logprobs.append(lp)
    if c is not None:
        c.advance(tok)
        if c.done:
            row.done, row.finish = True, "stop"
    stops = row.request.stop
    if stops:
        text = tokenizer.decode(row.out_ids, skip_special_tokens=True)
        hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
        if hits:
            row.cut, row.done, row.finish = min(hits), True, "stop"
            return
    if not row.done and len(row.out_ids) >= row.request.max_tokens:
        row.done, row.finish = True, "length"


def to_response(row: Row, tokenizer, model_name: str) -> Response:
    text = tokenizer.decode(row.out_ids, skip_special_tokens=True)
    logprobs = row.logprobs
    if row.cut is not None:
        text = text[:row.cut]
        keep = len(row.out_ids)
        while keep > 0 and len(tokenizer.decode(row.out_ids[:keep - 1], skip_special_tokens=True)) >= row.cut:
            keep -= 1
        logprobs = logprobs[:keep]
    parsed = None
    if row.request.schema is not None and row.constraint is not None and row.constraint.done:
        import json
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    return Response(text=row.prefill + text, parsed=parsed, prompt_tokens=len(row.prompt_ids),
                    completion_tokens=len(row.out_ids), model=model_name, finish_reason=row.finish,
                    logprobs=list(logprobs) if row.request.logprobs else None)


def score(model, tokenizer, messages: tuple[Message, ...], continuation: str) -> list[float]:
    """Log-probabilities of each token of ``continuation`` (tokenized alone) after the templated messages."""
    prompt = tokenizer.encode(prompt_text(tokenizer, messages, None), add_special_tokens=False)
    cont = tokenizer.encode(continuation, add_special_tokens=False)
    if not cont:
        return []
    ids = torch.tensor([prompt + cont], device=model.device)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1]
        if logits.dtype not in (torch.float16, torch.bfloat16):
            logits = logits.float()
        # the kernels' dispatch: Triton on CUDA, the chunked torch reference on CPU
        return token_logprobs(logits, torch.tensor(cont, device=logits.device)).cpu().tolist()
