"""What a new user hits around unet-export (issue 10): permissions, interrupts, concurrent exports,
preflight checks, alignment, random weights, --shape, --debug, help texts, README and Makefile."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from unetrt.artifacts.profiles import ShapeProfile
from unetrt.cli import COMMANDS, main
from unetrt.errors import AlignmentError, OutputError, ProfileError
from unetrt.exporter import ExportConfig, export, pipeline
from unetrt.exporter.steps import EngineOptions

ROOT = Path(__file__).resolve().parents[2]
TINY = {"width": 4}


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def no_trace(monkeypatch):
    """Fail loudly if the export reaches tracing (the heavy part)."""
    def traced(*a, **kw):
        raise AssertionError("the export traced the model before refusing its configuration")
    monkeypatch.setattr(pipeline, "_trace_step", traced)


@pytest.mark.slow
def test_artifacts_and_staging_follow_the_umask(tmp_path, umask022):
    from unetrt.fileio import atomic_write_bytes

    seen = {}

    def progress(msg):
        if msg == "writing ONNX":
            staging = [p for p in tmp_path.iterdir() if p.name.startswith(".m.staging-")]
            seen["staging"] = staging[0].stat().st_mode & 0o777
    out = tmp_path / "m"
    export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(out), verify=False, engine=False),
           progress=progress)
    assert seen["staging"] == 0o755
    assert {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()} == {"model.onnx": 0o644, "manifest.json": 0o644}
    os.umask(0o027)
    assert atomic_write_bytes(tmp_path / "x.bin", b"1").stat().st_mode & 0o777 == 0o640


_SIGTERM_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from unetrt.exporter import ExportConfig, export
    def progress(msg):
        if msg.startswith("verifying parity"):
            os.kill(os.getpid(), signal.SIGTERM)
    export(ExportConfig(arch="milesial", model_kwargs={"width": 4}, output_dir=sys.argv[1], engine=False),
           progress=progress)
""")


@pytest.mark.slow
def test_sigterm_during_export_leaves_nothing_behind(tmp_path):
    out = tmp_path / "m"
    proc = subprocess.run([sys.executable, "-c", _SIGTERM_SCRIPT, str(out)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode != 0 and "Terminated" in proc.stderr, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == []              # no .m.staging-*, no lock file, no m/


def test_sigterm_in_the_cli_is_one_line_and_exit_143(tmp_path, monkeypatch):
    import signal

    real = pipeline._export

    def export_then_term(config, target, step):
        os.kill(os.getpid(), signal.SIGTERM)                             # handler installed by export()
        return real(config, target, step)

    monkeypatch.setattr(pipeline, "_export", export_then_term)
    previous = signal.getsignal(signal.SIGTERM)
    res = CliRunner().invoke(main, ["export", "--width", "4", "-o", str(tmp_path / "m"), "--no-engine"])
    assert res.exit_code == 143, res.output
    assert "terminated by signal 15" in res.output and "Traceback" not in res.output
    assert signal.getsignal(signal.SIGTERM) == previous and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_second_export_to_the_same_output_fails_naming_the_holder(tmp_path, no_trace):
    from unetrt.exporter.staging import lock_path

    out = tmp_path / "m"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(lock_path(out.resolve()))!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, str(os.getpid()).encode())
        print("locked", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError, match=rf"being written by another export \(pid {holder.pid}\)"):
            export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(out), engine=False))
    finally:
        holder.kill()
        holder.wait()
    assert not out.exists()


def test_lock_is_released_and_reusable(tmp_path):
    from unetrt.exporter.staging import OutputLock, lock_path

    target = tmp_path / "m"
    with OutputLock(target):
        assert lock_path(target).read_text().strip() == str(os.getpid())
        with pytest.raises(OutputError, match=f"pid {os.getpid()}"):
            OutputLock(target).__enter__()
    assert not lock_path(target).exists()
    with OutputLock(target):
        pass


