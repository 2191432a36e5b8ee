"""Shared click options and parameter types for the unetrt CLIs."""

from __future__ import annotations

import errno
import json
import traceback
from functools import wraps
from typing import Any, Callable

import click

from rich.console import Console

from ..errors import ParityError, Terminated, UnetrtError, format_message

#: The zoo variant used when neither --arch nor --model is given.
DEFAULT_ARCH = "milesial"
#: Exit status after SIGTERM, as a shell reports a process killed by it (128 + 15).
SIGTERM_EXIT = 143
#: Exit status after Ctrl-C (SIGINT), as a shell reports it (128 + 2).
SIGINT_EXIT = 130


def make_console(stderr: bool = True) -> Console:
    """A rich console for summaries and progress (stderr by default, so ``--json`` on stdout stays clean).

    On a terminal it wraps at the terminal's width; in logs, pipes and CI (not a terminal) lines are
    never wrapped or cut (``soft_wrap``, tables at their natural width), so hashes and paths stay whole.
    """
    con = Console(stderr=stderr)
    if con.is_terminal:
        return con
    return Console(stderr=stderr, soft_wrap=True, width=4096)


def handle_errors(fn):
    """Add ``--debug`` (also ``UNETRT_DEBUG=1``) to a command and turn :class:`UnetrtError` into one clean
    error line and exit code 1 (a parity failure prints its table first). With ``--debug`` the traceback
    is printed first; other exceptions always keep theirs. SIGTERM during an export exits 143 and Ctrl-C
    exits 130, each with one line."""
    @wraps(fn)
    def wrapper(*args, debug=False, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Terminated as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"Error: {exc} | nothing was written (staging files removed)", err=True)
            raise SystemExit(SIGTERM_EXIT) from exc
        except KeyboardInterrupt as exc:
            if debug:
                traceback.print_exc()
            click.echo("Error: interrupted (Ctrl-C) | nothing half-written is left behind", err=True)
            raise SystemExit(SIGINT_EXIT) from exc
        except UnetrtError as exc:
            if debug:
                traceback.print_exc()
            if isinstance(exc, ParityError) and exc.table:
                click.echo(exc.table, err=True)
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:  # other OS errors keep their traceback (a bug to report)
                raise
            if debug:
                traceback.print_exc()
            name = str(exc.filename or "")
            raise click.ClickException(format_message(
                f"path {name[:80]}{'…' if len(name) > 80 else ''} is too long ({len(name)} characters)",
                "a path the file system accepts (each name at most 255 characters)",
                "use a shorter path (or a symlink to its folder)")) from exc
    return click.option("--debug", is_flag=True, envvar="UNETRT_DEBUG", show_envvar=True,
                        help="Show the full traceback of errors too (for bug reports).")(wrapper)


def merge_model_kwargs(factory, kwargs, in_channels, classes, width, bilinear) -> dict:
    """Merge --model-kwargs with the explicit zoo options (explicit options win); the zoo options
    are refused with --model, whose factory arguments belong in --model-kwargs."""
    merged = dict(kwargs or {})
    explicit = {"in_channels": in_channels, "num_classes": classes, "width": width, "bilinear": bilinear}
    given = {k: v for k, v in explicit.items() if v is not None}
    if factory and given:
        flags = ", ".join("--" + k.replace("num_classes", "classes").replace("_", "-") for k in given)
        raise UnetrtError(f"{flags} only apply to zoo variants (--arch)", "factory arguments in --model-kwargs",
                          f"pass them as --model-kwargs '{json.dumps(given)}'")
    merged.update(given)
    return merged


class JsonKwargs(click.ParamType):
    """A JSON object, e.g. ``'{"width": 32, "bilinear": true}'``."""

    name = "JSON"

    def convert(self, value, param, ctx):
        if isinstance(value, dict):
            return value
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            self.fail(f"invalid JSON {value!r} ({exc.msg} at column {exc.colno}) | expected a JSON object such "
                      f"as '{{\"width\": 32}}' | quote it for your shell", param, ctx)
        if not isinstance(data, dict):
            self.fail(f"{value!r} is a JSON {type(data).__name__} | expected a JSON object such as "
                      f"'{{\"width\": 32}}'", param, ctx)
        return data


