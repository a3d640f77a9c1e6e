"""The embedded local engine on the real bundled model (SmolLM2-135M-Instruct): text, prefill, stop, log-probs,
micro-batching, seeded sampling, spec errors. Generations are short; the model loads once (``get_engine`` reuses
the engine object for the same spec)."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest
import torch

from textopt.engines import Request, get_engine
from textopt.errors import EngineSpecError

pytestmark = pytest.mark.local


@pytest.fixture(scope="module")
def engine():
    eng = get_engine("local")
    eng.load()
    return eng


def run(coro):
    return asyncio.run(coro)


def test_generates_real_text_with_token_counts(engine):
    resp = run(engine.generate(Request.chat("What is the capital of France? Answer in one sentence.",
                                            max_tokens=16)))
    assert "Paris" in resp.text
    assert resp.prompt_tokens > 10 and 0 < resp.completion_tokens <= 16
    assert resp.finish_reason in ("stop", "length") and resp.model


def test_prefill_is_part_of_text_and_stop_cuts_before_the_stop_string(engine):
    base = Request.chat("Name three colours, separated by commas.", max_tokens=20, prefill="<ANSWER>")
    full = run(engine.generate(base))
    assert full.text.startswith("<ANSWER>")
    generated = full.text[len("<ANSWER>"):]
    words = [w for w in generated.replace(",", " ").split() if len(w) > 2]
    assert len(words) >= 2, full.text
    stop_word = words[1]  # greedy decoding: the same run, cut where this word starts
    cut = run(engine.generate(dataclasses.replace(base, stop=("</ANSWER>", stop_word))))
    assert cut.text == "<ANSWER>" + generated[:generated.find(stop_word)]
    assert stop_word not in cut.text[len("<ANSWER>"):]
    assert cut.finish_reason == "stop" and cut.completion_tokens < full.completion_tokens


def test_tag_prefill_and_closing_stop(engine):
    req = Request.chat("Give a better name for a cat called Tom.", max_tokens=24, prefill="<NAME>",
                       stop=("</NAME>",))
    resp = run(engine.generate(req))
    assert resp.text.startswith("<NAME>") and "</NAME>" not in resp.text


def test_logprobs_agree_with_score_and_a_manual_forward(engine):
    msgs = Request.chat("Say hello to Bob.").messages
    resp = run(engine.generate(Request(messages=msgs, max_tokens=10, logprobs=True)))
    assert resp.logprobs is not None and len(resp.logprobs) == resp.completion_tokens
    assert all(lp <= 0 for lp in resp.logprobs)
    scored = run(engine.score(msgs, resp.text))
    tok, model = engine._tok, engine._model
    prompt = tok.apply_chat_template([{"role": "user", "content": "Say hello to Bob."}], add_generation_prompt=True,
                                     tokenize=False)
    p_ids = tok.encode(prompt, add_special_tokens=False)
    c_ids = tok.encode(resp.text, add_special_tokens=False)
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([p_ids + c_ids])).logits[0].float()
    manual = torch.log_softmax(logits, -1)[torch.arange(len(p_ids) - 1, len(p_ids) + len(c_ids) - 1),
                                           torch.tensor(c_ids)]
    assert len(scored) == len(c_ids)
    assert torch.allclose(torch.tensor(scored), manual, atol=1e-4)
    if len(c_ids) == len(resp.logprobs):  # same tokens as generated: the KV-cached decode agrees too
        assert torch.allclose(torch.tensor(resp.logprobs), torch.tensor(scored), atol=2e-3)
    # a continuation the model would not write scores lower per token than its own greedy answer
    odd = run(engine.score(msgs, "Purple elephants compute taxes."))
    assert sum(odd) / len(odd) < sum(scored) / len(scored)


def test_concurrent_requests_are_micro_batched_and_match_sequential(engine):
    prompts = ["Name a fruit.", "Name a planet.", "What is 2+2?", "Name a colour."]
    reqs = [Request.chat(p, max_tokens=8) for p in prompts]
    sequential = [run(engine.generate(r)).text for r in reqs]
    before = engine.stats["generate_calls"]

    async def together():
        return await asyncio.gather(*(engine.generate(r) for r in reqs))

    batched = [r.text for r in run(together())]
    assert batched == sequential
    assert engine.stats["generate_calls"] - before < len(reqs)


def test_sampling_is_seeded_per_request(engine):
    req = Request.chat("Write a made-up word.", max_tokens=8, temperature=1.0, seed=7)
    a = run(engine.generate(req)).text
    b = run(engine.generate(req)).text
    others = {run(engine.generate(dataclasses.replace(req, sample_index=i))).text for i in (1, 2, 3)}
    assert a == b
    assert others - {a}, "different sample indexes should give different samples"


def test_sync_wrapper_and_threads_share_one_worker(engine):
    import threading

    out: list[str] = []
    req = Request.chat("Name a fruit.", max_tokens=6)
    threads = [threading.Thread(target=lambda: out.append(engine.generate_sync(req).text)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 3 and len(set(out)) == 1


def test_bad_local_path_is_one_clear_error(tmp_path):
    with pytest.raises(EngineSpecError, match="does not exist"):
        get_engine("local:/no/such/model.gguf")
    with pytest.raises(EngineSpecError, match="without config.json"):
        get_engine(f"local:{tmp_path}")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(EngineSpecError, match="not a .gguf file"):
        get_engine(f"local:{tmp_path / 'weights.bin'}")


def test_converted_model_cache_exists(engine):
    from textopt.engines.local.model import cache_dir_for

    folder = cache_dir_for(engine.source.path)
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert "quantization_config" not in (folder / "config.json").read_text()


def test_local_path_to_a_model_folder_and_context_errors(engine):
    """'local:FOLDER' loads a Hugging Face folder (here: the converted cache of the bundled model) and answers
    exactly like the bundled engine; a prompt beyond the context window is one clear error."""
    from textopt.engines.local.model import cache_dir_for
    from textopt.errors import ContextLengthError

    folder = get_engine(f"local:{cache_dir_for(engine.source.path)}")
    assert folder is not engine and folder.source.kind == "folder"
    req = Request.chat("Name a planet.", max_tokens=6)
    assert run(folder.generate(req)).text == run(engine.generate(req)).text
    with pytest.raises(ContextLengthError, match="context"):
        run(engine.generate(Request.chat("word " * 9000, max_tokens=4)))
