"""A CPU stand-in for :class:`unetrt.runtime.cuda_device.CudaDevice`: tensors live in host memory, streams
are integer handles, and graph capture goes through the real :func:`capture_graph` with a stand-in
``torch.cuda.graph`` that behaves like CUDA's: while capturing, the stream handle is in the TensorRT
stand-in's ``capturing`` set, and ending a capture whose enqueue failed raises (as ``capture_end`` on an
invalidated capture does). A captured graph replays the enqueue it recorded.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import types

import torch

from unetrt.runtime.cuda_device import capture_graph

_handles = itertools.count(0x1000)


class Stream:
    def __init__(self):
        self.handle = next(_handles)
        self.syncs = 0

    def synchronize(self):
        self.syncs += 1


class Event:
    def __init__(self):
        self.t = None

    def record(self, stream=None):
        self.t = time.perf_counter()

    def synchronize(self):
        pass

    def elapsed_time(self, end):
        return (end.t - self.t) * 1e3


def _fake_torch(trt):
    class CUDAGraph:
        def __init__(self):
            self.kernels = []

        def replay(self):
            for kernel in self.kernels:
                kernel()

    @contextlib.contextmanager
    def graph(g, stream=None, capture_error_mode="global"):
        trt.capturing.add(stream.handle)
        trt.recorded[stream.handle] = []
        recorder.results[id(g)] = []
        raised = False
        try:
            yield
        except BaseException:  # torch's exit then calls capture_end, whose error replaces this one
            raised = True
        finally:
            trt.capturing.discard(stream.handle)
            g.kernels = trt.recorded.pop(stream.handle, [])
        if raised or False in recorder.results.pop(id(g), []):
            raise RuntimeError("CUDA error: operation failed due to a previous error during capture")

    recorder = types.SimpleNamespace(results={})
    return types.SimpleNamespace(cuda=types.SimpleNamespace(CUDAGraph=CUDAGraph, graph=graph)), recorder


class CpuDevice:
    """Same methods as CudaDevice; ``capability`` and ``name`` are what the tests say."""

    def __init__(self, trt, capability=(8, 6), name="Stand-in GPU"):
        self.torch, self.trt, self.index = torch, trt, 0
        if not hasattr(trt, "recorded"):
            trt.recorded = {}
        self.device = torch.device("cpu")
        self.name, self.capability = name, capability
        self.streams: list[Stream] = []
        self.released = 0
        self.handed_over: list = []
        self._torch, self._recorder = _fake_torch(trt)

    def new_stream(self):
        self.streams.append(Stream())
        return self.streams[-1]

    @staticmethod
    def handle(stream):
        return stream.handle

    def on(self, stream):
        return contextlib.nullcontext()

    def capture(self, stream, enqueue):
        recorder, graphs = self._recorder, []

        def recording():
            result = enqueue()
            for results in recorder.results.values():
                results.append(result)
            return result

        graph, why = capture_graph(self._torch, stream, recording)
        graphs.append(graph)
        return graph, why

    def hand_over(self, tensor):
        self.handed_over.append(tensor)

    def events(self):
        return Event(), Event()

    def release(self):
        self.released += 1
