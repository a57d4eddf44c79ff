"""Number options of the command line: one argparse ``type=`` per kind of number, so that
every subcommand (and every executor's own options, :class:`clbench.app.executors.Option`) checks
a number the same way: it parses, is finite, and lies in its range."""

from __future__ import annotations

import argparse
import math


class Number:
    """An argparse ``type=`` for a number option, the same check in every subcommand: the
    number parses, is finite, and lies in its range (``open_low``/``open_high``: the bound
    itself is refused). The message names the valid range; argparse adds the option's name
    and exits 2."""

    def __init__(self, kind: type, low: float | None = None, high: float | None = None,
                 open_low: bool = False, open_high: bool = False):
        self.kind, self.low, self.high = kind, low, high
        self.open_low, self.open_high = open_low, open_high
        noun = "an integer" if kind is int else "a number"
        if low is not None and high is not None:
            self.range = (f"{noun} in {'(' if open_low else '['}{low:g}, {high:g}"
                          f"{')' if open_high else ']'}")
        elif low is not None:
            self.range = f"{noun} {'>' if open_low else '>='} {low:g}"
        else:
            self.range = noun
        self.__name__ = self.range  # what argparse calls the type in its own messages

    def __call__(self, text: str):
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {self.range}, got {text!r}") from None
        if not math.isfinite(value) or (self.low is not None and (
                value < self.low or (self.open_low and value == self.low))) or (
                self.high is not None and (
                    value > self.high or (self.open_high and value == self.high))):
            raise argparse.ArgumentTypeError(f"must be {self.range}, got {text!r}")
        return value

    def __repr__(self) -> str:
        return f"Number({self.range})"


COUNT = Number(int, 1)  # group sizes, trials: at least one
NON_NEGATIVE_INT = Number(int, 0)  # retries, seeds of a sampler
PROBABILITY = Number(float, 0, 1, open_low=True, open_high=True)  # significance levels
NON_NEGATIVE = Number(float, 0)  # tolerated drops, GPU shares
POSITIVE = Number(float, 0, open_low=True)  # CPU shares
VALIDATION = Number(float, 0, 0.5)  # 0: the test split (RunSpec.validation's range)
TUNE_VALIDATION = Number(float, 0, 0.5, open_low=True)  # a search needs a validation split
