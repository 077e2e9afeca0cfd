"""PYNQ-class boards: part and resources (../shared/DESIGN.md's table,
AMD's product tables for the parts)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Board", "BOARDS", "get_board"]


@dataclass(frozen=True)
class Board:
    """An FPGA board: Xilinx part and its resources (LUTs, flip-flops,
    BRAM36 blocks, DSP slices, URAM blocks)."""

    name: str
    part: str
    lut: int
    ff: int
    bram36: int
    dsp: int
    uram: int = 0

    def capacity(self, resource: str) -> int:
        """Available amount of ``resource`` (``lut``, ``ff``, ``bram36``, ``dsp``, ``uram``)."""
        return int(getattr(self, resource))


BOARDS: dict[str, Board] = {b.name: b for b in (
    Board("pynq-z1", "xc7z020clg400-1", 53_200, 106_400, 140, 220),
    Board("pynq-z2", "xc7z020clg400-1", 53_200, 106_400, 140, 220),
    Board("ultra96-v2", "xczu3eg-sbva484-1-e", 70_560, 141_120, 216, 360),
    Board("kv260", "xck26-sfvc784-2LV-c", 117_120, 234_240, 144, 1_248, 64),
    Board("zcu104", "xczu7ev-ffvc1156-2-e", 230_400, 460_800, 312, 1_728, 96),
)}


def get_board(name: str) -> Board:
    """The :class:`Board` called ``name``.

    Raises:
        KeyError: unknown board (the message lists the known ones).
    """
    try:
        return BOARDS[name]
    except KeyError:
        raise KeyError(f"unknown board {name!r}; choose one of {', '.join(BOARDS)}") from None
