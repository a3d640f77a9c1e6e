"""The library computes through the kernels' dispatch, with the results it had before on CPU (bitwise): the local
engine's ``score`` (token log-probabilities) and the embedding bridge's cosine."""
from types import SimpleNamespace

import pytest
import torch

import textopt.numeric as N
from textopt import Variable
from textopt.engines.local import generate
from textopt.engines.types import Message
from textopt.errors import KernelError
from textopt.kernels import cosine, dispatch, reference


class _Tokenizer:
    def apply_chat_template(self, msgs, add_generation_prompt, tokenize):
        return "|".join(m["content"] for m in msgs) + "|"

    def encode(self, text, add_special_tokens=False):
        return [(ord(ch) % 50) + 1 for ch in text]


class _Model:
    """Fixed random logits, one row per position (what ``score`` reads: ``model(input_ids=...).logits``)."""
    device = torch.device("cpu")

    def __init__(self, vocab=97, dtype=torch.float32):
        self.vocab, self.dtype = vocab, dtype

    def __call__(self, input_ids):
        g = torch.Generator().manual_seed(int(input_ids.sum()))
        t = input_ids.shape[1]
        return SimpleNamespace(logits=(torch.randn(1, t, self.vocab, generator=g) * 4).to(self.dtype))


def _eager(model, tok, messages, continuation):
    """What score computed before it went through the kernels (log_softmax + gather in eager torch)."""
    prompt = tok.encode(generate.prompt_text(tok, messages, None))
    cont = tok.encode(continuation)
    logits = model(input_ids=torch.tensor([prompt + cont])).logits[0, len(prompt) - 1:-1].float()
    return torch.log_softmax(logits, -1).gather(1, torch.tensor(cont)[:, None])[:, 0].tolist()


@pytest.mark.parametrize("continuation", ["a", "the answer is 42", "x" * 300])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_score_goes_through_token_logprobs_with_the_same_numbers(continuation, dtype, monkeypatch):
    calls = []
    real = reference.token_logprobs_chunked
    monkeypatch.setattr(reference, "token_logprobs_chunked", lambda *a: calls.append(1) or real(*a))
    model, tok = _Model(dtype=dtype), _Tokenizer()
    messages = (Message("system", "be brief"), Message("user", "what is 6 x 7?"))
    got = generate.score(model, tok, messages, continuation)
    assert calls, "score reaches the kernels' CPU path"
    assert got == _eager(model, tok, messages, continuation)   # bitwise
    assert generate.score(model, tok, messages, "") == []


def test_the_chunked_path_rounds_like_eager_log_softmax(monkeypatch):
    monkeypatch.setattr(reference, "_rows", lambda t, v, budget=0: 3)   # several row blocks
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(11, 1000, generator=g) * 6, torch.randint(0, 1000, (11,), generator=g)
    got = dispatch.token_logprobs(x, y, backend="torch")
    assert torch.equal(got, torch.log_softmax(x, -1).gather(1, y[:, None])[:, 0])


def _embed(text: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(sum(map(ord, text)))
    return torch.randn(32, generator=g)


@pytest.mark.parametrize("learnable", [False, True])
def test_embedding_similarity_uses_the_kernels_cosine_with_the_same_numbers(learnable, monkeypatch):
    calls = []
    monkeypatch.setattr(N.to_number, "cosine", lambda *a, **k: calls.append(1) or cosine(*a, **k))
    vec = torch.randn(32, generator=torch.Generator().manual_seed(5), requires_grad=learnable)
    x = Variable("some answer", role="answer", requires_grad=True)
    other_input = Variable(vec, role="target direction", requires_grad=True) if learnable else "a reference"
    sim = N.EmbeddingSimilarity(_embed)(x, other_input)
    other = vec if learnable else _embed("a reference")
    expected = torch.nn.functional.cosine_similarity(_embed("some answer"), other, dim=0)
    assert calls and torch.equal(sim.value.detach(), expected.detach())
    if learnable:
        sim.value.backward()
        v2 = vec.detach().clone().requires_grad_()
        torch.nn.functional.cosine_similarity(_embed("some answer"), v2, dim=0).backward()
        assert torch.equal(vec.grad, v2.grad)


def test_cosine_refuses_what_it_cannot_compare():
    with pytest.raises(KernelError, match="same length"):
        cosine(torch.ones(3), torch.ones(4), dim=0)
    with pytest.raises(KernelError, match="floating-point"):
        cosine(torch.ones(3, dtype=torch.long), torch.ones(3))
