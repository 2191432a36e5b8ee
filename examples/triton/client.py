"""Segment images with a unetrt model served by Triton, over HTTP or gRPC, with plain tritonclient.

Two ways, both against a server started by ``unetrt serve EXPORT_DIR`` (or any Triton serving a
repository written by ``unetrt triton ... --with-preprocess``):

- ``--mode image``: post the image file's bytes to the ``<model>_image`` ensemble and save the PNG
  mask it returns (the same file ``unet-predict`` writes);
- ``--mode tensor``: send the preprocessed NCHW float32 tensor to ``<model>`` and save the argmax of
  the logits (for exports whose input needs no padding, i.e. sizes the model admits).

    python examples/triton/client.py --url grpc://127.0.0.1:8001 -i image.png -o mask.png
"""

from __future__ import annotations

import argparse
import io
import sys

import numpy as np


def connect(url: str):
    """``(tritonclient module, client)`` for ``http://host:port`` or ``grpc://host:port``."""
    scheme, _, address = url.partition("://")
    if scheme == "grpc":
        import tritonclient.grpc as triton
    else:
        import tritonclient.http as triton
    return triton, triton.InferenceServerClient(address or scheme)


def segment_bytes(url: str, model: str, data: bytes) -> bytes:
    """Image file bytes -> PNG mask bytes through the ``<model>_image`` ensemble."""
    triton, client = connect(url)
    try:
        payload = np.frombuffer(data, dtype=np.uint8)[None]  # the file's bytes as UINT8 [1, n]
        image = triton.InferInput("IMAGE", list(payload.shape), "UINT8")
        image.set_data_from_numpy(payload)
        result = client.infer(f"{model}_image", [image], outputs=[triton.InferRequestedOutput("MASK")])
        return result.as_numpy("MASK").tobytes()
    finally:
        client.close()


def segment_tensor(url: str, model: str, data: bytes) -> np.ndarray:
    """Image file bytes -> class mask (H x W uint8) from the raw model's logits."""
    from PIL import Image

    triton, client = connect(url)
    try:
        if url.startswith("grpc://"):
            config = client.get_model_config(model, as_json=True)["config"]
        else:
            config = client.get_model_config(model)
        channels = int(config["input"][0]["dims"][0])
        img = Image.open(io.BytesIO(data)).convert("L" if channels == 1 else "RGB")
        x = np.asarray(img, dtype=np.float32) / 255.0
        x = x[None, None] if channels == 1 else x.transpose(2, 0, 1)[None]
        tensor = triton.InferInput(config["input"][0]["name"], list(x.shape), "FP32")
        tensor.set_data_from_numpy(np.ascontiguousarray(x))
        out_name = config["output"][0]["name"]
        logits = client.infer(model, [tensor], outputs=[triton.InferRequestedOutput(out_name)]).as_numpy(out_name)
        return (logits[0].argmax(0) if logits.shape[1] > 1 else logits[0, 0] > 0).astype(np.uint8)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="http://HOST:PORT or grpc://HOST:PORT")
    parser.add_argument("--model", default="unet", help="model name (the ensemble is MODEL_image)")
    parser.add_argument("--mode", choices=["image", "tensor"], default="image")
    parser.add_argument("-i", "--input", required=True, help="image file (PNG, JPEG)")
    parser.add_argument("-o", "--output", required=True, help="mask PNG to write")
    args = parser.parse_args(argv)
    with open(args.input, "rb") as f:
        data = f.read()
    if args.mode == "image":
        png = segment_bytes(args.url, args.model, data)
    else:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(segment_tensor(args.url, args.model, data)).save(buf, format="PNG")
        png = buf.getvalue()
    with open(args.output, "wb") as f:
        f.write(png)
    print(f"{args.input} -> {args.output} ({len(png)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
