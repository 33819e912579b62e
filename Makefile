# Two commands matter to a newcomer: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build of torch from the local wheel index on these machines; real users get CUDA wheels.
TORCH_SPEC ?= torch==2.13.0

DEMO_OUT := demo/sample.restored.mp4

.PHONY: demo test venv install install-test lint bench bundle bundle-test screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install "$(TORCH_SPEC)"
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(BIN)/seedvr-desktop demo --output $(DEMO_OUT)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: $(VENV)/.installed-test
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/classic.py
	$(BIN)/python bench/model.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/scrub.py

# Screenshots of the main window in each compare mode (needs Xvfb), into screenshots/.
screenshots: $(VENV)/.installed-test
	if [ -n "$$DISPLAY" ]; then $(BIN)/python bench/screenshots.py; \
	else xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python bench/screenshots.py; fi

# The PyInstaller one-folder app, built from a clean venv so nothing stray gets bundled.
BUNDLE_VENV := build/bundle-venv
BUNDLE_BIN := $(BUNDLE_VENV)/bin
BUNDLE_APP := build/dist/seedvr-desktop

bundle:
	rm -rf $(BUNDLE_VENV) build/work $(BUNDLE_APP)
	$(PYTHON) -m venv $(BUNDLE_VENV)
	$(BUNDLE_BIN)/python -m pip install --upgrade pip
	$(BUNDLE_BIN)/pip install "$(TORCH_SPEC)"
	$(BUNDLE_BIN)/pip install ".[bundle]"
	start=$$(date +%s); \
	$(BUNDLE_BIN)/pyinstaller packaging/seedvr_desktop.spec --distpath build/dist \
		--workpath build/work --noconfirm --log-level WARN && \
	echo $$(( $$(date +%s) - start )) > build/bundle-build-seconds

bundle-test: bundle
	bash packaging/bundle_test.sh $(BUNDLE_APP)

clean:
	rm -rf build dist *.egg-info