def test_profile_the_model_cannot_take_is_refused_before_tracing(tmp_path, no_trace):
    one_channel = ShapeProfile((1, 1, 64, 64), (1, 1, 128, 128), (1, 1, 256, 256))
    config = ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(tmp_path / "m"),
                          engine_options=EngineOptions(profiles=[{"input": one_channel}]))
    with pytest.raises(ProfileError, match=r"profile 0 min shape 1x1x64x64 \| expected Nx3xHxW"):
        export(config)
    small = ShapeProfile((1, 3, 8, 8), (1, 3, 64, 64), (1, 3, 64, 64))
    with pytest.raises(ProfileError, match="H and W >= 16"):
        export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(tmp_path / "m"),
                            engine_options=EngineOptions(profiles=[{"input": small}])))
    with pytest.raises(AlignmentError, match="static shape 1x3x8x8"):
        export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(tmp_path / "m"), static_shape=(1, 8, 8)))
    assert not (tmp_path / "m").exists()


def test_align_accepts_only_what_the_model_admits(tmp_path, no_trace):
    from unetrt.exporter.preflight import admissible_alignment, alignment_cost

    with pytest.raises(AlignmentError, match="--align 7 is not an alignment milesial admits"):
        export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(tmp_path / "m"), align=7))
    assert [a for a in range(1, 50) if admissible_alignment(a, 1)] == [1, 2, 4, 8, 16, 32, 48]
    assert [a for a in range(1, 70) if admissible_alignment(a, 16)] == [16, 32, 48, 64]
    assert alignment_cost(16) == ("alignment 16: 256x256 runs as 256x256 (+0.0% pixels); worst case near it "
                                  "257x257 -> 272x272 (+12.0%)")
    assert "259x259 (+2.4% pixels)" in alignment_cost(7)


@pytest.mark.slow
def test_summary_names_random_weights_alignment_cost_and_progress(tmp_path):
    out = tmp_path / "m"
    res = CliRunner().invoke(main, ["export", "--width", "4", "--align", "16", "--no-verify", "--no-engine",
                                    "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert "weights random-init: no --checkpoint was given" in res.stderr
    assert "alignment 16: 256x256 runs as 256x256 (+0.0% pixels)" in res.stderr
    assert re.search(r"^\[\s+\d+\.\ds\] tracing with torch.export$", res.stderr, re.M), res.stderr  # plain lines
    summary = json.loads(res.stdout)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["weights"] == summary["weights"] == "random-init"
    assert any(n.startswith("alignment 16:") for n in manifest["export"]["notes"])


def test_shape_error_suggests_the_forms_it_accepts(tmp_path):
    res = CliRunner().invoke(main, ["export", "--static", "--shape", "1x1x3x256x256", "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert ("expected HxW or NxHxW, DxHxW or NxDxHxW with positive integers, e.g. 256x256 or 1x256x256, "
            "64x64x64 or 1x64x64x64") in " ".join(res.output.split())
    assert "NxCxHxW" not in res.output
    res = CliRunner().invoke(main, ["export", "--help"])
    help_text = " ".join(res.output.split())
    assert "without --shape: 1x256x256, 2-D models only" in help_text and "DxHxW or NxDxHxW (3-D models)" in help_text


def test_debug_flag_and_env_show_the_traceback(tmp_path, monkeypatch):
    args = ["export", "--arch", "milesal", "-o", str(tmp_path / "o")]
    plain = CliRunner().invoke(main, args)
    assert plain.exit_code == 1 and "Traceback" not in plain.output
    debug = CliRunner().invoke(main, [*args, "--debug"])
    assert debug.exit_code == 1 and "Traceback" in debug.output and "UnknownModelError" in debug.output
    env = CliRunner().invoke(main, args, env={"UNETRT_DEBUG": "1"})
    assert env.exit_code == 1 and "Traceback" in env.output
    assert debug.output.strip().splitlines()[-1] == plain.output.strip().splitlines()[-1]


def _commands():
    return [main.get_command(None, name) for name in COMMANDS]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help_and_debug(name):
    import click

    cmd = main.get_command(None, name)
    options = [p for p in cmd.params if isinstance(p, click.Option)]
    assert "debug" in {p.name for p in options}
    ctx = click.Context(cmd)
    missing = [p.opts[0] for p in options if not (p.get_help_record(ctx) or ("", ""))[1].strip()]
    assert missing == [], f"{name}: options without --help text: {missing}"


def test_model_factory_help_says_it_runs_the_file():
    res = CliRunner().invoke(main, ["export", "--help"], terminal_width=200)
    assert "runs that file's code" in res.output
    res = CliRunner().invoke(main, ["predict", "--help"], terminal_width=200)
    assert re.search(r"--backend BACKEND\s+\w", res.output), res.output


def test_readme_export_commands_do_not_collide_with_make_demo():
    demo_out = re.search(r"unet-export .*?-o (\S+)", (ROOT / "Makefile").read_text(), re.S).group(1)
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("## Export"):].split("```")[1]
    for line in block.splitlines():
        cmd = line.split("#")[0].split()
        if cmd[:1] != ["unet-export"]:
            continue
        out = cmd[cmd.index("-o") + 1] if "-o" in cmd else None
        arch = cmd[cmd.index("--arch") + 1] if "--arch" in cmd else ("user" if "--model" in cmd else "milesial")
        assert (out or f"export/{arch}") != demo_out or "--force" in cmd, line


def test_make_test_prints_time_and_fast_subset():
    text = (ROOT / "Makefile").read_text()
    recipe = text[text.index("\ntest:"):].split("\n\n")[0]
    assert "date +%s" in recipe and '-m \\"not slow\\"' in recipe


@pytest.mark.parametrize("opset", ["99", "17"])
def test_unsupported_opset_is_one_line_before_tracing(tmp_path, no_trace, opset):
    from unetrt.exporter.onnx_io import max_opset

    res = CliRunner().invoke(main, ["export", "--width", "4", "-o", str(tmp_path / "m"), "--opset", opset])
    assert res.exit_code != 0 and "Traceback" not in res.output
    if opset == "17":  # click's own range check
        assert "17 is not in the range x>=18" in res.output
        return
    assert res.output.strip().splitlines()[-1] == (
        f"Error: --opset 99 is outside what the installed torch ONNX exporter writes | expected an opset from 18 "
        f"to {max_opset()} | use --opset 18 (the default) to {max_opset()}")
    assert not (tmp_path / "m").exists()


def test_manifest_opset_is_the_files(tmp_path):
    import onnx

    from unetrt.exporter.onnx_io import file_opset

    out = tmp_path / "m"
    m = export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(out), verify=False, engine=False,
                            opset=19)).manifest
    written = file_opset(onnx.load(str(out / "model.onnx"), load_external_data=False))
    assert written == 19 and m.onnx.opset == m.export.opset == written


