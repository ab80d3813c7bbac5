"""Build an export's files in a local folder: the merged model (base + adapter through PEFT's
``merge_and_unload``, saved in the base's dtype with its tokenizer, chat template and generation
config), a GGUF of it through llama.cpp's converter (plus ``llama-quantize`` for k-quants) with an
Ollama ``Modelfile``, or the adapter alone through ``convert_lora_to_gguf.py``."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker.exports.converter import run_converter

# Quantisations llama.cpp's converter writes itself; the others go through llama-quantize.
CONVERTER_TYPES = {"f16", "bf16", "q8_0", "f32"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "chat_template.jinja", "tokenizer.model")
Progress = Callable[[str, float], None]


def base_dtype(base_folder: Path) -> str:
    """The dtype the base checkpoint is stored in (config.json), "float32" when unstated."""
    config = json.loads((base_folder / "config.json").read_text())
    return str(config.get("dtype") or config.get("torch_dtype") or "float32")


def merge(base_folder: Path, adapter_folder: Path, out: Path) -> dict[str, Any]:
    """base + adapter → one plain Hugging Face model folder; returns details for the row."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    dtype_name = base_dtype(base_folder)
    dtype = getattr(torch, dtype_name)
    model = AutoModelForCausalLM.from_pretrained(base_folder, dtype=dtype, device_map="cpu")
    model = PeftModel.from_pretrained(model, str(adapter_folder))
    merged = model.merge_and_unload()
    merged.to(dtype)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    # The checkpoint's tokenizer is the one training used (a pad token set, say); the base's
    # otherwise.
    source = adapter_folder if (adapter_folder / "tokenizer_config.json").is_file() else (
        base_folder)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if not tokenizer.chat_template:
        base_tokenizer = AutoTokenizer.from_pretrained(base_folder)
        tokenizer.chat_template = base_tokenizer.chat_template
    tokenizer.save_pretrained(out)
    # A base without one keeps the defaults save_pretrained wrote.
    with contextlib.suppress(OSError):
        GenerationConfig.from_pretrained(base_folder).save_pretrained(out)
    return {"dtype": dtype_name, "has_chat_template": bool(tokenizer.chat_template)}


