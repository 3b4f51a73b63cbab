"""The progress bar of our own long loops (scoring, training): tqdm with a throughput unit, quiet when
stderr is not a terminal (logs and CI stay clean) or when the caller turns it off."""

from __future__ import annotations


def progress_bar(total: int, desc: str, *, unit: str = "pair", enabled: bool = True):
    """A tqdm bar counting ``unit``s, showing ``unit``/s; ``disable=None`` hides it off a TTY."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=None if enabled else True, dynamic_ncols=True)