class Shape(click.ParamType):
    """``NxCxHxW`` / ``NxHxW`` / ``HxW`` sizes, e.g. ``1x3x256x256``."""

    name = "SHAPE"

    def __init__(self, ranks: tuple[int, ...] = (2, 3, 4), forms: dict[int, str] | None = None):
        self.ranks = ranks
        self.forms = forms or {}

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            dims = tuple(int(d) for d in str(value).lower().split("x"))
        except ValueError:
            dims = ()
        if len(dims) not in self.ranks or any(d < 1 for d in dims):
            names = {2: "HxW", 3: "NxHxW", 4: "NxCxHxW", 5: "NxCxDxHxW"}
            example = {2: "256x256", 3: "1x256x256", 4: "1x3x256x256", 5: "1x1x64x96x80"}
            for rank, (form, ex) in self.forms.items():
                names[rank], example[rank] = form, ex
            forms = " or ".join(names[r] for r in self.ranks)
            examples = " or ".join(example[r] for r in self.ranks)
            self.fail(f"invalid shape {value!r} | expected {forms} with positive integers, e.g. {examples}",
                      param, ctx)
        return dims


class Align(click.ParamType):
    """``auto`` or a positive integer."""

    name = "auto|N"

    def convert(self, value, param, ctx):
        if value is None or value == "auto":
            return None
        try:
            n = int(value)
        except (TypeError, ValueError):
            n = 0
        if n < 1:
            self.fail(f"invalid alignment {value!r} | expected 'auto' or a positive integer such as 16", param, ctx)
        return n


JSON_KWARGS = JsonKwargs()
ALIGN = Align()


def apply_options(f, options):
    """Decorate ``f`` with a list of click options, listed in ``--help`` in the list's order."""
    for option in reversed(options):
        f = option(f)
    return f


def model_options(f):
    """--arch/--model/--model-kwargs/--checkpoint and the common model kwargs."""
    options = [
        click.option("--arch", "-a", default=None, help="Zoo variant (see `unetrt models`). Default: milesial."),
        click.option("--model", "factory", default=None, metavar="PKG.MODULE:FACTORY",
                     help="Any nn.Module factory instead of a zoo variant: an importable pkg.module:factory, or "
                          "path/to/file.py:factory (runs that file's code, like `python file.py` would: "
                          "only use files you trust)."),
        click.option("--model-kwargs", type=JSON_KWARGS, default=None, help="Keyword arguments as a JSON object."),
        click.option("--checkpoint", "-c", type=click.Path(dir_okay=False), default=None,
                     help="State dict / milesial checkpoint (loaded with weights_only=True)."),
        click.option("--in-channels", type=click.IntRange(min=1), default=None, help="Input channels."),
        click.option("--classes", type=click.IntRange(min=1), default=None, help="Output classes."),
        click.option("--width", type=click.IntRange(min=1), default=None, help="Base channel width."),
        click.option("--bilinear/--no-bilinear", default=None, help="milesial: bilinear upsampling decoder."),
    ]
    return apply_options(f, options)


def option_group(options: list, build: Callable[..., Any], name: str):
    """A decorator adding ``options`` to a command and passing their values to it as one argument:
    ``name=build(**values)`` (e.g. an option dataclass) instead of one argument per option.

    ``build`` runs when the command is invoked (it may import heavy modules: ``--help`` stays light)."""
    def probe():
        pass
    params = [p.name for p in apply_options(probe, options).__click_params__]

    def decorate(f):
        @wraps(f)
        def wrapper(*args, **kwargs):
            kwargs[name] = build(**{p: kwargs.pop(p) for p in params})
            return f(*args, **kwargs)
        return apply_options(wrapper, options)
    return decorate


def verify_group(f):
    """--no-verify and --atol, passed to the command as ``verify_options`` (:class:`VerifyOptions`)."""
    options = [
        click.option("--no-verify", is_flag=True, help="Skip the ONNX Runtime vs eager parity sweep."),
        click.option("--atol", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True,
                     help="FP32 parity bar: max abs error <= ATOL * max(1, |ref|max)."),
    ]
    def build(no_verify, atol):
        from ..exporter.config import VerifyOptions

        return VerifyOptions(enabled=not no_verify, atol_factor=atol)
    return option_group(options, build, "verify_options")(f)


