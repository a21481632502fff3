# The two commands: `make run` and `make test` (and `make serve` in production). All set
# themselves up in .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test soak lint bench setup clean chromium

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	./scripts/run.sh

# production: gunicorn (config/gunicorn.conf.py) with config.settings_production and the
# environment's databases, broker and secrets (README, "Production"); SERVE_MIGRATE=1 migrates first
serve: $(STAMP)
	BIN=$(BIN) ./scripts/serve.sh

test: $(STAMP) chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# make run's script for 10 minutes under a scripted workload, on the embedded default (CI: once)
soak: $(STAMP)
	env -u DATABASE_URL -u DATABASE_URL_EU -u DATABASE_URL_US -u CELERY_BROKER_URL \
		COMPLIANCE_SOAK=1 $(BIN)/python -m pytest -m soak -s -q tests/core/test_soak.py

# Browser tests use Debian's Chromium; install it where missing and possible (root + apt).
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "note: chromium not installed; browser tests will be skipped"; }

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf var
