"""The CUDA pieces GPU runners need (device, streams, graph capture, event timing), through torch.

Kept in one small class so runners hold no ``torch.cuda`` calls of their own and tests can put a CPU
stand-in with the same methods in its place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import RunnerError

__all__ = ["CudaDevice", "DeviceStep", "HostEvent", "capture_graph"]


@dataclass
class DeviceStep:
    """One prepared GPU inference: buffers bound once, ``run()`` only enqueues (no copies, no allocation).

    Attributes:
        run: Enqueue one inference on ``stream`` (asynchronous).
        stream: The stream ``run`` enqueues on (CUDA events are recorded on it).
        events: Returns a fresh ``(start, end)`` pair of timing events.
        inputs: The bound device input tensors.
        outputs: The bound device output tensors (overwritten by each ``run``).
        min_warmup: Fewest untimed runs before timing (TensorRT-RTX specialises kernels lazily).
        note: A caveat for reports, or ``None``.
    """

    run: Callable[[], Any]
    stream: Any
    events: Callable[[], tuple[Any, Any]]
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    min_warmup: int = 1
    note: str | None = None


class CudaDevice:
    """One CUDA device seen through torch.

    Args:
        index: CUDA device index.
        what: What needs the GPU (for the error message).

    Raises:
        RunnerError: No CUDA GPU is visible to torch.
    """

    def __init__(self, index: int = 0, what: str = "this backend"):
        import torch

        if not torch.cuda.is_available():
            raise RunnerError(f"{what} needs a CUDA GPU and none is visible to PyTorch",
                              "a machine with an NVIDIA GPU, its driver and a CUDA build of torch",
                              "run the ONNX instead: unetrt.runtime.load(dir, backend='ort')")
        torch.cuda.set_device(index)
        self.torch, self.index = torch, int(index)
        self.device = torch.device("cuda", self.index)
        self.name = torch.cuda.get_device_name(self.index)
        self.capability: tuple[int, int] = tuple(torch.cuda.get_device_capability(self.index))  # type: ignore

    def new_stream(self) -> Any:
        """A new non-default stream (TensorRT must not enqueue on the legacy default stream)."""
        return self.torch.cuda.Stream(self.device)

    @staticmethod
    def handle(stream: Any) -> int:
        """The ``cudaStream_t`` of ``stream`` as an int (what ``execute_async_v3`` takes)."""
        return int(stream.cuda_stream)

    def on(self, stream: Any) -> Any:
        """Context manager: make ``stream`` current (after it waited for the current one)."""
        stream.wait_stream(self.torch.cuda.current_stream(self.device))
        return self.torch.cuda.stream(stream)

    def capture(self, stream: Any, enqueue: Callable[[], bool]) -> tuple[Any, str | None]:
        """Capture ``enqueue()`` on ``stream`` into a CUDA graph: ``(graph, None)`` or ``(None, why)``."""
        return capture_graph(self.torch, stream, enqueue)

    def hand_over(self, tensor: Any) -> None:
        """Mark ``tensor`` (allocated on a runner's private stream) as used on the caller's current stream,
        so the caching allocator does not reuse its memory while the caller's stream still reads it."""
        tensor.record_stream(self.torch.cuda.current_stream(self.device))

    def events(self) -> tuple[Any, Any]:
        """A pair of timing events."""
        cuda = self.torch.cuda
        return cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)

    def release(self) -> None:
        """Return cached blocks to the driver."""
        self.torch.cuda.empty_cache()


def capture_graph(torch: Any, stream: Any, enqueue: Callable[[], bool]) -> tuple[Any, str | None]:
    """Capture one enqueue; never raise inside the capture, so the real failure is the one reported.

    ``execute_async_v3`` returns False when it cannot be recorded; raising inside ``torch.cuda.graph``
    would make its exit (``capture_end`` on an invalidated capture) raise a second, unrelated error
    that hides the first. The enqueue result and any error of the capture's end are both reported.
    """
    graph = torch.cuda.CUDAGraph()
    result: list[bool] = []
    try:
        with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
            result.append(bool(enqueue()))
    except RuntimeError as exc:
        first = "execute_async_v3 returned False" if result == [False] else "the capture was invalidated"
        return None, f"{first} ({' '.join(str(exc).split())[:200]})"
    if result != [True]:
        return None, "execute_async_v3 returned False during stream capture"
    return graph, None


class HostEvent:
    """A CPU stand-in for a CUDA timing event (``record``/``synchronize``/``elapsed_time`` in ms)."""

    def __init__(self) -> None:
        self.t = 0.0

    def record(self, stream: Any = None) -> None:
        import time

        self.t = time.perf_counter()

    def synchronize(self) -> None:
        """Nothing to wait for on the host."""

    def elapsed_time(self, end: "HostEvent") -> float:
        return (end.t - self.t) * 1e3