def labels_group(f):
    """--labels-output and --labels-threshold, passed as ``labels_options`` (:class:`LabelsOptions`)."""
    options = [
        click.option("--labels-output", is_flag=True,
                     help="Also write model_labels.onnx: the FP32 graph with ArgMax (one class: the sigmoid "
                          "threshold) appended, returning Nx1xHxW uint8 labels (checked identical to "
                          "post-processing the logits)."),
        click.option("--labels-threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                     help="Sigmoid threshold a one-class model's labels graph decides with (unet-predict's "
                          "--mask-threshold)."),
    ]

    def build(labels_output, labels_threshold):
        from ..exporter.config import LabelsOptions

        return LabelsOptions(enabled=labels_output, threshold=labels_threshold)
    return option_group(options, build, "labels_options")(f)


def fp16_group(f):
    """--fp16 and its accuracy controls, passed as ``fp16_options`` (:class:`Fp16Options`)."""
    options = [
        click.option("--fp16", is_flag=True, help="Also write model_fp16.onnx (FP16 weights/activations, FP32 I/O) "
                     "and build the engine from it."),
        click.option("--fp16-io", is_flag=True, help="FP16 inputs/outputs too (implies --fp16)."),
        click.option("--fp16-atol", type=click.FloatRange(min=0, min_open=True), default=1e-2, show_default=True,
                     help="FP16 bar: max abs <= FP16_ATOL * max(1, |ref|max) vs eager FP32."),
        click.option("--fp16-argmax", type=click.FloatRange(0, 1), default=0.995, show_default=True,
                     help="FP16 bar: minimum argmax (mask) agreement with eager FP32."),
    ]

    def build(fp16, fp16_io, fp16_atol, fp16_argmax):
        from ..exporter.config import Fp16Options

        return Fp16Options(enabled=fp16 or fp16_io, io=fp16_io, atol=fp16_atol, min_argmax=fp16_argmax)
    return option_group(options, build, "fp16_options")(f)


CALIB_IMAGES = click.option(
    "--calib-images", type=click.Path(file_okay=False), default=None,
    help="Folder of images/.npy inputs (preprocessed like unet-predict; *_mask files skipped) driving which "
         "nodes stay FP32 and the INT8 calibration.")


def int8_group(f):
    """--int8, its calibration and its accuracy bars, passed as ``int8_options`` (:class:`Int8Options`)."""
    options = [
        click.option("--int8", is_flag=True, help="Also write model_int8.onnx (TensorRT Q/DQ: symmetric int8, "
                     "per-channel weights, float biases) and, with an engine, model_int8.engine."),
        click.option("--int8-cpu", is_flag=True, help="Also write model_int8_cpu.onnx (uint8 asymmetric: ONNX "
                     "Runtime CPU's fastest form; implies --int8)."),
        click.option("--calib-count", type=int, default=16, show_default=True,
                     help="INT8 calibration inputs taken from --calib-images (the next ones are held out to "
                          "measure accuracy)."),
        click.option("--calib-method", type=click.Choice(["minmax", "entropy", "percentile"]), default="minmax",
                     show_default=True, help="INT8 calibration method (entropy/percentile crop the inputs to one "
                                             "size)."),
        click.option("--int8-argmax", type=click.FloatRange(0, 1), default=0.99, show_default=True,
                     help="INT8 bar: minimum mask (argmax) agreement with eager FP32, every pixel."),
        click.option("--int8-dice", type=click.FloatRange(0, 1), default=0.98, show_default=True,
                     help="INT8 bar: minimum mean Dice of the INT8 masks against the FP32 masks."),
        click.option("--int8-max-float", type=click.IntRange(min=0), default=None,
                     help="Most nodes the INT8 search may keep in float (default: no limit); 0 = fail unless "
                          "the plain quantization meets the bars."),
    ]

    def build(int8, int8_cpu, calib_count, calib_method, int8_argmax, int8_dice, int8_max_float):
        from ..exporter.config import Int8Options

        return Int8Options(enabled=int8 or int8_cpu, cpu=int8_cpu, calib_count=calib_count, calib_method=calib_method,
                           min_argmax=int8_argmax, min_dice=int8_dice, max_float=int8_max_float)
    return option_group(options, build, "int8_options")(f)


