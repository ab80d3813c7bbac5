"""Base models a run can start from: the catalogue, local folders, and (when reachable) the Hub.

Catalogue models are built once into the model cache as safetensors; later loads take under a
second. Builds go to a temporary folder renamed into place, under a file lock, so two workers
never see (or write) a half-built model.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from urllib.parse import urlparse

from filelock import FileLock

from app.domain.catalogue import CATALOGUE_KEYS, SMOLLM2_GGUF, ModelNotFound, smollm2_folder

HUB_PROBE_TIMEOUT_S = 3.0


def resolve_model(name: str, cache_dir: Path) -> Path:
    """The local folder holding the model's config.json, building or downloading it if needed."""
    if name in CATALOGUE_KEYS:
        return _cached(name, Path(cache_dir))
    folder = Path(name).expanduser()
    if (folder / "config.json").is_file():
        return folder
    if folder.is_absolute() or name.startswith((".", "~")) or folder.is_dir():
        raise ModelNotFound(f"could not load {name!r}: the folder has no config.json")
    return _from_hub(name)


def load_model_and_tokenizer(name: str, cache_dir: Path, *, device: str):
    """(model, tokenizer) ready for training on ``device``; the tokenizer always has a pad token."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_model(name, cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # float32 on CPU: bf16 matmuls are slow there. On a GPU with bf16 the frozen base weights go
    # bf16 (as Unsloth loads them; LoRA weights stay float32), else float32 under fp16 autocast:
    # "auto" would keep the catalogue's float32 checkpoints at twice the memory.
    on_bf16_gpu = device != "cpu" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if on_bf16_gpu else torch.float32
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, device_map=device)
    return model, tokenizer


def _cached(key: str, cache_dir: Path) -> Path:
    target = cache_dir / key
    if (target / "config.json").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / f".{key}.lock")):
        if (target / "config.json").is_file():  # another worker built it while we waited
            return target
        shutil.rmtree(target, ignore_errors=True)  # without config.json it is not a model we built
        building = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_dir))
        try:
            BUILDERS[key](building, cache_dir)
            # mkdtemp (and the safetensors writer) leave owner-only modes; other users of the
            # cache, such as a web process under another account, need to read the model.
            for path in [building, *building.iterdir()]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            os.replace(building, target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return target


def _build_smollm2(folder: Path, cache_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, GgufConfig

    source = smollm2_folder()
    # Without dequantize=True the model keeps transformers' GGUF quantizer, which declares it
    # neither trainable nor serialisable; with it we get (and save) a plain float32 model.
    model = AutoModelForCausalLM.from_pretrained(
        source, gguf_file=SMOLLM2_GGUF, quantization_config=GgufConfig(dequantize=True)
    )
    model.save_pretrained(folder)
    _smollm2_tokenizer(cache_dir).save_pretrained(folder)


def _build_tiny_llama(folder: Path, cache_dir: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _smollm2_tokenizer(cache_dir)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)  # the same random weights on every machine
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _smollm2_tokenizer(cache_dir: Path):
    from transformers import AutoTokenizer

    converted = cache_dir / "smollm2-135m-instruct"
    if (converted / "config.json").is_file():  # much faster than parsing the GGUF again
        tokenizer = AutoTokenizer.from_pretrained(converted)
    else:
        tokenizer = AutoTokenizer.from_pretrained(smollm2_folder(), gguf_file=SMOLLM2_GGUF)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ModelNotFound("the SmolLM2 GGUF carries no chat template")
    return tokenizer


BUILDERS = {"smollm2-135m-instruct": _build_smollm2, "tiny-random-llama": _build_tiny_llama}


def _from_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"]
    try:  # already downloaded: no network needed
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure here just means "not cached"
        pass
    # huggingface_hub retries an unreachable Hub for ~25 s; a quick probe fails fast instead.
    reason = _hub_unreachable_reason()
    if reason:
        raise ModelNotFound(
            f"could not load {repo_id!r}: not a catalogue model, not a local folder, and the "
            f"Hugging Face Hub is unreachable ({reason})"
        )
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as error:  # noqa: BLE001 - the Hub raises many kinds; the message says which
        raise ModelNotFound(
            f"could not load {repo_id!r} from the Hugging Face Hub: {error}"
        ) from error


def _hub_unreachable_reason() -> str | None:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return "HF_HUB_OFFLINE is set"
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or 443

    def connect() -> None:
        socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S).close()

    # A thread bounds the DNS lookup too, which socket timeouts do not cover.
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(connect).result(timeout=HUB_PROBE_TIMEOUT_S)
    except FutureTimeout:
        return f"no answer from {host} within {HUB_PROBE_TIMEOUT_S:.0f} s"
    except OSError as error:
        return f"{host}: {error}"
    finally:
        pool.shutdown(wait=False)
    return None
