# SSL Studio. `make run` installs what is needed and starts the app; `make test` installs what
# is needed and runs the test suite. Both reuse the environment on a second call.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8501
# Folders the app may read images from when it listens beyond localhost (LAN mode); several
# are separated by ':'. Outside them a participant's folder path is refused.
DATA_ROOT ?= $(CURDIR)/data
LOCAL_HOSTS := 127.0.0.1 localhost ::1
LAN := $(if $(filter $(HOST),$(LOCAL_HOSTS)),0,1)
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test test-all test-e2e lint bench install install-dev chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files make the installs idempotent: pip runs again only when a requirements file changes.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/python -m pip install -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	mkdir -p "$(CURDIR)/data"
	SSL_STUDIO_LAN=$(LAN) SSL_STUDIO_DATA_ROOTS="$(DATA_ROOT)" \
	$(BIN)/python -m streamlit run streamlit_app.py --server.fileWatcherType none \
		--server.address $(HOST) --server.port $(PORT) --server.headless true \
		--browser.gatherUsageStats false

# Debian's Chromium drives the end-to-end browser tests (Playwright's own browser download does
# not work offline). Installed when missing and we may install system packages.
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
		elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium; \
		else echo "chromium not installed and no root: browser tests will be skipped"; fi; \
	fi

test: install-dev chromium
	$(BIN)/python -m pytest

test-all: install-dev chromium
	$(BIN)/python -m pytest -m "" --timeout 1800

lint: install-dev
	$(BIN)/ruff check engine app tests bench streamlit_app.py

bench: install-dev
	$(BIN)/python -m pip install -r bench/requirements.txt
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
