"""Clients of a Triton server: raw HTTP/gRPC inference, a unetrt :class:`Runner` over Triton, and the
image round trip of the ``<name>_image`` ensemble.

URLs name the protocol: ``http://127.0.0.1:8000`` or ``grpc://127.0.0.1:8001`` (a bare
``host:port`` means HTTP).
"""

from __future__ import annotations

import json
import threading
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ServeError
from ..runtime.base import InputConstraint, Runner, TensorMeta, apply_manifest_input, to_numpy
from .configs import TRITON_DTYPES, served_manifest
from .deps import require

#: Triton config data type -> numpy dtype name.
NUMPY_DTYPES = {v: k for k, v in TRITON_DTYPES.items()}


def parse_url(url: str, protocol: str | None = None) -> tuple[str, str]:
    """``(protocol, "host:port")`` of a server URL.

    Raises:
        ServeError: An unknown scheme or a missing port.
    """
    scheme, sep, rest = str(url).partition("://")
    if not sep:
        scheme, rest = protocol or "http", str(url)
    scheme = scheme.lower()
    if scheme not in ("http", "grpc") or ":" not in rest.strip("/"):
        raise ServeError(f"Triton URL {url!r}", "http://HOST:PORT or grpc://HOST:PORT",
                         "pass e.g. --triton http://127.0.0.1:8000")
    return scheme, rest.strip("/")


