"""The options of `saattn ring` and their pattern syntax, without torch: the CLI builds its parser from them."""
from __future__ import annotations

import argparse

from ..patterns import BigBird, DilatedWindow, SlidingWindow


def parse_pattern(text):
    """'dense' | 'window:W' | 'dilated:W:D' | 'bigbird:BLOCK' -> Pattern or None."""
    if text in (None, "", "dense"):
        return None
    kind, _, rest = text.partition(":")
    try:
        if kind == "window":
            return SlidingWindow(int(rest))
        if kind == "dilated":
            w, d = rest.split(":")
            return DilatedWindow(int(w), int(d))
        if kind == "bigbird":  # block-sparse: 3 window, 2 global and 3 random blocks of BLOCK tokens (seed 0)
            return BigBird(block=int(rest))
    except ValueError as err:
        raise ValueError(f"--pattern {text!r}: {err}") from None
    raise ValueError(f"--pattern must be 'dense', 'window:W', 'dilated:W:D' or 'bigbird:BLOCK', got {text!r}")


DESCRIPTION = ("Ring attention over local processes (gloo) or a torchrun job (nccl); checks sampled rows against "
               "dense attention.")


def build_parser():
    p = argparse.ArgumentParser(prog="saattn ring", description=DESCRIPTION)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `saattn ring` (shared by the CLI and `python -m saattn_edu.distributed.launch`)."""
    p.add_argument("--world-size", type=int, default=2, help="processes to spawn (ignored under torchrun)")
    # torchrun reads a bare --n as an abbreviation of its own options: under torchrun write --seq-len.
    p.add_argument("--n", "--seq-len", dest="n", type=int, default=4096, help="sequence length")
    p.add_argument("--d", type=int, default=64, help="head dimension")
    p.add_argument("--heads", type=int, default=1)
    p.add_argument("--causal", action="store_true")
    p.add_argument("--layout", choices=("contiguous", "zigzag", "striped"), default=None,
                   help="token split (default: zigzag when causal, else contiguous)")
    p.add_argument("--pattern", default="dense", help="dense | window:W | dilated:W:D | bigbird:BLOCK")
    p.add_argument("--backend", choices=("gloo", "nccl"), default="gloo")
    p.add_argument("--backward", action="store_true", help="also time the backward pass")
    p.add_argument("--check-rows", type=int, default=64, help="query rows compared with dense attention")
    p.add_argument("--timeout", type=float, default=600.0, help="process-group timeout in seconds")
