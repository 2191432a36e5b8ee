"""``unetrt serve``: a real Triton server over an export's unetrt runner."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from .options import handle_errors, make_console
from .triton import serving_options


@click.command("serve")
@handle_errors
@click.argument("export_dir", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address every endpoint binds to.")
@click.option("--http-port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--grpc-port", type=click.IntRange(1, 65535), default=8001, show_default=True)
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=8002, show_default=True)
@click.option("--name", default="unet", show_default=True, help="Model name (the ensemble is NAME_image).")
@serving_options
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="cpu: ONNX Runtime; gpu: the export's TensorRT engine.")
@click.option("--with-preprocess/--no-preprocess", default=True, show_default=True,
              help="Also serve NAME_image (image bytes in, PNG mask out).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="ONNX Runtime intra-op threads per CPU instance (default: ONNX Runtime's).")
@click.option("--startup-timeout", type=click.FloatRange(min=1), default=180, show_default=True, metavar="S")
@click.option("--drain-timeout", type=click.IntRange(min=0), default=5, show_default=True, metavar="S",
              help="Seconds in-flight requests may take to finish on SIGINT/SIGTERM (tritonserver's "
                   "--exit-timeout-secs); the server is killed after S + 5.")
@click.option("--allow-admin-apis", is_flag=True,
              help="Leave Triton's shared-memory, model-repository, trace and logging APIs open (closed by "
                   "default: they answer 403 without a key only this process knows).")
def serve_cmd(export_dir, host, http_port, grpc_port, metrics_port, name, max_batch, instances, max_queue_delay_us,
              dynamic_batching, max_pixels, device, with_preprocess, threads, startup_timeout, drain_timeout,
              allow_admin_apis):
    """Serve EXPORT_DIR with Triton (python backend running the unetrt runner) until SIGINT/SIGTERM."""
    from ..errors import ServeError, terminate_as_interrupt
    from ..serve.deps import tritonserver_dist
    from ..serve.repository import write_repository
    from ..serve.server import TritonServer, check_port, is_loopback

    tritonserver_dist()  # a missing serving extra is said before anything about ports
    err_console = make_console()
    if not is_loopback(host):
        err_console.print(f"[yellow]warning:[/] --host {host} exposes the server to the network without "
                          "authentication: anyone who reaches it may run inference"
                          + ("" if allow_admin_apis else " (the admin APIs stay closed)")
                          + "; bind 127.0.0.1 behind a proxy unless that is what you want")
    for flag, port in (("--http-port", http_port), ("--grpc-port", grpc_port), ("--metrics-port", metrics_port)):
        check_port(host, port, flag)
    with tempfile.TemporaryDirectory(prefix="unetrt-serve-") as tmp:
        repo = Path(tmp) / "repository"
        write_repository(export_dir, repo, name=name, platforms="python", max_batch=max_batch, instances=instances,
                         max_queue_delay_us=max_queue_delay_us, dynamic_batching=dynamic_batching,
                         with_preprocess=with_preprocess, device=device, threads=threads, max_pixels=max_pixels)
        server = TritonServer(repo, host=host, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port,
                              startup_timeout_s=startup_timeout, exit_timeout_s=drain_timeout,
                              restrict_admin_apis=not allow_admin_apis)
        err_console.print(f"starting tritonserver for {export_dir} …")
        models = f"{name}" + (f", {name}_image" if with_preprocess else "")

        def ready() -> None:  # said once Ctrl-C/SIGTERM stop the server cleanly
            err_console.print(f"ready: HTTP {server.http_url}  gRPC {server.grpc_url}  metrics {server.metrics_url}  "
                              f"models {models}  (Ctrl-C or SIGTERM stops it)")

        # SIGTERM before serving (while starting, or just after) unwinds: the server is stopped, exit 143
        with terminate_as_interrupt():
            try:
                server.start()
                code = server.serve_forever(on_ready=ready)
            finally:
                server.stop()
        if code:
            raise ServeError(f"tritonserver exited with code {code} on shutdown: {server.last_errors}",
                             "exit code 0 (every in-flight request finished)",
                             "raise --drain-timeout if requests were cut off, else see the quoted log lines")
        err_console.print(f"stopped (tritonserver exit code {code})")
