"""Checks that a streamlined graph holds only ops xnorvit maps to hardware."""

from __future__ import annotations

from qonnx.core.datatype import DataType

__all__ = ["UnsupportedNodeError", "check_integer_graph", "INTEGER_OPS"]

#: op types allowed in a streamlined xnorvit graph (before HW conversion)
INTEGER_OPS = {
    "MultiThreshold",
    "XnorPopcountMatMul",
    "MatMul",
    "Conv",
    "Im2Col",
    "Add",
    "ReduceSum",
    "BinaryAttention",
    "Reshape",
    "Transpose",
    "Concat",
    "Gather",
}


class UnsupportedNodeError(ValueError):
    """A node the xnorvit compiler cannot map; the message names the node and its op type."""

    def __init__(self, node, why: str):
        self.node_name, self.op_type = node.name, node.op_type
        super().__init__(f"unsupported node {node.name!r} (op type {node.op_type}): {why}")


def check_integer_graph(model) -> None:
    """Raise if any node of ``model`` is outside the streamlined op set.

    Allowed: :data:`INTEGER_OPS`, where ``MatMul``/``Conv`` must have a
    constant integer weight and integer input, ``Add`` must have integer
    inputs (residual add, or a constant integer position embedding), and
    every MultiThreshold output must be an integer datatype. Every tensor
    must carry an integer FINN datatype annotation: graph inputs and
    outputs, every node output, and every constant operand except shape/axes
    parameters (``Reshape`` input 1, ``ReduceSum`` input 1, ``Gather``'s
    index). ``Concat`` must prepend constant integer tokens to one stream
    (DeiT's CLS token) and ``Gather`` must select one token by a constant index.

    Raises:
        UnsupportedNodeError: first offending node (name and op type in the
            message).
    """
    for n in model.graph.node:
        if n.op_type not in INTEGER_OPS:
            raise UnsupportedNodeError(n, "not an op of a streamlined xnorvit graph (float scale/bias left, or an unknown layer)")
        if n.op_type in ("MatMul", "Conv", "XnorPopcountMatMul"):
            w = model.get_initializer(n.input[1])
            if w is None:
                raise UnsupportedNodeError(n, "weight is not a constant (dynamic MatMul outside a BinaryAttention)")
            for t in n.input[:2]:
                if not model.get_tensor_datatype(t).is_integer():
                    raise UnsupportedNodeError(n, f"input {t} is {model.get_tensor_datatype(t).name}, not an integer type")
        if n.op_type == "Add":
            for t in n.input:
                dt = model.get_tensor_datatype(t)
                if not dt.is_integer():
                    raise UnsupportedNodeError(n, f"input {t} is {dt.name}, not an integer type")
        if n.op_type == "Concat" and (len(n.input) != 2 or model.get_initializer(n.input[0]) is None
                                      or model.get_initializer(n.input[1]) is not None):
            raise UnsupportedNodeError(n, "is not constant tokens prepended to one stream")
        if n.op_type == "Gather":
            idx = model.get_initializer(n.input[1])
            if idx is None or idx.size != 1:
                raise UnsupportedNodeError(n, "does not select one token by a constant index")
        if n.op_type == "MultiThreshold" and not DataType[str(model.get_tensor_datatype(n.output[0]).name)].is_integer():
            raise UnsupportedNodeError(n, "output is not an integer type")

    shape_params = {n.input[1] for n in model.graph.node if n.op_type in ("Reshape", "ReduceSum", "Gather") and len(n.input) > 1}
    for t in list(model.graph.input) + list(model.graph.output):
        dt = model.get_tensor_datatype(t.name)
        if not dt.is_integer():
            node = model.find_consumer(t.name) or model.find_producer(t.name)
            raise UnsupportedNodeError(node, f"graph tensor {t.name} is {dt.name}, not an integer type")
    for n in model.graph.node:
        for t in n.output:
            dt = model.get_tensor_datatype(t)
            if not dt.is_integer():
                raise UnsupportedNodeError(n, f"output {t} is annotated {dt.name}, not an integer type")
        for t in n.input:
            if t in shape_params or model.get_initializer(t) is None:
                continue
            dt = model.get_tensor_datatype(t)
            if not dt.is_integer():
                raise UnsupportedNodeError(n, f"constant {t} is annotated {dt.name}, not an integer type")
