# Two commands for a fresh machine (see README.md):
#   make run    set everything up, then start Flowork (tray app with a display, headless engine without)
#   make test   set everything up, then run the whole test suite
# Windows (make from Git Bash): python.org's and setup-python's Python is `python`, and a venv
# keeps its programs in Scripts\ instead of bin/.
ifeq ($(OS),Windows_NT)
PYTHON ?= python
BIN    := Scripts
else
PYTHON ?= python3
BIN    := bin
endif
VENV   ?= .venv
PY     := $(VENV)/$(BIN)/python
STAMP  := $(VENV)/.flowork-installed

.PHONY: run test venv system-deps bench bench-quick dist smoke clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Flowork needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[desktop,test,build]'
	@touch $@

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/$(BIN)/flowork

system-deps:
	@bash scripts/install-system-deps.sh

test: $(STAMP) system-deps
	$(PY) -m pytest

# Benchmarks against same-run baselines (bench/RESULTS.md); bench-quick: small counts, as CI runs them.
bench: $(STAMP)
	$(PY) -m bench.run

bench-quick: $(STAMP)
	$(PY) -m bench.run --quick

# Installers for the OS this runs on (README "Building the installers"): the PyInstaller folder
# dist/flowork from build.spec, then the .deb and .tar.gz (Linux), the .dmg (macOS) or the
# NSIS setup .exe (Windows, where make runs from Git Bash and makensis must be on PATH).
# Windows signing: with FLOWORK_SIGN_WINDOWS set to a command that signs the files it is given
# in place (the release workflow uses scripts/sign-windows.ps1), both programs are signed before
# makensis packs them and the setup program after.
ifeq ($(shell uname -s),Linux)
DIST_DEPS := $(STAMP) system-deps
else
DIST_DEPS := $(STAMP)
endif
DIST_PY := $(PY)
DIST_VERSION = $(DIST_PY) -c 'import sys; sys.path.insert(0, "installer/pyinstaller"); import bundle_config as c; v = c.project_version(); print(".".join(map(str, c.version_tuple(v))) if sys.argv[1:] == ["quad"] else v)'

dist: $(DIST_DEPS)
	$(DIST_PY) -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller build.spec
ifeq ($(OS),Windows_NT)
	$(if $(FLOWORK_SIGN_WINDOWS),$(FLOWORK_SIGN_WINDOWS) dist/flowork/flowork.exe dist/flowork/flowork-engine.exe)
	makensis -DVERSION=$$($(DIST_VERSION)) -DVERSION_QUAD=$$($(DIST_VERSION) quad) installer/windows/flowork.nsi
	$(if $(FLOWORK_SIGN_WINDOWS),$(FLOWORK_SIGN_WINDOWS) dist/Flowork-Setup-$$($(DIST_VERSION)).exe)
else ifeq ($(shell uname -s),Darwin)
	bash installer/macos/build-dmg.sh
else ifeq ($(shell uname -s),Linux)
	bash installer/linux/build-deb.sh
endif
	@du -sh dist/flowork

# The built installers' headless engine answers a signed opening burst (scripts/smoke_bundle.py).
smoke: $(STAMP)
	$(PY) scripts/smoke_bundle.py --installers dist

clean:
	rm -rf $(VENV) build dist .pytest_cache