@pytest.mark.parametrize("options, match", [
    ({"timing_cache": "t.cache", "flavour": "tensorrt-rtx"}, "a timing cache was requested on tensorrt-rtx"),
    ({"compute_capabilities": ["SM86"], "flavour": "tensorrt"},
     "compute-capability targets \\['SM86'\\] were given to tensorrt"),
])
def test_flavour_refusals_come_before_tracing(tmp_path, no_trace, monkeypatch, options, match):
    from unetrt.errors import EngineBuildError
    from unetrt.exporter import steps

    flavour = options["flavour"]
    versions = {"tensorrt-rtx": "1.7.1.116", "tensorrt": "10.13.0.35"}
    # which flavour imports is machine state: resolve it to the one under test (its real option rules apply)
    monkeypatch.setattr(steps, "engine_flavour", lambda requested, f: (flavour, versions[flavour], True))
    opts = dict(options)
    if "timing_cache" in opts:
        opts["timing_cache"] = str(tmp_path / opts["timing_cache"])
    with pytest.raises(EngineBuildError, match=match):
        export(ExportConfig(arch="milesial", model_kwargs=TINY, output_dir=str(tmp_path / "m"), engine=True,
                            engine_options=EngineOptions(**opts)))
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("args", [
    ["export", "--width", "4", "--no-engine", "-o", "{long}"],
    ["export", "--width", "4", "--no-engine", "--fp16", "--calib-images", "{long}", "-o", "{tmp}/o"],
    ["triton", "{long}", "-o", "{tmp}/r"],
    ["inspect", "{long}"],
])
def test_paths_over_255_characters_are_one_line(tmp_path, args):
    """A name the file system refuses (ENAMETOOLONG) is one line in every command, nothing written (19.11)."""
    long = str(tmp_path / ("a" * 300))
    res = CliRunner().invoke(main, [a.format(long=long, tmp=tmp_path) for a in args])
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]  # after progress lines, if any
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    assert "255 characters" in lines[0] and res.output.rstrip().endswith(lines[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == []
