"""XNOR-popcount conversion of weight MatMuls that also handles a bipolar
activation shared by several MatMuls (the Q, K and V projections)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

__all__ = ["ConvertBipolarMatMulsToXnorPopcount"]


class ConvertBipolarMatMulsToXnorPopcount(Transformation):
    """Every ``MatMul`` of a BIPOLAR activation (output of a bipolar
    MultiThreshold) and a constant BIPOLAR weight becomes qonnx's
    ``XnorPopcountMatMul`` on bits followed by ``Mul(2) -> Add(-K)``
    (``x . w = 2 * popcount(xnor) - K``); the producing MultiThreshold then
    outputs BINARY bits (out_scale 1, out_bias 0).

    Follows qonnx's ``ConvertBipolarMatMulToXnorPopcount``
    (``qonnx/transformation/bipolar_to_xnor.py``), which switches the
    producer to BINARY while converting the *first* consumer, so the other
    MatMuls of a forked activation (Q/K/V projections) are skipped and then
    compute ``bits . w`` -- wrong. Here all MatMuls are collected first.

    Raises:
        ValueError: a BIPOLAR MatMul input that is not produced by a bipolar
            MultiThreshold (names the MatMul).
    """

    def apply(self, model):
        graph = model.graph
        todo, producers = [], {}
        for n in graph.node:
            if n.op_type != "MatMul":
                continue
            w = model.get_initializer(n.input[1])
            if w is None or model.get_tensor_datatype(n.input[1]) != DataType["BIPOLAR"]:
                continue
            if model.get_tensor_datatype(n.input[0]) != DataType["BIPOLAR"]:
                continue
            mt = model.find_producer(n.input[0])
            if mt is None or mt.op_type != "MultiThreshold":
                raise ValueError(f"MatMul {n.name!r}: bipolar input {n.input[0]} is not produced by a MultiThreshold")
            inst = getCustomOp(mt)
            if inst.get_nodeattr("out_scale") != 2.0 or inst.get_nodeattr("out_bias") != -1.0:
                raise ValueError(f"MatMul {n.name!r}: producer {mt.name} is not a bipolar MultiThreshold (out_scale 2, out_bias -1)")
            todo.append(n)
            producers[mt.name] = mt
        if not todo:
            return (model, False)
        for mt in producers.values():
            inst = getCustomOp(mt)
            inst.set_nodeattr("out_dtype", "BINARY")
            inst.set_nodeattr("out_scale", 1.0)
            inst.set_nodeattr("out_bias", 0.0)
            model.set_tensor_datatype(mt.output[0], DataType["BINARY"])
        for n in todo:
            w = model.get_initializer(n.input[1])
            k = w.shape[0]
            model.set_initializer(n.input[1], ((w + 1) / 2).astype(np.float32))
            model.set_tensor_datatype(n.input[1], DataType["BINARY"])
            n.op_type, n.domain = "XnorPopcountMatMul", "qonnx.custom_op.general"
            shape = model.get_tensor_shape(n.output[0])
            final = n.output[0]
            pc, scaled = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            graph.value_info.append(helper.make_tensor_value_info(pc, TensorProto.FLOAT, shape))
            graph.value_info.append(helper.make_tensor_value_info(scaled, TensorProto.FLOAT, shape))
            a, b = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            model.set_initializer(a, np.asarray([2.0], dtype=np.float32))
            model.set_initializer(b, np.asarray([-float(k)], dtype=np.float32))
            n.output[0] = pc
            model.set_tensor_datatype(pc, DataType["UINT32"])
            idx = list(graph.node).index(n)
            graph.node.insert(idx + 1, helper.make_node("Mul", [pc, a], [scaled], name=f"{n.name}_x2"))
            graph.node.insert(idx + 2, helper.make_node("Add", [scaled, b], [final], name=f"{n.name}_minusK"))
        model = model.transform(InferShapes())
        model = model.transform(InferDataTypes())
        return (model, False)