def engine_group(f):
    """TensorRT engine-build options (trtexec-style), passed as ``engine_options`` (:class:`EngineOptions`)."""
    shape = Shape((4, 5))
    options = [
        click.option("--engine/--no-engine", default=None,
                     help="Build a TensorRT engine (default: when tensorrt or tensorrt_rtx imports)."),
        click.option("--trt", type=click.Choice(["auto", "tensorrt", "tensorrt-rtx"]), default="auto",
                     show_default=True, help="TensorRT flavour (auto: TensorRT first, then TensorRT-RTX)."),
        click.option("--min-shape", type=shape, multiple=True, help="Profile min NxCxHxW or NxCxDxHxW (repeat: more profiles)."),
        click.option("--opt-shape", type=shape, multiple=True, help="Profile opt NxCxHxW."),
        click.option("--max-shape", type=shape, multiple=True, help="Profile max NxCxHxW."),
        click.option("--workspace", type=click.IntRange(min=1), default=None, metavar="MiB",
                     help="Workspace memory-pool limit."),
        click.option("--builder-opt-level", type=click.IntRange(0, 5), default=None,
                     help="Builder optimisation level (TensorRT default 3)."),
        click.option("--timing-cache", type=click.Path(dir_okay=False), default=None,
                     help="Timing-cache file, reused across builds (TensorRT only)."),
        click.option("--compute-capability", multiple=True, metavar="SMxx",
                     help="TensorRT-RTX target (repeat), e.g. SM86 SM89 SM120."),
        click.option("--version-compatible", is_flag=True,
                     help="Version-compatible plan: also loads on later TensorRT releases of the same major "
                          "(standard TensorRT >= 10)."),
        click.option("--hardware-compat", type=click.Choice(["ampere-plus", "same-compute-capability"]),
                     default=None, help="Hardware-compatible plan: runs on any Ampere+ GPU, or any GPU of the build "
                                        "GPU's compute capability (standard TensorRT)."),
        click.option("--strip-weights", is_flag=True,
                     help="Weight-stripped plan (small; refitted from the ONNX at load, or by `unetrt refit`)."),
        click.option("--refittable", is_flag=True, help="Refittable plan (BuilderFlag.REFIT)."),
        click.option("--tf32/--no-tf32", default=None,
                     help="Let TensorRT use TF32 for FP32 layers (default: off for FP32 engines, on for FP16)."),
        click.option("--detailed-profiling/--no-detailed-profiling", default=True, show_default=True,
                     help="Build with profiling_verbosity=DETAILED so `unetrt inspect` shows layer detail."),
    ]

    def build(engine, trt, min_shape, opt_shape, max_shape, workspace, builder_opt_level, timing_cache,
              compute_capability, version_compatible, hardware_compat, strip_weights, refittable, tf32,
              detailed_profiling):
        from ..exporter.config import EngineOptions

        return EngineOptions(build=engine, flavour=trt, profiles=build_profiles(min_shape, opt_shape, max_shape),
                             workspace_bytes=workspace * 2**20 if workspace else None,
                             optimization_level=builder_opt_level, timing_cache=timing_cache,
                             compute_capabilities=list(compute_capability) or None,
                             version_compatible=version_compatible, tf32=tf32, detailed_profiling=detailed_profiling,
                             hardware_compatibility=hardware_compat.replace("-", "_") if hardware_compat else None,
                             strip_weights=strip_weights, refittable=refittable)
    return option_group(options, build, "engine_options")(f)


def build_profiles(mins, opts, maxs):
    """Zip --min/--opt/--max-shape into optimisation profiles (None when none given)."""
    from ..errors import ProfileError
    from ..artifacts.profiles import ShapeProfile

    if not (mins or opts or maxs):
        return None
    if not (len(mins) == len(opts) == len(maxs)):
        raise ProfileError(f"got {len(mins)} --min-shape, {len(opts)} --opt-shape, {len(maxs)} --max-shape",
                           "the same number of each (one per profile)", "give all three for every profile")
    return [{"input": ShapeProfile(tuple(a), tuple(b), tuple(c))} for a, b, c in zip(mins, opts, maxs)]


