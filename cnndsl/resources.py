"""Where the package's data folders are: installed (cnndsl/grammar, cnndsl/zoo) or in a checkout.

Plain paths first: importlib.resources costs a tenth of `cnndsl check`'s start-up.
"""
from __future__ import annotations

from pathlib import Path


def data_folder(installed: str, in_checkout: str):
    """The folder installed as cnndsl/<installed>, or <in_checkout>/ beside the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here / installed, here.parent / in_checkout):
        if candidate.is_dir():
            return candidate
    from importlib import resources  # e.g. a zipped install

    return resources.files(f"cnndsl.{installed}")
