"""How the core tests cut client bytes before feeding them (h11's ``tr()``
idea): whole, one byte at a time, or at chosen points. Shared by every core."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

__all__ = ["SPLITTERS", "bytewise", "split_at", "whole"]


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


SPLITTERS = {"whole": whole, "bytewise": bytewise}
