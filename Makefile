# One command per routine task. `make run` and `make test` are the two a newcomer needs (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test chaos check lint format typecheck migrations-check bench worker beat bridge clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

install: $(VENV)/.dev-installed

## Web (HTTP + websockets), Celery worker, Celery beat, the simulated-terminal bridge and the demo market, in the foreground.
run: $(VENV)/.runtime-installed
	bash scripts/run.sh

## The whole check CI runs: migrations up to date, ruff, pytest on PostgreSQL + Redis.
test: $(VENV)/.dev-installed
	bash scripts/test.sh

## Fault injection on private Redis/PostgreSQL and the real processes (minutes; CI runs it after make test).
chaos: $(VENV)/.dev-installed
	bash scripts/chaos.sh

check: test typecheck

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy .

migrations-check: $(VENV)/.dev-installed
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

## docs/openapi.yaml from the code (a test fails when it is out of date; generation must have no warning).
schema: $(VENV)/.dev-installed
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

bench: $(VENV)/.dev-installed
	bash scripts/bench.sh

worker: $(VENV)/.runtime-installed
	$(BIN)/celery -A config worker -l info

beat: $(VENV)/.runtime-installed
	$(BIN)/celery -A config beat -l info

clean:
	rm -rf $(VENV) var staticfiles
