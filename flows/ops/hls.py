"""HLS variants of the dataflow ops (ONNX domain ``xnorvit.flows.ops.hls``).

Op type ``<Name>_hls``, class ``class Name_hls(CSimBackend, Name)`` on the
abstract op ``Name`` (xnorvit's, or finn-plus's for Thresholding, FMPadding,
ConvolutionInputGenerator, DuplicateStreams; finn-plus's own pattern of an
abstract op plus a backend mixin, e.g. ``hls/thresholding_hls.py``). Each
is implemented by a kernel in ``hls/`` (table in :mod:`xnorvit.flows.hls`).

``exec_mode="cppsim"``: :meth:`CSimBackend.execute_node` compiles (once per
content, cached) and runs the C simulation of the node's kernel with g++
(:func:`xnorvit.flows.hls.csim_node`), as FINN's cppsim runs a node's HLS
C++; any other mode runs the abstract op's python semantics. Graphs of
``_rtl`` nodes become ``_hls`` ones with :func:`xnorvit.flows.hls.to_hls`.
Vitis HLS code generation/synthesis (FINN's ``HLSBackend`` ipgen) is not
provided: there is no Vitis on these machines.
"""

from __future__ import annotations

import numpy as np

from xnorvit.flows import finn_env

finn_env.setup()

from finn.custom_op.fpgadataflow.convolutioninputgenerator import ConvolutionInputGenerator  # noqa: E402
from finn.custom_op.fpgadataflow.duplicatestreams import DuplicateStreams  # noqa: E402
from finn.custom_op.fpgadataflow.fmpadding import FMPadding  # noqa: E402
from finn.custom_op.fpgadataflow.thresholding import Thresholding  # noqa: E402

from .binary_attention import BinaryAttention  # noqa: E402
from .mvau import MVAU  # noqa: E402
from .pos_add import PosAdd  # noqa: E402
from .residual_add import ResidualAdd  # noqa: E402
from .token_pool import TokenPool  # noqa: E402
from .token_slice import TokenInsert, TokenSelect  # noqa: E402

#: ONNX domain of the ops in this module
DOMAIN = "xnorvit.flows.ops.hls"

__all__ = ["DOMAIN", "CSimBackend", "custom_op"]


class CSimBackend:
    """Mixin: C simulation of the node's ``hls/`` kernel under ``exec_mode="cppsim"``.

    The node's streamed inputs are read from the execution context (normal
    shapes, float32 integers as FINN executes them); its outputs are written
    back as float32. The program is cached under the node's
    ``code_gen_dir_cppsim`` when set, else ``rtl_tests/sim_build/hls/``.

    Raises (from :meth:`execute_node`):
        xnorvit.flows.hls.HLSError: no g++/headers, a compile failure, or a
            kernel that does not support the node's attributes.
    """

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        attrs.setdefault("code_gen_dir_cppsim", ("s", False, ""))  # where the C simulation is compiled
        return attrs

    def execute_node(self, context, graph):
        if self.get_nodeattr("exec_mode") != "cppsim":
            return super().execute_node(context, graph)
        from onnx import helper
        from qonnx.core.modelwrapper import ModelWrapper

        from xnorvit.flows.hls import DEFAULT_CACHE, csim_node

        node = self.onnx_node
        model = ModelWrapper(helper.make_model(graph))
        streamed = [t for t in node.input if t and model.get_initializer(t) is None]
        cache = self.get_nodeattr("code_gen_dir_cppsim") or DEFAULT_CACHE
        ys = csim_node(model, node, [np.asarray(context[t]) for t in streamed], cache_dir=cache)
        ys = ys if isinstance(ys, list) else [ys]
        for name, y in zip(node.output, ys):
            shape = context[name].shape if name in context else y.shape
            context[name] = np.asarray(y, dtype=np.float32).reshape(shape)


def _variant(base, **methods):
    return type(f"{base.__name__}_hls", (CSimBackend, base), {
        "__doc__": f"HLS variant of ``{base.__name__}`` (domain ``{DOMAIN}``): C simulation under cppsim.",
        "__module__": __name__, **methods})


def _parallel_window(self):
    """``xnorvit::swg`` streams the whole window per beat when ``parallel_window`` is set."""
    return bool(self.get_nodeattr("parallel_window"))


#: op type -> class; ``MVAU_hls`` covers XNOR and integer MVAUs (``binaryXnorMode``)
custom_op = {f"{b.__name__}_hls": _variant(b) for b in (
    MVAU, Thresholding, ResidualAdd, PosAdd, TokenPool, TokenInsert, TokenSelect, DuplicateStreams, FMPadding,
    BinaryAttention)}
custom_op["ConvolutionInputGenerator_hls"] = _variant(ConvolutionInputGenerator,
                                                      use_parallel_window_output=_parallel_window)
globals().update(custom_op)
__all__ += sorted(custom_op)
