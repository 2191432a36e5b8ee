"""examples/cpp: compiled and linked for real, and its host-side logic run against a CPU mock.

* ``segment.cpp`` compiles with ``-Wall -Wextra -Werror`` against NVIDIA's real TensorRT 10.16 and 11.1
  headers (kept outside this repository, see ``tests/fakes/headers.py``) and the CUDA toolkit's headers,
  and links against ``libtensorrt_rtx.so`` from the ``tensorrt-rtx`` wheel and CUDA's ``libcudart``; the
  linked binary runs (``--help``; on a machine without a GPU driver it stops at ``cudaSetDevice`` with
  CUDA's own error). ``CMakeLists.txt`` configures and builds against the same real headers and library.
* Linked with ``mock_runtime.cpp`` (a CPU mock of the TensorRT API in ``mock_include/NvInfer.h`` and of
  the CUDA calls, with the real CUDA prototypes), its host-side logic runs: PPM/PGM parsing, channel
  conversion, padding, profile choice, FP16 I/O, argmax, PGM output, error paths, resource release.
* ``CMakeLists.txt`` stops with a clear message naming ``-DTensorRT_ROOT=...`` when TensorRT is missing.

Each part skips with the reason when the headers, the CUDA toolkit, the wheel or a compiler is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.fakes.headers import SKIP_REASON, headers_root
from unetrt.assets import demo_samples

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CPP = ROOT / "examples" / "cpp"
SOURCE = CPP / "segment.cpp"
MOCK_API = HERE / "mock_include"
MOCK = HERE / "mock_runtime.cpp"
CLEAN = "allocations=0 streams=0 trt_objects=0 order_violations=0 memcpy_errors=0"
STRICT = ["-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion", "-Werror"]


def _gxx() -> str:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not installed")
    return gxx


def _cuda_root() -> Path | None:
    """The CUDA toolkit root (include/cuda_runtime_api.h), when installed."""
    roots = [os.environ.get(k) for k in ("CUDAToolkit_ROOT", "CUDA_HOME", "CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        roots.append(str(Path(nvcc).resolve().parents[1]))
    roots += ["/usr/local/cuda", *sorted(map(str, Path("/usr/local").glob("cuda-*")), reverse=True)]
    for root in filter(None, roots):
        if (Path(root) / "include" / "cuda_runtime_api.h").is_file():
            return Path(root)
    return None


def _cuda_include() -> Path:
    root = _cuda_root()
    if root is None:
        pytest.skip("CUDA toolkit headers (cuda_runtime_api.h) not found under CUDA_HOME or /usr/local/cuda*")
    return root / "include"


def _trt_headers(version: str) -> Path:
    root = headers_root()
    if root is None:
        pytest.skip(SKIP_REASON)
    return root / version


def _rtx_library() -> Path:
    try:
        import tensorrt_rtx_libs
    except ImportError:
        pytest.skip("the tensorrt-rtx wheel (libtensorrt_rtx.so) is not installed: pip install 'unetrt[rtx]'")
    found = sorted(Path(tensorrt_rtx_libs.__file__).parent.glob("libtensorrt_rtx.so*"))
    if not found:
        pytest.skip("the tensorrt-rtx wheel ships no libtensorrt_rtx.so here")
    return found[0]


def _cudart() -> Path:
    root = _cuda_root()
    lib = next((p for p in (root / "lib64", root / "lib") if (p / "libcudart.so").exists()), None) if root else None
    if lib is None:
        pytest.skip("CUDA runtime library (libcudart.so) not found in the CUDA toolkit")
    return lib


def _compile(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([_gxx(), "-std=c++17", *args], capture_output=True, text=True, timeout=300)


# --- (a) real headers, real library --------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("version", ["10.16", "11.1"])
def test_compiles_against_real_tensorrt_headers(version):
    headers, cuda = _trt_headers(version), _cuda_include()
    res = _compile(["-fsyntax-only", *STRICT, "-isystem", str(headers), "-isystem", str(cuda), str(SOURCE)])
    assert res.returncode == 0, res.stderr


@pytest.mark.slow
def test_links_against_tensorrt_rtx_and_runs(tmp_path):
    """Link check against the RTX wheel's library (11.1 headers: the same runtime API names); the binary starts.

    Running an engine needs TensorRT-RTX's own headers (the vtable layout of its release) and a GPU;
    without a driver the program must stop at cudaSetDevice with CUDA's own message.
    """
    headers, cuda, rtx, cudart = _trt_headers("11.1"), _cuda_include(), _rtx_library(), _cudart()
    exe = tmp_path / "segment"
    res = _compile(["-O1", *STRICT, "-isystem", str(headers), "-isystem", str(cuda), str(SOURCE), "-o", str(exe),
                    "-L", str(rtx.parent), f"-l:{rtx.name}", "-L", str(cudart), "-lcudart"])
    assert res.returncode == 0, res.stderr
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join([str(rtx.parent), str(cudart)])}
    run = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 0 and "usage: segment" in run.stdout, run.stderr
    image = tmp_path / "i.pgm"
    image.write_bytes(b"P5\n4 4\n255\n" + bytes(range(16)))
    (tmp_path / "m.engine").write_bytes(b"not a plan")
    run = subprocess.run([str(exe), str(tmp_path / "m.engine"), str(image), str(tmp_path / "m.pgm")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 1
    if "cudaSetDevice(opt.device) failed" in run.stderr:  # no GPU / driver: CUDA's own error text
        assert re.search(r"cudaError(NoDevice|InsufficientDriver)", run.stderr), run.stderr
    else:  # a GPU: the bogus plan is refused by TensorRT-RTX
        assert "cannot deserialize" in run.stderr, run.stderr


def test_mock_api_names_exist_in_the_real_headers():
    """Every TensorRT method the mock API declares (what segment.cpp calls) exists in 10.16 and 11.1."""
    declared = set(re.findall(r"\b([a-z][A-Za-z0-9]*)\s*\(", (MOCK_API / "NvInfer.h").read_text()))
    used = {n for n in declared if re.search(r"[.>]" + n + r"\s*\(", SOURCE.read_text())}
    assert {"deserializeCudaEngine", "setInputShape", "setTensorAddress", "enqueueV3"} <= used
    for version in ("10.16", "11.1"):
        real = "".join(p.read_text() for p in _trt_headers(version).glob("NvInfer*.h"))
        missing = sorted(n for n in used if not re.search(r"\b" + n + r"\s*\(", real))
        assert missing == [], f"{version}: {missing}"


# --- host-side logic against the CPU mock --------------------------------------------------------------

@pytest.fixture(scope="module")
def segment_mock(tmp_path_factory) -> Path:
    exe = tmp_path_factory.mktemp("mock") / "segment_mock"
    res = _compile(["-O1", "-Wall", "-Wextra", "-Werror", "-I", str(MOCK_API), "-isystem", str(_cuda_include()),
                    str(SOURCE), str(MOCK), "-o", str(exe)])
    assert res.returncode == 0, res.stderr
    return exe


def _write_pnm(path: Path, array: np.ndarray, maxval: int = 255, comment: bool = True) -> Path:
    array = np.asarray(array)
    magic = b"P6" if array.ndim == 3 else b"P5"
    header = magic + b"\n" + (b"# written by the unetrt tests\n" if comment else b"")
    header += b"%d %d\n%d\n" % (array.shape[1], array.shape[0], maxval)
    body = array.astype(">u2" if maxval > 255 else np.uint8).tobytes()
    path.write_bytes(header + body)
    return path


def _read_pgm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    match = re.match(rb"P5\n(\d+) (\d+)\n255\n", data)
    assert match, data[:32]
    w, h = int(match[1]), int(match[2])
    pixels = np.frombuffer(data[match.end():], dtype=np.uint8)
    assert pixels.size == w * h
    return pixels.reshape(h, w)


def _plan(path: Path, **spec) -> Path:
    fields = {"dtype": "float32", "channels": 3, "classes": 3, "min": 16, "max": 1024, "maxn": 4, **spec}
    path.write_text("MOCKPLAN " + " ".join(f"{k}={v}" for k, v in fields.items()))
    return path


def _run(exe: Path, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "MOCK_CUDA_FAIL"}
    full_env.update(env or {})
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=120, env=full_env)


@pytest.fixture
def rgb():
    return np.asarray(Image.open(demo_samples()[0]))[..., :3]


def _argmax_mask(rgb: np.ndarray, values=(0, 127, 255)) -> np.ndarray:
    return np.asarray(values, dtype=np.uint8)[np.argmax(rgb, axis=-1)]  # first maximum wins, as torch


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_mock_rgb_argmax(segment_mock, tmp_path, rgb, dtype):
    """Identity mock network (logits = input channels): the mask is the argmax over R, G, B."""
    image = _write_pnm(tmp_path / "image.ppm", rgb)
    res = _run(segment_mock, _plan(tmp_path / "plan", dtype=dtype), image, tmp_path / "mask.pgm")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"input  input {dtype} ?x3x?x?" in res.stdout and f"output logits {dtype} ?x3x?x?" in res.stdout
    assert "profile 0: min 1x3x16x16, opt 1x3x512x512, max 4x3x1024x1024" in res.stdout
    assert f"input 1x3x{rgb.shape[0]}x{rgb.shape[1]} on profile 0" in res.stdout
    assert CLEAN + " enqueues=1" in res.stderr
    mask = _read_pgm(tmp_path / "mask.pgm")
    np.testing.assert_array_equal(mask, _argmax_mask(rgb))  # default levels 255 * k // 2: 0, 127, 255


def test_mock_mask_values_flag(segment_mock, tmp_path, rgb):
    image = _write_pnm(tmp_path / "image.ppm", rgb, comment=False)
    res = _run(segment_mock, _plan(tmp_path / "plan"), image, tmp_path / "mask.pgm", "--mask-values", "10,20,30")
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(_read_pgm(tmp_path / "mask.pgm"), _argmax_mask(rgb, (10, 20, 30)))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_mock_grey_single_class(segment_mock, tmp_path, rgb, dtype):
    """P5 into a one-channel, one-class model: foreground where sigmoid(logit) > 0.5, i.e. grey > 127."""
    grey = rgb[..., 1]
    image = _write_pnm(tmp_path / "image.pgm", grey)
    plan = _plan(tmp_path / "plan", dtype=dtype, channels=1, classes=1)
    res = _run(segment_mock, plan, image, tmp_path / "mask.pgm")
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(_read_pgm(tmp_path / "mask.pgm"), np.where(grey > 127, 255, 0))


def test_mock_channel_conversions(segment_mock, tmp_path, rgb):
    # RGB image, one-channel model: PIL's "L" luma.
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    luma = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
    res = _run(segment_mock, _plan(tmp_path / "p1", channels=1, classes=1), _write_pnm(tmp_path / "a.ppm", rgb),
               tmp_path / "a.pgm")
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(_read_pgm(tmp_path / "a.pgm"), np.where(luma > 127, 255, 0))
    # Grey image, three-channel model: the grey plane is repeated.
    grey = rgb[..., 2]
    res = _run(segment_mock, _plan(tmp_path / "p3", channels=3, classes=1), _write_pnm(tmp_path / "b.pgm", grey),
               tmp_path / "b.pgm.out")
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(_read_pgm(tmp_path / "b.pgm.out"), np.where(grey > 127, 255, 0))


def test_mock_sixteen_bit_image(segment_mock, tmp_path):
    values = np.array([[0, 32767, 32768, 65535], [1000, 40000, 20000, 65000]], dtype=np.uint16)
    image = _write_pnm(tmp_path / "deep.pgm", np.tile(values, (8, 4)), maxval=65535)
    res = _run(segment_mock, _plan(tmp_path / "plan", channels=1, classes=1), image, tmp_path / "mask.pgm",
               "--align", "1")
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(_read_pgm(tmp_path / "mask.pgm"), np.where(np.tile(values, (8, 4)) > 32767, 255, 0))


def test_mock_small_image_needs_align(segment_mock, tmp_path, rgb):
    small = rgb[:10, :13]
    image = _write_pnm(tmp_path / "small.ppm", small)
    res = _run(segment_mock, _plan(tmp_path / "plan"), image, tmp_path / "mask.pgm")
    assert res.returncode == 1
    assert "fits no optimisation profile" in res.stderr and "--align" in res.stderr
    assert CLEAN in res.stderr

    res = _run(segment_mock, _plan(tmp_path / "plan"), image, tmp_path / "mask.pgm", "--align", "8")
    assert res.returncode == 0, res.stderr
    assert "input 1x3x16x16 on profile 0" in res.stdout  # 10x13 -> profile min 16, multiple of 8
    np.testing.assert_array_equal(_read_pgm(tmp_path / "mask.pgm"), _argmax_mask(small))


def test_mock_align_pads_to_multiples(segment_mock, tmp_path, rgb):
    res = _run(segment_mock, _plan(tmp_path / "plan"), _write_pnm(tmp_path / "i.ppm", rgb), tmp_path / "m.pgm",
               "--align", "32")
    assert res.returncode == 0, res.stderr
    h, w = (-(-s // 32) * 32 for s in rgb.shape[:2])
    assert f"input 1x3x{h}x{w} on profile 0" in res.stdout
    np.testing.assert_array_equal(_read_pgm(tmp_path / "m.pgm"), _argmax_mask(rgb))


def test_mock_picks_the_profile_that_fits(segment_mock, tmp_path, rgb):
    plan = _plan(tmp_path / "plan", max="64,1024")
    res = _run(segment_mock, plan, _write_pnm(tmp_path / "big.ppm", rgb[:80, :70]), tmp_path / "m.pgm")
    assert res.returncode == 0, res.stderr
    assert "on profile 1" in res.stdout and "mock: profile 1 selected" in res.stdout
    res = _run(segment_mock, plan, _write_pnm(tmp_path / "s.ppm", rgb[:40, :50]), tmp_path / "m.pgm")
    assert res.returncode == 0, res.stderr
    assert "on profile 0" in res.stdout and "selected" not in res.stdout
    res = _run(segment_mock, _plan(tmp_path / "p2", max="64"), tmp_path / "big.ppm", tmp_path / "m.pgm")
    assert res.returncode == 1 and "fits no optimisation profile" in res.stderr and "larger profile" not in res.stderr


def test_mock_extra_outputs_and_output_flag(segment_mock, tmp_path, rgb):
    image = _write_pnm(tmp_path / "i.ppm", rgb)
    plan = _plan(tmp_path / "plan", aux=1)
    res = _run(segment_mock, plan, image, tmp_path / "m.pgm")  # int64 "aux" output gets a buffer too
    assert res.returncode == 0, res.stderr
    assert "output aux int64 ?x1" in res.stdout and CLEAN + " enqueues=1" in res.stderr
    res = _run(segment_mock, plan, image, tmp_path / "m.pgm", "--output", "logits")
    assert res.returncode == 0, res.stderr
    res = _run(segment_mock, plan, image, tmp_path / "m.pgm", "--output", "aux")
    assert res.returncode == 1 and "'aux' has data type int64" in res.stderr
    res = _run(segment_mock, plan, image, tmp_path / "m.pgm", "--output", "nope")
    assert res.returncode == 1 and "no output tensor named 'nope'" in res.stderr


def test_mock_logger_and_flags(segment_mock, tmp_path, rgb):
    image = _write_pnm(tmp_path / "i.ppm", rgb)
    res = _run(segment_mock, _plan(tmp_path / "plan"), image, tmp_path / "m.pgm")
    assert "[TensorRT]" not in res.stderr  # INFO is below the default threshold
    res = _run(segment_mock, _plan(tmp_path / "plan"), image, tmp_path / "m.pgm", "--verbose", "--host-code")
    assert res.returncode == 0, res.stderr
    assert "[TensorRT] INFO: mock: plan deserialized" in res.stderr
    assert "mock: host code allowed=1" in res.stdout


@pytest.mark.parametrize("fail, message", [
    ("cudaSetDevice", "cudaSetDevice(opt.device) failed: cudaErrorNoDevice (no CUDA-capable device is detected)"),
    ("cudaStreamCreateWithFlags", "cudaStreamCreateWithFlags(&mStream, cudaStreamNonBlocking) failed"),
    ("cudaMalloc:2", "cudaMalloc(&mPtr, std::max<std::size_t>(bytes, 1)) failed: cudaErrorMemoryAllocation"),
    ("cudaMemcpyAsync:2", "cudaMemcpyAsync(yHost.data(), yDev.get()"),
    ("cudaStreamSynchronize", "cudaStreamSynchronize(stream.get()) failed"),
])
def test_mock_cuda_errors_are_reported_and_nothing_leaks(segment_mock, tmp_path, rgb, fail, message):
    res = _run(segment_mock, _plan(tmp_path / "plan"), _write_pnm(tmp_path / "i.ppm", rgb), tmp_path / "m.pgm",
               env={"MOCK_CUDA_FAIL": fail})
    assert res.returncode == 1
    assert "segment: error: " in res.stderr and "segment.cpp:" in res.stderr and message in res.stderr
    report = re.search(r"mock-runtime: (.*)", res.stderr)[1]
    assert "allocations=0 streams=0 trt_objects=0 order_violations=0" in report
    assert not (tmp_path / "m.pgm").exists()


def test_mock_bad_plan(segment_mock, tmp_path, rgb):
    (tmp_path / "plan").write_bytes(b"\x00not a plan")
    res = _run(segment_mock, tmp_path / "plan", _write_pnm(tmp_path / "i.ppm", rgb), tmp_path / "m.pgm")
    assert res.returncode == 1
    assert "[TensorRT] ERROR: mock: not a mock plan" in res.stderr and "cannot deserialize" in res.stderr
    assert CLEAN + " enqueues=0" in res.stderr


@pytest.mark.parametrize("content, message", [
    (b"P3\n2 2\n255\n0 0 0 0 0 0 0 0 0 0 0 0\n", "not a binary PGM/PPM"),
    (b"P6\n4 4\n255\n" + bytes(10), "truncated raster (10 of 48 bytes)"),
    (b"P5\n# c\n4 x\n255\n", "malformed PNM header (expected the height)"),
    (b"P5\n0 4\n255\n", "unsupported image size 0x4"),
    (b"P5\n2 2\n70000\n" + bytes(8), "maxval 70000 outside 1..65535"),
])
def test_mock_bad_images(segment_mock, tmp_path, content, message):
    (tmp_path / "bad.pnm").write_bytes(content)
    res = _run(segment_mock, _plan(tmp_path / "plan"), tmp_path / "bad.pnm", tmp_path / "m.pgm")
    assert res.returncode == 1
    assert message in res.stderr


@pytest.mark.parametrize("args, code, message", [
    ([], 2, "expected MODEL.engine IMAGE MASK.pgm"),
    (["--align", "0"], 2, "--align must be >= 1"),
    (["--align", "x"], 2, "bad --align 'x'"),
    (["--mask-values", "0,300,2"], 2, "mask values must be in 0..255"),
    (["--bogus"], 2, "unknown option --bogus"),
    (["--mask-values", "0,255"], 1, "--mask-values has 2 value(s); the model has 3 class(es)"),
])
def test_mock_command_line(segment_mock, tmp_path, rgb, args, code, message):
    files = [_plan(tmp_path / "plan"), _write_pnm(tmp_path / "i.ppm", rgb), tmp_path / "m.pgm"] if args != [] else []
    res = _run(segment_mock, *files, *args)
    assert res.returncode == code, res.stderr
    assert message in res.stderr
    if code == 2:
        assert "usage: segment" in res.stderr


def test_mock_help(segment_mock):
    res = _run(segment_mock, "--help")
    assert res.returncode == 0 and "usage: segment" in res.stdout and "--align N" in res.stdout


# --- (c) CMake ------------------------------------------------------------------------------------------

def _cmake(*args, cwd: Path) -> tuple[int, str]:
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed")
    env = {k: v for k, v in os.environ.items() if k != "TensorRT_ROOT"}
    res = subprocess.run([cmake, "-S", str(CPP), "-B", str(cwd / "build"), *map(str, args)], capture_output=True,
                         text=True, timeout=600, env=env, cwd=cwd)
    output = " ".join((res.stdout + res.stderr).split())  # CMake wraps its messages
    if "No CMAKE_CXX_COMPILER could be found" in output:
        pytest.skip("CMake finds no C++ compiler")
    return res.returncode, output


def _skip_if_cuda_failed_first(output: str) -> None:
    if "CUDAToolkit" in output and "TensorRT" not in output.split("CUDAToolkit")[0]:
        pytest.skip("CMake's CUDAToolkit detection failed before the TensorRT check")


@pytest.mark.parametrize("rtx, product", [(False, "TensorRT"), (True, "TensorRT-RTX")])
def test_cmake_without_tensorrt_fails_clearly(tmp_path, rtx, product):
    code, output = _cmake("-DTensorRT_ROOT=/nonexistent", f"-DUNETRT_USE_RTX={'ON' if rtx else 'OFF'}", cwd=tmp_path)
    _skip_if_cuda_failed_first(output)
    assert code != 0
    assert f"{product} headers (NvInfer.h) not found under TensorRT_ROOT=/nonexistent" in output, output
    assert f"-DTensorRT_ROOT=/path/to/{product}" in output
    assert "pip wheels ship no C++ headers" in output


def _fake_sdk(root: Path, major: int, library: str | None) -> Path:
    """Headers only need to exist for find_path; the library only for find_library (nothing is built)."""
    (root / "include").mkdir(parents=True)
    shutil.copy(MOCK_API / "NvInfer.h", root / "include" / "NvInfer.h")
    (root / "include" / "NvInferVersion.h").write_text(f"#define NV_TENSORRT_MAJOR {major}\n"
                                                       f"#define NV_TENSORRT_MINOR 3\n")
    if library:
        (root / "lib").mkdir()
        (root / "lib" / library).write_bytes(b"")
    return root


def test_cmake_library_missing(tmp_path):
    sdk = _fake_sdk(tmp_path / "sdk", 10, None)
    code, output = _cmake(f"-DTensorRT_ROOT={sdk}", cwd=tmp_path)
    assert code != 0
    assert "TensorRT library (nvinfer, nvinfer_10, libnvinfer.so.10) not found" in output, output
    assert "-DTensorRT_ROOT=" in output


def test_cmake_refuses_old_tensorrt(tmp_path):
    sdk = _fake_sdk(tmp_path / "sdk", 8, "libnvinfer.so")
    code, output = _cmake(f"-DTensorRT_ROOT={sdk}", cwd=tmp_path)
    assert code != 0
    assert "TensorRT 8.3 found" in output and "needs TensorRT 10 or newer" in output, output


def test_cmake_finds_an_sdk_layout(tmp_path):
    """Header and library discovery succeed on an SDK layout; then CUDA must be found (skip otherwise)."""
    sdk = _fake_sdk(tmp_path / "sdk", 10, "libnvinfer.so")
    code, output = _cmake(f"-DTensorRT_ROOT={sdk}", cwd=tmp_path)
    assert f"-- TensorRT 10.3: {sdk}/include, {sdk}/lib/libnvinfer.so" in output, output
    if code != 0 and "CUDAToolkit" in output:
        pytest.skip("TensorRT found; CMake's CUDAToolkit detection failed (no CUDA toolkit here)")
    assert code == 0, output


@pytest.mark.slow
@pytest.mark.parametrize("version", ["10.16", "11.1"])
def test_cmake_configure_and_build_with_real_headers(tmp_path, version):
    """An SDK layout made of NVIDIA's real headers and the RTX wheel's library: configure, build with -Werror."""
    headers, rtx = _trt_headers(version), _rtx_library()
    if _cuda_root() is None:
        pytest.skip("CUDA toolkit not found (CMake's CUDAToolkit needs it)")
    sdk = tmp_path / "sdk"
    (sdk / "lib").mkdir(parents=True)
    (sdk / "include").symlink_to(headers, target_is_directory=True)
    (sdk / "lib" / "libtensorrt_rtx.so").symlink_to(rtx)
    code, output = _cmake(f"-DTensorRT_ROOT={sdk}", "-DUNETRT_USE_RTX=ON", "-DUNETRT_WERROR=ON",
                          f"-DCUDAToolkit_ROOT={_cuda_root()}", cwd=tmp_path)
    assert code == 0, output
    assert f"-- TensorRT-RTX {version}: {sdk}/include, {sdk}/lib/libtensorrt_rtx.so" in output, output
    res = subprocess.run([shutil.which("cmake"), "--build", str(tmp_path / "build")], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "build" / "segment").is_file()