class LiveHelpOption(click.Option):
    """An option whose help text is computed when help is shown (``help_fn()``), not at import time:
    e.g. the list of registered backends, which a plugin may extend after this module loaded."""

    def __init__(self, *args, help_fn=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.help_fn = help_fn

    def get_help_record(self, ctx):
        if self.help_fn is not None:
            self.help = self.help_fn()
        return super().get_help_record(ctx)


class BackendName(click.ParamType):
    """``auto``, a backend family (``torch``/``ort``/``trt``) or a registered backend name."""

    name = "BACKEND"

    def convert(self, value, param, ctx):
        from ..runtime import backends as registry

        try:
            registry.resolve(value)
        except UnetrtError:
            self.fail(f"unknown backend {value!r} | expected auto, torch, ort, trt or one of "
                      f"{', '.join(registry.names())}", param, ctx)
        return value


def backends_help(prefix: str) -> str:
    """``prefix`` followed by every registered backend and what it runs."""
    from ..runtime import backends as registry

    return f"{prefix} Registered: " + "; ".join(f"{b.name} ({b.description})" for b in registry.backends()) + "."


def _is_option(token: str) -> bool:
    return token.startswith("-") and len(token) > 1


class GreedyOption(click.Option):
    """A ``multiple`` option that also takes the values after it, up to the next option, when its
    command is a :class:`GreedyCommand`: ``-i a.png b.png`` reads like argparse's ``nargs='+'``
    (milesial's predict.py) and ``-i a.png -i b.png`` still works."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("multiple", True)
        super().__init__(*args, **kwargs)


def regroup_greedy(args: list[str], flags: set[str]) -> list[str]:
    """``-i a b -o x`` -> ``-i a -i b -o x`` for the ``flags`` of greedy options (``--input=a b`` and
    ``-ia b`` too); everything from ``--`` on is left as it is."""
    out: list[str] = []
    greedy: str | None = None   # the greedy flag whose values are being read
    needs_value = False         # right after the flag: its first value follows as usual
    for k, token in enumerate(args):
        if token == "--":
            return out + args[k:]
        out_token = [token]
        if _is_option(token):
            if token.startswith("--"):
                name, attached = token.split("=", 1)[0], "=" in token
            else:
                name, attached = token[:2], len(token) > 2
            greedy = name if name in flags else None
            needs_value = greedy is not None and not attached
        elif greedy is not None and not needs_value:
            out_token = [greedy, token]
        else:
            needs_value = False
        out.extend(out_token)
    return out


class GreedyCommand(click.Command):
    """A command whose :class:`GreedyOption` options take several values after one flag: argv is regrouped
    (``-i a b`` -> ``-i a -i b``) before click parses it, so click's parser runs unmodified."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        flags = {opt for p in self.params if isinstance(p, GreedyOption) for opt in p.opts}
        return super().parse_args(ctx, regroup_greedy(list(args), flags))


class Device(click.ParamType):
    """Where a command runs: ``auto`` (a CUDA GPU when one is usable, else the CPU), ``cpu`` or ``cuda``.

    ``gpu`` is accepted as another name for ``cuda``."""

    name = "auto|cpu|cuda"
    choices = ("auto", "cpu", "cuda")
    aliases = {"gpu": "cuda"}

    def convert(self, value, param, ctx):
        text = str(value).strip().lower()
        text = self.aliases.get(text, text)
        if text not in self.choices:
            self.fail(f"unknown device {value!r} | expected auto, cpu or cuda (gpu = cuda) | pass --device cpu "
                      f"to stay off the GPU", param, ctx)
        return text

    def get_metavar(self, param, ctx=None):
        return "[" + "|".join(self.choices) + "]"

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        return [CompletionItem(c) for c in self.choices if c.startswith(incomplete)]


DEVICE = Device()
#: The one help text of ``--device`` in every command.
DEVICE_HELP = "Where to run: auto (a CUDA GPU when one is usable, else the CPU), cpu or cuda (gpu = cuda)."


def device_option(default: str = "auto", help: str = DEVICE_HELP):
    """``--device`` with the vocabulary every command shares (:class:`Device`)."""
    return click.option("--device", type=DEVICE, default=default, show_default=True, help=help)
