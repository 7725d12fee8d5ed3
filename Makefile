# The two commands: `make run` and `make test`. Both set everything up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | md5sum | cut -c1-8)
export FLASK_APP := wsgi.py

.PHONY: run test bench-smoke install system-deps browser clean

run: install
	$(BIN)/python scripts/run.py

# `make test` runs tests/bench/test_bench_smoke.py with the rest: every bench at a tiny size, so a broken bench fails CI.
test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The benchmarks alone at a tiny size (seconds each; the same tests `make test` runs). Figures: bench/README.md.
bench-smoke: install
	$(BIN)/python -m pytest tests/bench $(PYTEST_ARGS)

install: system-deps $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)
	mkdir -p instance

# Debian libraries WeasyPrint needs (harfbuzz subsetting makes PDFs 3-7x faster), and the invoice's fonts
# (app/templates/documents/invoice.css; fonts-noto-cjk prints Japanese, Chinese and Korean).
SYSTEM_LIBS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-liberation fonts-dejavu-core fonts-noto-cjk
system-deps:
	@missing=$$(for p in $(SYSTEM_LIBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $$missing"; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else echo "warning: install these Debian packages: $$missing"; fi; \
	fi

# The browser tests drive Debian's Chromium.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium"; apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "warning: /usr/bin/chromium is missing (apt-get install chromium): browser tests will fail"; fi; \
	fi

clean:
	rm -rf $(VENV) instance .pytest_cache
