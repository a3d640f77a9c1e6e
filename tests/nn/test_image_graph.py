"""Images in a graph: the forward call, the backward call and the optimizer call each carry the image on the
wire (OpenAI forward and backward, Anthropic optimizer, both through their official SDKs)."""
from __future__ import annotations

import io

import pytest
from PIL import Image

import textopt as tx
from textopt.engines.anthropic_engine import AnthropicEngine
from textopt.engines.openai_engine import OpenAIEngine
from textopt.errors import UnsupportedInputError
from textopt.image import image_part
from textopt.nn import ExactMatch, LLMCall
from textopt.optim import TGD
from textopt.testing import LoopbackServer
from textopt.testing.wire import images_of, last_user_text

FAST = dict(retry_initial_wait=0.01, retry_max_wait=1.0, timeout=5.0)


def png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (6, 4), color).save(buf, format="PNG")
    return buf.getvalue()


def colour_of(body) -> str:
    (kind, data), = images_of(body)
    r, g, b = Image.open(io.BytesIO(data)).getpixel((0, 0))[:3]
    return "red" if r > max(g, b) else "blue" if b > max(r, g) else "green"


def responder(body) -> str:
    text = last_user_text(body)
    if "<NEW_VALUE>" in text or "needs a better value" in text:
        return "<NEW_VALUE>Name the colour of the picture in one word.</NEW_VALUE>"
    if "Give feedback on" in text:   # a backward call: it can see the picture too
        return f"The picture is {colour_of(body)}; the prompt should ask for the colour in one word."
    return f"It looks {colour_of(body)} to me."


@pytest.fixture
def servers(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with LoopbackServer(responder) as oa, LoopbackServer(responder) as an:
        yield oa, an


def test_forward_backward_and_optimizer_calls_all_carry_the_image(servers):
    oa, an = servers
    reader = OpenAIEngine("gpt-4o-mini", base_url=oa.openai_base_url, **FAST)
    optimizer_engine = AnthropicEngine("claude-haiku-4-5", base_url=an.url, **FAST)
    picture = tx.ImageVariable(png((220, 10, 10)), role="a photo", label="red.png")
    prompt = tx.Variable("Describe the picture.", role="system prompt of the reader", requires_grad=True)
    answer = LLMCall(reader, system_prompt=prompt)("What colour is this?", images=picture)
    assert answer.value == "It looks red to me."
    assert picture in answer.node.inputs
    loss = ExactMatch()(answer, "red")
    with tx.backward_engine(reader):
        loss.backward()
    assert all(images_of(r.body) == [("image/png", picture.image.data)] for r in oa.requests)
    backward_text = last_user_text(oa.requests[-1].body)
    assert "Give feedback on the system prompt of the reader" in backward_text
    assert "1 image(s), attached to this message" in backward_text and "red.png" in backward_text
    (fb,) = prompt.grad
    assert fb.images == (picture.image,) and "The picture is red" in fb.value
    assert dict(fb.context)["images read with the input"].startswith("red.png, image/png")
    TGD([prompt], engine=optimizer_engine).step()
    assert prompt.value == "Name the colour of the picture in one word."
    (opt_req,) = an.requests
    assert images_of(opt_req.body) == [("image/png", picture.image.data)]
    assert "image(s) read in the pipeline steps above are attached" in last_user_text(opt_req.body)


def test_images_are_never_parameters_and_text_only_engines_refuse_them(servers):
    from textopt.engines import ScriptedEngine
    picture = tx.ImageVariable(png((0, 0, 250)))
    prompt = tx.Variable("Describe.", role="system prompt", requires_grad=True)
    seen = []
    eng = ScriptedEngine(lambda req: seen.append(req.images) or "blue")
    out = LLMCall(eng, system_prompt=prompt)("colour?", images=[picture, png((0, 250, 0))])
    tx.synchronize()   # the call was launched (lazy); its request is sent by now
    assert [im.sha256 for im in seen[0]] == [picture.image.sha256, image_part(png((0, 250, 0))).sha256]
    assert out.requires_grad and not picture.requires_grad
    from textopt.engines.base import Engine

    class TextOnly(Engine):
        provider = "textonly"

        async def _send(self, request):   # pragma: no cover - never reached
            raise AssertionError
    with pytest.raises(UnsupportedInputError, match="textonly:m reads text only.*1 image"):
        LLMCall(TextOnly("m"))("colour?", images=picture)
