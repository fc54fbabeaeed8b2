"""Images and documents through the official `openai` client: chat completions' `image_url`
(a data URL and an http URL) and `file` (`file_data`), the Responses API's `input_image` and
`input_file`. The fake CLI and the fake Anthropic API describe each attachment of the user
message in their answer (` [image base64 image/png <n> bytes sha256:<8 hex>]`,
` [image url <url>]`, ...), so the test checks what reached the model: size and digest of the
decoded bytes. Bad attachments are 400s naming the part."""
import base64
import hashlib
import struct
import zlib

import openai
import pytest

from conftest import KEY

MODEL = "sonnet"
IMAGE_URL = "http://example.com/cat.png"


def client(server):
    return openai.OpenAI(base_url=server["url"] + "/v1", api_key=KEY, max_retries=0, timeout=60)


def png(width=2, height=2):
    """A small valid PNG (RGB, all red)."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = png()
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def data_url(media_type, raw):
    return f"data:{media_type};base64,{base64.b64encode(raw).decode()}"


def described(kind, media_type, raw):
    """How the fakes describe a base64 attachment."""
    digest = hashlib.sha256(raw).hexdigest()[:8]
    return f"[{kind} base64 {media_type} {len(raw)} bytes sha256:{digest}]"


def test_chat_images_and_a_pdf_reach_the_model(server):
    r = client(server).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what do you see?"},
        {"type": "image_url", "image_url": {"url": data_url("image/png", PNG), "detail": "low"}},
        {"type": "image_url", "image_url": {"url": IMAGE_URL}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": data_url("application/pdf", PDF)}},
    ]}])
    answer = r.choices[0].message.content
    assert "what do you see?" in answer
    assert described("image", "image/png", PNG) in answer, answer
    assert f"[image url {IMAGE_URL}]" in answer, answer
    assert described("document", "application/pdf", PDF) in answer, answer


def test_responses_input_image_and_input_file_reach_the_model(server):
    r = client(server).responses.create(model=MODEL, input=[{"role": "user", "content": [
        {"type": "input_text", "text": "look at these"},
        {"type": "input_image", "image_url": data_url("image/png", PNG), "detail": "auto"},
        {"type": "input_image", "image_url": IMAGE_URL},
        {"type": "input_file", "filename": "a.pdf", "file_data": data_url("application/pdf", PDF)},
    ]}])
    answer = r.output_text
    assert "look at these" in answer
    assert described("image", "image/png", PNG) in answer, answer
    assert f"[image url {IMAGE_URL}]" in answer, answer
    assert described("document", "application/pdf", PDF) in answer, answer


def test_a_few_images_near_the_5_mb_limit_fit_in_one_request(server):
    # Three images of 4.5 MB of base64 each: a 13.5 MB body, under `server.max_body_bytes`.
    images = [PNG + bytes([i]) * (3_375_000 - len(PNG)) for i in range(3)]
    content = [{"type": "text", "text": "three large images"}]
    content += [{"type": "image_url", "image_url": {"url": data_url("image/png", raw)}}
                for raw in images]
    r = client(server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}])
    answer = r.choices[0].message.content
    if server["kind"] == "fake":
        for raw in images:
            assert described("image", "image/png", raw) in answer, answer[:500]
    else:
        # The real CLI re-encodes images over about 500 KB itself (smaller, as JPEG) before
        # they go to the model: three images still arrive.
        assert answer.count("[image base64 ") == 3, answer[:500]


def bad_request(call):
    with pytest.raises(openai.BadRequestError) as e:
        call()
    return e.value.param, e.value.message


def test_bad_chat_attachments_are_400s_naming_the_part(server):
    c = client(server)

    def chat(messages):
        return lambda: c.chat.completions.create(model=MODEL, messages=messages)

    def image(url):
        return {"type": "image_url", "image_url": {"url": url}}

    param, message = bad_request(chat([{"role": "user", "content": [
        {"type": "text", "text": "x"}, image("data:image/png;base64,%%%not-base64")]}]))
    assert param == "messages[0].content[1].image_url.url" and "base64" in message
    param, message = bad_request(chat([{"role": "user", "content": [
        image(data_url("image/tiff", PNG))]}]))
    assert param == "messages[0].content[0].image_url.url" and "image/tiff" in message
    param, message = bad_request(chat([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [image(data_url("image/png", PNG))]},
        {"role": "user", "content": "and?"}]))
    assert param == "messages[1].content[0]" and "user messages" in message


def test_bad_responses_attachments_are_400s_naming_the_part(server):
    c = client(server)

    def respond(content, role="user"):
        return lambda: c.responses.create(model=MODEL, input=[{"role": role, "content": content}])

    param, message = bad_request(respond([
        {"type": "input_text", "text": "x"},
        {"type": "input_image", "image_url": "data:image/png;base64,%%%not-base64"}]))
    assert param == "input[0].content[1].image_url" and "base64" in message
    param, message = bad_request(respond([
        {"type": "input_image", "image_url": data_url("image/tiff", PNG)}]))
    assert param == "input[0].content[0].image_url" and "image/tiff" in message
    param, message = bad_request(respond([
        {"type": "input_image", "image_url": data_url("image/png", PNG)}], role="assistant"))
    assert param == "input[0].content[0]" and "user messages" in message
