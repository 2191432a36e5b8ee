# Two commands set everything up on a fresh machine:
#   make demo   - create .venv, install unetrt, export the built-in demo model (milesial) to ONNX,
#                 FP16 ONNX and a TensorRT-RTX engine, print parity, and segment the sample images
#   make test   - create .venv with the dev extras, run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
DEMO_ARGS ?=

.PHONY: demo test venv dev clean typecheck gpu-check

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=23.1"

# Stamp files make the second run fast: reinstall only when the metadata changes.
$(VENV)/.installed-base: $(VENV)/bin/python setup.cfg pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e '.[cpu,rtx]'
	@touch $@

$(VENV)/.installed-dev: $(VENV)/bin/python setup.cfg pyproject.toml constraints.txt scripts/trt_stubs.py
	$(PIP) install -c constraints.txt -e '.[cpu,dev,rtx]'
	$(PIP) install --no-deps 'nvidia-pytriton>=0.7'  # its tritonserver binary only (its numpy<2 pin skipped)
	$(PY) scripts/trt_stubs.py $(VENV)/typestubs
	@touch $@ $(VENV)/.installed-base

venv: $(VENV)/.installed-base
dev: $(VENV)/.installed-dev

DEMO_CKPT := unetrt/assets/milesial_demo.pth
DEMO_SAMPLES := $(filter-out %_mask.png,$(wildcard unetrt/assets/samples/*.png))

demo: $(VENV)/.installed-base
	$(VENV)/bin/unet-export --arch milesial --checkpoint $(DEMO_CKPT) --classes 3 --width 8 --fp16 \
		--int8 --calib-images unetrt/assets/samples \
		-o export/milesial --force $(DEMO_ARGS)
	@mkdir -p export/milesial-predictions
	$(VENV)/bin/unet-predict -m export/milesial $(addprefix -i ,$(DEMO_SAMPLES)) \
		-o export/milesial-predictions/ --overlay --force

# Prints how long the suite took and the command for the fast subset (the tests not marked slow; a few
# minutes), which tests/test_make_test.py checks runs `pytest -m "not slow"` when pasted into a shell.
test: $(VENV)/.installed-dev
	@start=$$(date +%s); $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	echo "make test: $$(( $$(date +%s) - start )) s (exit $$rc). Fast subset (not marked slow): make test PYTEST_ARGS='-m \"not slow\"'"; \
	exit $$rc

# mypy over the TensorRT-facing modules against tensorrt-stubs (TensorRT 10.13); also run by the test suite.
TYPECHECKED := unetrt/runtime/trt.py unetrt/exporter/trt_builder.py unetrt/exporter/trt_support.py \
	unetrt/artifacts/trt.py unetrt/runtime/engine_choice.py unetrt/runtime/cuda_device.py unetrt/runtime/ort.py \
	unetrt/artifacts/dtypes.py unetrt/bench/timing.py
typecheck: $(VENV)/.installed-dev
	MYPYPATH=$(VENV)/typestubs $(PY) -m mypy $(TYPECHECKED)

# On a machine with an NVIDIA GPU (CUDA 13 driver): installs the GPU set into its own venv (.venv-gpu:
# onnxruntime-gpu + CUDA/cuDNN wheels, TensorRT 10 for CUDA 13, TensorRT-RTX, the dev tools; no CPU
# onnxruntime), then gpu tests, export + engine + run + parity per installed TensorRT flavour, a short
# bench. Fails when a backend expected on this GPU did not run; writes gpu-check/report.json and
# report.md with the versions that ran (cold TensorRT builds: up to about 40 minutes).
GPU_VENV ?= .venv-gpu
$(GPU_VENV)/.installed-gpu: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(GPU_VENV)
	$(GPU_VENV)/bin/python -m pip --disable-pip-version-check -q install --upgrade "pip>=23.1"
	$(GPU_VENV)/bin/python -m pip --disable-pip-version-check -q install -c constraints.txt -e '.[gpu,rtx,dev]'
	@touch $@

gpu-check: $(GPU_VENV)/.installed-gpu
	$(GPU_VENV)/bin/python scripts/gpu_check.py --out gpu-check $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) $(GPU_VENV) export .pytest_cache .hypothesis