class TritonClient:
    """One connection to a Triton server over HTTP or gRPC.

    Args:
        url: ``http://host:port`` or ``grpc://host:port``.
        timeout_s: Network timeout per call.
    """

    def __init__(self, url: str, *, timeout_s: float = 60.0):
        self.protocol, self.address = parse_url(url)
        self.url = f"{self.protocol}://{self.address}"
        self.timeout_s = timeout_s
        self._mod = require(f"tritonclient.{self.protocol}", f"the Triton {self.protocol.upper()} client")
        self._utils = require("tritonclient.utils", "the Triton client")
        self._local = threading.local()
        self._clients: list[Any] = []
        self._client  # connect now: an unreachable URL fails here, in the caller's thread

    @property
    def _client(self):
        """This thread's connection: the HTTP client runs on gevent, whose hub belongs to one thread, so a
        client made in one thread cannot be used from another (the streaming predictor infers in its own)."""
        client = getattr(self._local, "client", None)
        if client is None:
            if self.protocol == "http":
                client = self._mod.InferenceServerClient(self.address, connection_timeout=self.timeout_s,
                                                         network_timeout=self.timeout_s)
            else:
                client = self._mod.InferenceServerClient(self.address)
            self._local.client = client
            self._clients.append(client)
        return client

    def _call(self, what: str, fn, *args, **kw):
        if self.protocol == "grpc":  # the HTTP client got its timeouts at construction
            kw["client_timeout"] = self.timeout_s
        try:
            return fn(*args, **kw)
        except self._utils.InferenceServerException as exc:
            text = " ".join(str(exc.message() or exc).split())
            if "Deadline Exceeded" in text or str(exc.status()) == "StatusCode.DEADLINE_EXCEEDED":
                raise ServeError(f"Triton at {self.url}: {what}: no answer within {self.timeout_s:g} s",
                                 "an answer within timeout_s", "raise timeout_s or check the server") from None
            raise ServeError(f"Triton at {self.url}: {what}: {text}",
                             "a request the model accepts", "check the model name and the input") from None
        except (OSError, ConnectionError) as exc:
            raise ServeError(f"cannot reach Triton at {self.url} ({what}): {exc}", "a running server",
                             "start one: unetrt serve EXPORT_DIR") from None

    def is_ready(self) -> bool:
        """Whether the server answers ready (``False`` when unreachable)."""
        kw = {"client_timeout": self.timeout_s} if self.protocol == "grpc" else {}
        try:
            return bool(self._client.is_server_ready(**kw))
        except Exception:  # noqa: BLE001 - any transport failure means "not ready"
            return False

    def model_config(self, model: str) -> dict[str, Any]:
        """The model's configuration as a JSON-style dict (both protocols)."""
        if self.protocol == "http":
            return self._call(f"config of {model!r}", self._client.get_model_config, model)
        return self._call(f"config of {model!r}", self._client.get_model_config, model, as_json=True)["config"]

    def statistics(self, model: str) -> dict[str, Any]:
        """The model's ``model_stats[0]`` (``inference_count``, ``execution_count``, queue and compute times)."""
        kw = {} if self.protocol == "http" else {"as_json": True}
        stats = self._call(f"statistics of {model!r}", self._client.get_inference_statistics, model, **kw)
        return stats["model_stats"][0]

    def infer(self, model: str, inputs: Mapping[str, Any], outputs: Sequence[str] | None = None) -> dict[str, Any]:
        """Run one request; arrays of dtype ``object`` are sent as BYTES.

        Returns:
            ``{output name: numpy array}`` (every output of the response when ``outputs`` is ``None``).
        """
        items = []
        for name, value in inputs.items():
            array = np.asarray(value)
            dtype = "BYTES" if array.dtype == np.object_ else self._utils.np_to_triton_dtype(array.dtype)
            item = self._mod.InferInput(name, list(array.shape), dtype)
            item.set_data_from_numpy(array)
            items.append(item)
        requested = [self._mod.InferRequestedOutput(n) for n in outputs] if outputs else None
        result = self._call(f"infer on {model!r}", self._client.infer, model, items, outputs=requested)
        names = outputs or [o["name"] for o in result.get_response(**({} if self.protocol == "http" else
                                                                       {"as_json": True}))["outputs"]]
        return {n: result.as_numpy(n) for n in names}

    def close(self) -> None:
        """Close the connections (the server waits for open connections on shutdown)."""
        mine = getattr(self._local, "client", None)
        for client in self._clients:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - another thread's gevent client; its sockets go with the hub
                if client is mine:
                    raise
        self._clients.clear()
        self._local = threading.local()

    def __enter__(self) -> "TritonClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TritonRunner(Runner):
    """A unetrt runner whose model runs on a Triton server (same ``infer`` contract as local runners).

    The input checks (names, dtype, rank, channels, minimum size, alignment) come from the model's
    config and the unetrt contract its ``parameters`` carry, so ``unetrt.runtime.predict`` works
    unchanged (``runner.manifest`` is the export's typed manifest, served in the config).

    Args:
        url: ``http://host:port`` or ``grpc://host:port``.
        model: Model name on the server.
    """

    def __init__(self, url: str, model: str = "unet", *, timeout_s: float = 60.0):
        super().__init__(f"triton-{parse_url(url)[0]}:{model}")
        self.url, self.model, self.timeout_s = url, model, timeout_s
        self.client: TritonClient | None = None

    def _activate(self) -> None:
        client = TritonClient(self.url, timeout_s=self.timeout_s)
        try:
            config = client.model_config(self.model)
        except BaseException:
            client.close()
            raise
        self.manifest = served_manifest(config)
        if self.manifest is None:
            self.notes.append(f"{self.model}: no unetrt parameters in its config: only Triton's dims are checked")
        batched = int(config.get("max_batch_size", 0)) > 0
        lead = (None,) if batched else ()
        self._inputs = {}
        for t in config.get("input", []):
            dims = lead + tuple(None if int(d) < 0 else int(d) for d in t.get("dims", []))
            spec = InputConstraint(t["name"], NUMPY_DTYPES.get(t["data_type"], t["data_type"]), dims)
            section = self.manifest.input if self.manifest is not None and len(dims) == 4 else None
            self._inputs[t["name"]] = apply_manifest_input(spec, section)
        self._outputs = {t["name"]: TensorMeta(NUMPY_DTYPES.get(t["data_type"], t["data_type"]),
                                               lead + tuple(None if int(d) < 0 else int(d) for d in t.get("dims", [])))
                         for t in config.get("output", [])}
        self.client = client
        self.notes.append(f"served by Triton at {client.url} (model {self.model!r})")

    def _infer(self, feed: dict[str, Any], to_host: bool) -> dict[str, Any]:
        arrays = {n: np.ascontiguousarray(to_numpy(v)) for n, v in feed.items()}
        out = self.client.infer(self.model, arrays, list(self._outputs))
        return {k: np.array(v) for k, v in out.items()}  # writable copies, like local runners return

    def _deactivate(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


def segment_image(url: str, image: bytes, model: str = "unet_image") -> bytes:
    """Post an encoded image to the ``<name>_image`` ensemble; returns the PNG mask's bytes."""
    with TritonClient(url) as client:
        out = client.infer(model, {"IMAGE": np.frombuffer(bytes(image), dtype=np.uint8)[None]}, ["MASK"])
    return out["MASK"].tobytes()
