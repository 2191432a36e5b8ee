"""Serving on NVIDIA Triton Inference Server: a model repository writer, a server launcher, clients
and a load test.

``import unetrt.serve`` needs none of the serving packages; the modules that need them import
them on use and raise :class:`~unetrt.errors.MissingDependencyError` naming the ``serve`` extra
(``pip install 'unetrt[serve]'``: ``nvidia-pytriton`` for its ``tritonserver`` binary and python
backend, ``tritonclient[http,grpc]`` for the clients and the ``ModelConfig`` protobuf).

Example::

    from unetrt.serve import write_repository, TritonServer, TritonRunner
    write_repository("export/milesial", "repo", platforms=["python"], name="unet")
    with TritonServer("repo") as server, TritonRunner(server.http_url, "unet") as runner:
        logits = runner.infer({"input": x})["logits"]
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "write_repository": "repository", "RepositoryPlan": "layout", "read_config": "configs",
    "TritonServer": "server", "free_port": "server",
    "TritonRunner": "client", "TritonClient": "client", "segment_image": "client",
    "run_load": "loadtest",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
