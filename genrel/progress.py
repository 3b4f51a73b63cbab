"""The progress bar of our own long loops (scoring, training): tqdm with a throughput unit, quiet when
stderr is not a terminal (logs and CI stay clean) or when the caller turns it off."""

from __future__ import annotations


def progress_bar(total: int, desc: str, *, unit: str = "pair", enabled: bool = True):
    """A tqdm bar counting ``unit``s, showing ``unit``/s; ``disable=None`` hides it off a TTY."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=None if enabled else True, dynamic_ncols=True)


# Libraries whose progress bars, info logs and advisory warnings a long genrel run hides unless asked.
LIBRARIES = ("transformers", "trl", "peft", "datasets", "accelerate", "sentence_transformers", "huggingface_hub",
             "httpx", "torch", "gguf", "jieba")


def quiet_libraries() -> None:
    """Silence third-party progress bars ("Loading weights", "Tokenizing train dataset"…), their info logs
    and their Future/Deprecation/User warnings, so a run shows genrel's own bars and lines only; errors
    still show."""
    import logging
    import os
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:  # their switches too: a library imported before this call no longer reads the environment
        from huggingface_hub.utils import disable_progress_bars
        from transformers.utils import logging as hf_logging

        disable_progress_bars()
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # the torch-free install: nothing of theirs to silence
        pass
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("genrel").setLevel(logging.WARNING)
