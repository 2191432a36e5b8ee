"""Extract the CUDA / TensorRT execution-provider option keys from the real ``onnxruntime-gpu`` wheel.

The keys unetrt passes to ``onnxruntime.InferenceSession(providers=[(name, options)])`` must be keys that
ONNX Runtime's parsers know: the Python API's TensorRT EP parser throws ``Invalid TensorRT EP option`` on
any other key, and the CUDA EP's parser ``Unknown provider option``. This script downloads the pinned
wheel (``pip download --no-deps``), reads the option keys out of its provider libraries and writes them,
with the wheel's version and sha256, to ``tests/fixtures/ort_ep_options.json``, which
``tests/runtime/test_ort_ep_options.py`` reads (no network in the tests).

Where the keys are read:

* TensorRT EP: ``onnxruntime_pybind11_state*.so`` holds the parser of the Python API (the path
  ``InferenceSession`` takes): every key named in its ``The value for the key 'KEY' ...`` messages, plus
  every whole ``trt_*`` string of that library (a few keys have no message).
* CUDA EP: ``libonnxruntime_providers_cuda.so`` holds ``CUDAExecutionProviderInfo::FromProviderOptions``;
  its key literals sit together just before the parser's ``Unknown provider option: "`` message: the
  snake_case strings among the ``WINDOW`` strings before it. The linker merges a literal that is the tail
  of another (``user_compute_stream`` lives inside ``has_user_compute_stream``), so the ``_``-bounded tails
  of those keys that are whole strings in another library of the wheel are listed apart (``tail_keys``).

Usage: ``python scripts/ort_ep_options.py [--version 1.31.1] [--out tests/fixtures/ort_ep_options.json]``
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "1.31.1"
OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ort_ep_options.json"
#: How many strings before the CUDA parser's message are searched for its keys.
WINDOW = 32
_STRING = re.compile(rb"[\x20-\x7e]{3,}(?=\x00)")
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
_TRT_MESSAGE = re.compile(rb"\[TensorRT\] The value for the key '([a-z0-9_]+)'")
_TRT_REJECTS = b"Invalid TensorRT EP option: "
_CUDA_REJECTS = b'Unknown provider option: "'


def whole_strings(data: bytes) -> list[str]:
    """The NUL-terminated printable strings of a binary, in file order (``strings`` with the NUL check)."""
    out = []
    for m in _STRING.finditer(data):
        start = m.start()
        if start == 0 or data[start - 1] not in range(0x20, 0x7F):
            out.append(m.group().decode())
    return out


def tensorrt_keys(pybind: bytes) -> list[str]:
    if _TRT_REJECTS not in pybind:
        raise SystemExit("the pybind library has no 'Invalid TensorRT EP option' parser: extraction needs a look")
    keys = {k.decode() for k in _TRT_MESSAGE.findall(pybind)}
    keys |= {s for s in whole_strings(pybind) if re.fullmatch(r"trt_[a-z0-9_]+", s)}
    return sorted(keys)


def cuda_keys(cuda: bytes, elsewhere: set[str]) -> tuple[list[str], list[str]]:
    at = cuda.find(_CUDA_REJECTS)
    if at < 0 or cuda.find(_CUDA_REJECTS, at + 1) >= 0:
        raise SystemExit("the CUDA provider library must hold exactly one 'Unknown provider option' message")
    before = whole_strings(cuda[:at])[-WINDOW:]
    keys = sorted({s for s in before if _SNAKE.fullmatch(s)})
    tails = sorted({k.split("_", i)[-1] for k in keys for i in range(1, k.count("_") + 1)
                    if k.split("_", i)[-1] in elsewhere and _SNAKE.fullmatch(k.split("_", i)[-1])} - set(keys))
    return keys, tails


def extract(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        pybind_name = next(n for n in names if re.search(r"capi/onnxruntime_pybind11_state.*\.so$", n))
        cuda_name = next(n for n in names if n.endswith("capi/libonnxruntime_providers_cuda.so"))
        trt_name = next(n for n in names if n.endswith("capi/libonnxruntime_providers_tensorrt.so"))
        pybind, cuda = z.read(pybind_name), z.read(cuda_name)
        core = z.read(next(n for n in names if re.search(r"capi/libonnxruntime\.so[.\d]*$", n)))
        trt_lib_needed = sorted({m.decode() for m in re.findall(rb"libnv(?:infer|onnxparser)\.so\.\d+",
                                                               z.read(trt_name))})
    trt = tensorrt_keys(pybind)
    ckeys, ctails = cuda_keys(cuda, set(whole_strings(pybind)) | set(whole_strings(core)))
    for must, got in (("trt_fp16_enable", trt), ("user_compute_stream", trt), ("device_id", trt),
                      ("use_tf32", ckeys), ("device_id", ckeys), ("gpu_mem_limit", ckeys)):
        if must not in got:
            raise SystemExit(f"{must} not found where expected: the wheel's layout changed, extraction needs a look")
    from unetrt.fileio import sha256_file

    digest = sha256_file(wheel)
    return {"wheel": wheel.name, "sha256": digest,
            "version": re.match(r"onnxruntime_gpu-([^-]+)-", wheel.name).group(1),
            "generated_by": "scripts/ort_ep_options.py",
            "TensorrtExecutionProvider": {"library": pybind_name, "rejects_unknown": _TRT_REJECTS.decode().strip(),
                                          "keys": trt, "links": trt_lib_needed},
            "CUDAExecutionProvider": {"library": cuda_name, "rejects_unknown": _CUDA_REJECTS.decode().strip(' "'),
                                      "keys": ckeys, "tail_keys": ctails}}


def download(version: str, where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", f"onnxruntime-gpu=={version}",
                    "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                    "-d", str(where), "-q"], check=True)
    return next(where.glob("onnxruntime_gpu-*.whl"))


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=VERSION)
    parser.add_argument("--wheel", type=Path, help="an already downloaded wheel (skips pip download)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download(args.version, Path(tmp))
        data = extract(wheel)
    from unetrt.fileio import atomic_write_bytes

    atomic_write_bytes(args.out, (json.dumps(data, indent=1) + "\n").encode())
    print(f"{args.out}: onnxruntime-gpu {data['version']} ({data['sha256'][:12]}), "
          f"{len(data['TensorrtExecutionProvider']['keys'])} TensorRT EP keys, "
          f"{len(data['CUDAExecutionProvider']['keys'])} CUDA EP keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