def convert_gguf(merged: Path, out_file: Path, quantization: str, *, log_file=None,
                 llama_quantize: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """A merged folder → one GGUF file of ``quantization``."""
    if quantization in CONVERTER_TYPES:
        run_converter("convert_hf_to_gguf.py", [str(merged), "--outtype", quantization,
                                                "--outfile", str(out_file)], log_file=log_file)
        return
    binary = llama_quantize or shutil.which("llama-quantize")
    if binary is None:
        raise RuntimeError(
            f"{quantization} needs llama.cpp's llama-quantize binary, which is not on this "
            "worker's PATH: install llama.cpp there (it ships llama-quantize), or export q8_0, "
            "f16 or bf16, which llama.cpp's converter writes itself")
    f16 = out_file.with_suffix(".f16.gguf")
    run_converter("convert_hf_to_gguf.py", [str(merged), "--outtype", "f16", "--outfile",
                                            str(f16)], log_file=log_file)
    result = subprocess.run([binary, str(f16), str(out_file), quantization.upper()],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    f16.unlink(missing_ok=True)
    if result.returncode != 0:
        tail = "\n".join(result.stdout.decode("utf-8", "replace").splitlines()[-12:])
        raise RuntimeError(f"llama-quantize exited with code {result.returncode}:\n{tail}")


def convert_adapter_gguf(adapter_folder: Path, base_folder: Path, out_file: Path,
                         quantization: str, *, log_file=None) -> None:  # type: ignore[no-untyped-def]
    """The LoRA adapter alone as a GGUF (llama.cpp's ``--lora``), against the base's config."""
    run_converter("convert_lora_to_gguf.py", [str(adapter_folder), "--base", str(base_folder),
                                              "--outtype", quantization, "--outfile",
                                              str(out_file)], log_file=log_file)


# Markers rendered through the chat template to find what it puts around each role's content.
SYSTEM, USER, ASSISTANT = "\x01TD-SYSTEM\x01", "\x01TD-USER\x01", "\x01TD-ASSISTANT\x01"


def chat_pieces(render: Callable[[list[dict[str, str]], bool], str], bos: str | None
                ) -> dict[str, str] | None:
    """What a chat template writes before each role's content and after every turn, found by
    rendering marker messages; None when the template is not of that shape (then Ollama falls
    back to the template it reads from the GGUF itself). ``render(messages, add_generation)``."""
    conversation = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER},
                    {"role": "assistant", "content": ASSISTANT}]
    try:
        full = render(conversation, False)
        opened = render(conversation[:2], True)
    except Exception:  # noqa: BLE001 - a template that refuses these messages: no TEMPLATE
        return None
    if not all(marker in full for marker in (SYSTEM, USER, ASSISTANT)):
        return None
    system_prefix, rest = full.split(SYSTEM, 1)
    between_su, rest = rest.split(USER, 1)
    between_ua, end = rest.split(ASSISTANT, 1)
    end_of_turn = end
    if not between_su.startswith(end_of_turn) or not between_ua.startswith(end_of_turn):
        return None
    pieces = {"system": system_prefix, "user": between_su[len(end_of_turn):],
              "assistant": between_ua[len(end_of_turn):], "end": end_of_turn}
    # The generation prompt must be the assistant's opening, and rebuilding must give the same
    # text the template does: otherwise this shape is not the template's.
    if opened != pieces["system"] + SYSTEM + end_of_turn + pieces["user"] + USER + end_of_turn + (
            pieces["assistant"]):
        return None
    # A BOS the template writes once at the start (not one that opens every turn, as SmolLM2's
    # <|im_start|> does): llama.cpp adds it itself.
    if bos and pieces["system"].startswith(bos) and not pieces["user"].startswith(bos):
        pieces["system"] = pieces["system"][len(bos):]
    if any("{{" in piece or '"""' in piece for piece in pieces.values()):
        return None
    return pieces


def ollama_template(pieces: dict[str, str]) -> str:
    """Ollama's Go template for those pieces (no ``{{-``: it would trim the turns' newlines)."""
    end = pieces["end"]
    branches = "".join(
        f'{"if" if i == 0 else "else if"} eq .Role "{role}" }}}}{pieces[role]}{{{{ .Content }}}}'
        f'{end}{{{{ '
        for i, role in enumerate(("system", "user", "assistant")))
    return f"{{{{ range .Messages }}}}{{{{ {branches}end }}}}{{{{ end }}}}{pieces['assistant']}"


def modelfile(gguf_name: str, *, pieces: dict[str, str] | None, stops: list[str],
              system_prompt: str | None, source: str) -> str:
    lines = [f"# Written by TuneDeck for {source}.", f"FROM ./{gguf_name}"]
    if pieces is not None:
        lines.append(f'TEMPLATE """{ollama_template(pieces)}"""')
    else:
        lines.append("# No TEMPLATE: Ollama uses the chat template stored in the GGUF.")
    for stop in stops:
        lines.append(f"PARAMETER stop {json.dumps(stop)}")
    if system_prompt:
        lines.append(f'SYSTEM """{system_prompt.replace(chr(34) * 3, chr(39) * 3)}"""')
    return "\n".join(lines) + "\n"


def ollama_modelfile(merged: Path, gguf_name: str, *, system_prompt: str | None, source: str
                     ) -> tuple[str, dict[str, Any]]:
    """The Modelfile for the GGUF built from ``merged``, from its tokenizer's chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged)
    pieces = None
    if tokenizer.chat_template:
        pieces = chat_pieces(lambda messages, opened: tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=opened), tokenizer.bos_token)
    stops = []
    if pieces and pieces["end"].strip():
        stops.append(pieces["end"].strip())
    if tokenizer.eos_token and tokenizer.eos_token not in stops:
        stops.append(tokenizer.eos_token)
    text = modelfile(gguf_name, pieces=pieces, stops=stops, system_prompt=system_prompt,
                     source=source)
    return text, {"template": pieces is not None, "stops": stops}
