"""PYNQ driver of an xnorvit accelerator, and the stream packing it shares
with verification.

This module imports nothing but numpy (and ``pynq`` lazily, on the board), so
``xnorvit bitstream`` copies it unchanged into ``BUILD/vivado/driver.py``
beside the bitstream, the ``.hwh`` and ``accelerator.json``; the whole-network
verification (:mod:`xnorvit.flows.verify`, through
:func:`xnorvit.flows.stitch.pack_beats`) packs its stimuli with the very same
:func:`pack_beats` / :func:`unpack_beats`.

Stream format (FINN's convention, ../shared/DESIGN.md): ``lanes`` values of
``bits`` bits per beat, LSB-first, two's complement for signed types; the
accelerator's ``s_axis``/``m_axis`` carry the payload in the low bits of a
``dma_in_bits``/``dma_out_bits`` word (the AXI DMA's power-of-two width), one
word per beat, little-endian bytes in memory. The input frame is the uint8
image in the graph's layout (``NHWC`` when ``layout`` says so); the output
frame is the graph output: integer logits (``integer``), else values whose
``round(x / logit_scale)`` are the integer logits.

Usage on a PYNQ board (``pip install pynq`` comes with the board image)::

    from driver import Accelerator
    acc = Accelerator("xnorvit_accel.bit")          # accelerator.json beside it
    logits = acc.run(images)                        # (N, C, H, W) uint8 -> (N, classes) int64
    print(acc.last_fps, "frames/s")
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

__all__ = ["pack_beats", "unpack_beats", "pack_images", "unpack_outputs", "load_format", "Accelerator"]


def pack_beats(x: np.ndarray, lanes: int, bits: int) -> list[int]:
    """FINN packing: ``x`` flattened in order, ``lanes`` values of ``bits``
    two's complement per beat, LSB-first. Returns one integer per beat.

    Raises:
        ValueError: ``x.size`` is not a multiple of ``lanes``.
    """
    v = np.asarray(x).reshape(-1)
    if v.size % lanes:
        raise ValueError(f"{v.size} values do not fill beats of {lanes} lanes")
    v = np.rint(v.reshape(-1, lanes)).astype(np.int64)
    mask = (1 << bits) - 1
    return [sum((int(a) & mask) << (k * bits) for k, a in enumerate(row)) for row in v]


def unpack_beats(beats: list[int], lanes: int, bits: int, signed: bool) -> np.ndarray:
    """Inverse of :func:`pack_beats`: ``(len(beats) * lanes,)`` int64."""
    mask = (1 << bits) - 1
    out = []
    for w in beats:
        for k in range(lanes):
            v = (int(w) >> (k * bits)) & mask
            if signed and bits > 1 and v >> (bits - 1):
                v -= 1 << bits
            out.append(v)
    return np.asarray(out, dtype=np.int64)


def load_format(path: str | Path) -> dict:
    """``accelerator.json`` (written by ``xnorvit bitstream``): widths, beats, stream formats."""
    return json.loads(Path(path).read_text())


def _words_to_bytes(words: list[int], width_bits: int) -> bytes:
    n = width_bits // 8
    return b"".join(int(w).to_bytes(n, "little") for w in words)


def _bytes_to_words(data: bytes, width_bits: int) -> list[int]:
    n = width_bits // 8
    if len(data) % n:
        raise ValueError(f"{len(data)} bytes are not whole {width_bits}-bit words")
    return [int.from_bytes(data[i : i + n], "little") for i in range(0, len(data), n)]


def pack_images(images: np.ndarray, fmt: dict) -> list[bytes]:
    """uint8 images ``(N, C, H, W)`` -> one input frame per image: the bytes
    the MM2S channel sends (``in_beats`` words of ``dma_in_bits``).

    Raises:
        ValueError: not uint8, or a shape that is not the accelerator's.
    """
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {x.dtype} {x.shape}")
    inp = fmt["input"]
    if not inp.get("pixels", True):
        raise ValueError("this accelerator's input stream is not uint8 pixels")
    if list(x.shape[1:]) != list(inp["shape_nchw"]):
        raise ValueError(f"images of shape {tuple(x.shape[1:])}; the accelerator takes {tuple(inp['shape_nchw'])}")
    if inp["layout"] == "NHWC":
        x = x.transpose(0, 2, 3, 1)
    frames = []
    for img in x:
        words = pack_beats(img.astype(np.int64), inp["lanes"], inp["bits"])
        if len(words) != fmt["in_beats"]:
            raise ValueError(f"{len(words)} input beats per frame; the accelerator takes {fmt['in_beats']}")
        frames.append(_words_to_bytes(words, fmt["dma_in_bits"]))
    return frames


def unpack_outputs(frames: list[bytes], fmt: dict) -> np.ndarray:
    """Output frames (the bytes S2MM wrote, one frame per image) -> integer
    logits ``(N, classes)`` int64.

    Raises:
        ValueError: a frame of the wrong length.
    """
    out = fmt["output"]
    mask = (1 << fmt["out_bits"]) - 1
    rows = []
    for f in frames:
        words = _bytes_to_words(bytes(f), fmt["dma_out_bits"])
        if len(words) != fmt["out_beats"]:
            raise ValueError(f"an output frame of {len(words)} beats; the accelerator writes {fmt['out_beats']}")
        rows.append(unpack_beats([w & mask for w in words], out["lanes"], out["bits"], out["signed"]))
    v = np.stack(rows)[:, : out["classes"]]
    if out["integer"]:
        return v.astype(np.int64)
    return np.rint(v / out["logit_scale"]).astype(np.int64)


class Accelerator:
    """The accelerator on a PYNQ board: overlay, AXI DMA, buffers.

    Args:
        bitfile: the ``.bit`` (its ``.hwh`` and ``accelerator.json`` beside it).
        batch: images per DMA batch (buffers are allocated for it).

    One MM2S transfer sends a whole batch; the accelerator ends every output
    frame with ``tlast``, so S2MM receives one transfer per image.
    ``last_fps`` is the frames/s of the latest :meth:`run` (wall clock on the
    board's CPU, DMA set-up included).

    Raises:
        ImportError: ``pynq`` is not installed (not a PYNQ board).
    """

    def __init__(self, bitfile: str | Path, batch: int = 100):
        from pynq import Overlay, allocate  # the board's package; not a dependency of xnorvit

        bitfile = Path(bitfile)
        self.fmt = load_format(bitfile.with_name("accelerator.json"))
        self.overlay = Overlay(str(bitfile))
        self.dma = self.overlay.axi_dma_0
        self.batch = batch
        self._in = allocate(shape=(batch * self.fmt["in_beats"] * self.fmt["dma_in_bits"] // 8,), dtype=np.uint8)
        self._out = [allocate(shape=(self.fmt["out_beats"] * self.fmt["dma_out_bits"] // 8,), dtype=np.uint8)
                     for _ in range(batch)]
        self.last_fps = None

    def run(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(N, C, H, W)`` -> integer logits ``(N, classes)``, in batches of ``batch``."""
        t0 = time.time()
        res = []
        for s in range(0, len(images), self.batch):
            frames = pack_images(images[s : s + self.batch], self.fmt)
            data = b"".join(frames)
            self._in[: len(data)] = np.frombuffer(data, dtype=np.uint8)
            n = len(frames)
            got = []
            for k in range(n):
                self.dma.recvchannel.transfer(self._out[k])
                if k == 0:
                    self.dma.sendchannel.transfer(self._in[: len(data)])
                self.dma.recvchannel.wait()
                got.append(bytes(self._out[k]))
            self.dma.sendchannel.wait()
            res.append(unpack_outputs(got, self.fmt))
        self.last_fps = len(images) / (time.time() - t0)
        return np.concatenate(res)
