"""Export requests and the Ollama Modelfile derived from a chat template (no model needed: the
templates render through transformers' own Jinja chat-template renderer)."""

from __future__ import annotations

import pytest

from app.domain.errors import Invalid
from app.domain.exports import check_request
from worker.exports.build import chat_pieces, modelfile, ollama_template

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
          "message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] "
          "+ '<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
          "{% endif %}")
# No system role, and turns that do not share one ending: not of the shape a TEMPLATE is built for.
ODD = ("{% for message in messages %}{% if message['role'] == 'system' %}"
       "{{ raise_exception('no system role') }}{% endif %}{{ message['content'] }}{% endfor %}")


def renderer(template: str, bos: str = "<s>"):
    from transformers.utils.chat_template_utils import render_jinja_template

    def render(messages, opened):
        rendered, _ = render_jinja_template(conversations=[messages], chat_template=template,
                                            add_generation_prompt=opened, bos_token=bos)
        return rendered[0]

    return render


def go_render(template: str, messages: list[dict[str, str]]) -> str:
    """Ollama's rendering of the Go template ``ollama_template`` writes (its subset only)."""
    import re

    head, body, tail = re.fullmatch(
        r"(\{\{ range \.Messages \}\})(.*)\{\{ end \}\}\{\{ end \}\}(.*)", template, re.S).groups()
    assert head
    branches = dict(re.findall(r'eq \.Role "(\w+)" \}\}(.*?)\{\{ (?:else if|end)', body + "{{ end",
                               re.S))
    return "".join(branches[m["role"]].replace("{{ .Content }}", m["content"])
                   for m in messages) + tail


@pytest.mark.parametrize("template,bos", [(CHATML, "<|im_start|>"), (LLAMA3, "<|begin_of_text|>")])
def test_template_reproduces_the_chat_template(template: str, bos: str) -> None:
    render = renderer(template, bos)
    pieces = chat_pieces(render, bos)
    assert pieces is not None
    go = ollama_template(pieces)
    assert "{{-" not in go  # it would trim the turns' newlines
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "2+2?"}]
    expected = render(messages, True)
    if template is LLAMA3:  # llama.cpp writes BOS itself: the TEMPLATE leaves it out
        assert expected.startswith(bos)
        expected = expected[len(bos):]
    assert go_render(go, messages) == expected


def test_chatml_pieces_and_stops() -> None:
    pieces = chat_pieces(renderer(CHATML, "<|im_start|>"), "<|im_start|>")
    assert pieces == {"system": "<|im_start|>system\n", "user": "<|im_start|>user\n",
                      "assistant": "<|im_start|>assistant\n", "end": "<|im_end|>\n"}
    text = modelfile("m-q8_0.gguf", pieces=pieces, stops=["<|im_end|>"],
                     system_prompt="Answer briefly.", source="run 3")
    assert text.splitlines()[1] == "FROM ./m-q8_0.gguf"
    assert 'PARAMETER stop "<|im_end|>"' in text and 'SYSTEM """Answer briefly."""' in text


def test_template_of_another_shape_is_left_to_ollama() -> None:
    assert chat_pieces(renderer(ODD), "<s>") is None
    text = modelfile("m.gguf", pieces=None, stops=["</s>"], system_prompt=None, source="run 1")
    assert "TEMPLATE" not in text.replace("No TEMPLATE", "") and "SYSTEM" not in text


@pytest.mark.parametrize("kind,quantization,expected", [
    ("gguf", None, "q8_0"), ("gguf", "bf16", "bf16"), ("gguf", "q4_K_M", "q4_K_M"),
    ("adapter_gguf", None, "f16"), ("merged", None, None), ("merged", "", None),
])
def test_accepted_requests(kind: str, quantization: str | None, expected: str | None) -> None:
    assert check_request(kind, quantization) == expected


@pytest.mark.parametrize("kind,quantization,message", [
    ("gguf", "q4_0", "unknown quantization 'q4_0' for a gguf export: choose one of q8_0, f16"),
    ("adapter_gguf", "q4_K_M", "choose one of f16, bf16, q8_0"),
    ("merged", "f16", "leave quantization empty"),
    ("safetensors", None, "unknown export kind 'safetensors'"),
])
def test_refused_requests(kind: str, quantization: str | None, message: str) -> None:
    with pytest.raises(Invalid, match=message.replace("(", r"\(")):
        check_request(kind, quantization)
