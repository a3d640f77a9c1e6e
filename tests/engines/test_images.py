"""Images through both official SDKs against the loopback servers: the request carries the image as the
provider's content part, cache keys use the content hash (not the path), cassettes hold no image bytes, and a
text-only engine refuses an image with one clear error."""
from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from textopt.engines import ImagePart, Request, get_engine
from textopt.errors import BadRequestError, InvalidVariableError, UnsupportedInputError
from textopt.image import ImageVariable, image_part
from textopt.testing.wire import images_of, last_user_text

from .conftest import make


def png(color=(200, 30, 30), size=(8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_request_carries_the_image_through_the_sdk(provider, serve):
    pic = png()
    srv = serve(lambda body: f"{len(images_of(body))} image(s), asked: {last_user_text(body)}")
    eng = make(provider, srv)
    resp = eng.generate_sync(Request.chat("What colour is it?", system="Be brief.", images=[image_part(pic)]))
    assert resp.text == "1 image(s), asked: What colour is it?"
    body = srv.requests[0].body
    assert images_of(body) == [("image/png", pic)]   # the server decoded exactly the bytes we sent
    last = body["messages"][-1]["content"]
    if provider == "openai":
        assert last[0] == {"type": "text", "text": "What colour is it?"}
        assert last[1]["type"] == "image_url" and last[1]["image_url"]["url"].startswith("data:image/png;base64,")
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    else:
        assert last[0]["type"] == "image" and last[0]["source"]["media_type"] == "image/png"
        assert last[-1] == {"type": "text", "text": "What colour is it?"}
        assert body["system"] == "Be brief."


def test_text_only_requests_are_unchanged_on_the_wire(serve):
    srv = serve("ok")
    make("openai", srv).generate_sync(Request.chat("hi"))
    assert srv.requests[0].body["messages"] == [{"role": "user", "content": "hi"}]


def test_cache_key_is_the_content_hash_not_the_path(tmp_path):
    pic = png()
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(pic)
    b.write_bytes(pic)
    key = lambda im: Request.chat("q", images=[image_part(im)]).key("m")  # noqa: E731
    assert key(a) == key(b) == key(pic)
    assert key(png(color=(0, 0, 255))) != key(a)
    assert Request.chat("q").key("m") != key(a)
    canonical = json.dumps(Request.chat("q", images=[image_part(a)]).canonical("m"))
    assert "a.png" not in canonical and image_part(a).sha256 in canonical and image_part(a).base64() not in canonical
    # a text-only request's key is what it was before images existed (old caches and cassettes still match)
    assert "images" not in Request.chat("q").canonical("m")


def test_cache_hit_for_the_same_picture_from_another_file(serve, tmp_path):
    srv = serve("red")
    eng = make("openai", srv, cache="memory")
    for name in ("one.png", "two.png"):
        (tmp_path / name).write_bytes(png())
        eng.generate_sync(Request.chat("colour?", images=[image_part(tmp_path / name)]))
    assert len(srv.requests) == 1


def test_cassette_replays_image_calls_and_holds_no_image_bytes(serve, tmp_path):
    srv = serve("a red square")
    tape = tmp_path / "calls.jsonl"
    pic = image_part(png())
    make("anthropic", srv, record=tape).generate_sync(Request.chat("what is it?", images=[pic]))
    assert pic.base64()[:40] not in tape.read_text()
    replay = get_engine(f"replay:{tape}")
    assert replay.generate_sync(Request.chat("what is it?", images=[pic])).text == "a red square"


def test_the_local_engine_refuses_images_before_generating(monkeypatch):
    from textopt.engines.base import Engine
    from textopt.engines.local import LocalEngine
    monkeypatch.setattr(LocalEngine, "_send", lambda *a, **k: pytest.fail("the model must not run"))
    eng = LocalEngine.__new__(LocalEngine)   # no model loaded: the refusal comes before any work
    Engine.__init__(eng, "smollm2", name="local")
    with pytest.raises(UnsupportedInputError, match=r"local reads text only.*1 image.*openai:MODEL"):
        eng.generate_sync(Request.chat("q", images=[image_part(png())], node="reader"))


def test_image_sources_agree_and_bad_inputs_are_clear(tmp_path):
    pic = png()
    path = tmp_path / "chart.png"
    path.write_bytes(pic)
    pil = Image.open(io.BytesIO(pic))
    assert image_part(path).sha256 == image_part(pic).sha256 == image_part(str(path)).sha256
    assert image_part(pil).media_type == "image/png" and image_part(path).label == "chart.png"
    with pytest.raises(InvalidVariableError, match="no image file"):
        image_part(tmp_path / "missing.png")
    with pytest.raises(InvalidVariableError, match="not PNG, JPEG, GIF or WebP"):
        image_part(b"%PDF-1.4 not an image")
    with pytest.raises(InvalidVariableError, match="path, bytes or a PIL image"):
        image_part(3.5)
    with pytest.raises(BadRequestError, match="ImagePart"):
        Request.chat("q", images=["chart.png"])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_become_an_image_or_one_clear_error(data):
    try:
        part = image_part(data)
    except InvalidVariableError:
        return
    assert part.media_type in ("image/png", "image/jpeg", "image/gif", "image/webp") and part.data == data


def test_image_variable_is_never_trainable(tmp_path):
    img = ImageVariable(png(), role="a test chart")
    assert not img.requires_grad and not img.is_text and img.grad is None
    assert "image/png" in repr(img) and "sha256" in img.short(200)
    with pytest.raises(InvalidVariableError, match="never trainable text"):
        img.requires_grad = True
    with pytest.raises(InvalidVariableError, match="never trainable text"):
        ImageVariable(png(), requires_grad=True)
    img.value = png(color=(1, 2, 3))
    assert isinstance(img.value, ImagePart) and img.value.sha256 == image_part(png(color=(1, 2, 3))).sha256


def test_a_replay_miss_names_the_images_it_looked_for(serve, tmp_path):
    from textopt.errors import ReplayMissError
    tape = tmp_path / "calls.jsonl"
    make("openai", serve("ok"), record=tape).generate_sync(Request.chat("q", images=[image_part(png())]))
    other = image_part(png(color=(9, 9, 9)))
    with pytest.raises(ReplayMissError, match=f"1 image\\(s\\) by content hash: {other.sha256[:12]}"):
        get_engine(f"replay:{tape}").generate_sync(Request.chat("q", images=[other]))


def test_anthropic_images_go_to_the_user_turn_before_a_prefill(serve):
    srv = serve('{"colour": "red"}')
    resp = make("anthropic", srv).generate_sync(Request.chat("colour as JSON?", prefill="{", images=[image_part(png())]))
    assert resp.text == '{"colour": "red"}'
    user, assistant = srv.requests[0].body["messages"]
    assert user["role"] == "user" and user["content"][0]["type"] == "image"
    assert user["content"][-1] == {"type": "text", "text": "colour as JSON?"} and assistant == {"role": "assistant",
                                                                                                "content": "{"}
