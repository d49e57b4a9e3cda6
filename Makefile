.DEFAULT_GOAL := help
VENV := .venv/bin
NOTEBOOK_DIR ?= notebooks

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

bootstrap: ## create .venv, install the locked packages (requirements/dev.txt), fetch JVM jars (idempotent)
	@scripts/bootstrap.sh

LOCK := $(VENV)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet
lock: bootstrap ## re-pin requirements/*.txt after a pyproject.toml change (ARGS=--upgrade: newest versions)
	$(LOCK) --extra dev --output-file requirements/dev.txt $(ARGS)
	$(LOCK) --extra notebooks --constraint requirements/dev.txt --output-file requirements/image.txt $(ARGS)

run: bootstrap ## run the whole pipeline with the dashboard on http://127.0.0.1:8050
	$(VENV)/cryptolab up $(ARGS)

test: bootstrap ## run the whole test suite (unit, integration, e2e, reliability + a 4-min soak); rows in build/results/
	@scripts/test-tools.sh
	$(VENV)/python -m pytest $(ARGS)

soak: bootstrap ## the 20-minute soak alone (SOAK_MINUTES=20); its stamped row goes to build/results/soak/
	SOAK_MINUTES=$(or $(SOAK_MINUTES),20) $(VENV)/python -m pytest tests/reliability/test_soak.py --results-suite soak $(ARGS)

reports: ## render reports/reliability.md and reports/soak.md, each from ONE run in build/results/ (RUN=<run id>)
	$(VENV)/python -m tests.reliability.render $(if $(RUN),--run $(RUN))

bench: bootstrap ## run every benchmark into build/results/bench/<run>/, reports/ untouched (79 min at load ~25)
	$(VENV)/python -m benchmarks.run $(ARGS)

bench-report: ## render reports/benchmarks.{md,json} from the newest complete, clean `make bench` run
	$(VENV)/python -m benchmarks.run --render $(ARGS)
scale: bootstrap ## whole-market cost curve (~30 min; ARGS="--points all" for the 5x3 grid) -> build/results/bench, reports/scale.md
	$(VENV)/python -m benchmarks.bench_scale --render $(ARGS)

lint: bootstrap ## ruff + mypy
	$(VENV)/ruff check cryptolab tests benchmarks scripts
	$(VENV)/ruff format --check cryptolab tests benchmarks scripts
	$(VENV)/mypy

docs: bootstrap ## regenerate docs/configuration.md from the Settings fields
	$(VENV)/python scripts/gen_configuration.py

secret-scan: bootstrap ## fail if a tracked file holds a secret .secrets.baseline does not know (detect-secrets; in `make test` too)
	$(VENV)/python scripts/secret_scan.py

secret-baseline: bootstrap ## re-scan into .secrets.baseline (keeps its settings and audits); then `detect-secrets audit .secrets.baseline`
	$(VENV)/detect-secrets scan --baseline .secrets.baseline

lab: bootstrap ## register the `cryptolab` Jupyter kernel and start JupyterLab on notebooks/
	$(VENV)/python -m ipykernel install --user --name cryptolab --display-name "Python (cryptolab)"
	$(VENV)/jupyter lab --notebook-dir=$(NOTEBOOK_DIR) $(ARGS)

notebooks: bootstrap ## re-execute notebooks/*.ipynb (papermill) to refresh their committed outputs
	$(VENV)/python scripts/refresh_notebooks.py $(ARGS)

kafka-start: bootstrap ## start the local Kafka broker in the background
	$(VENV)/cryptolab kafka start

kafka-stop: ## stop the local Kafka broker
	$(VENV)/cryptolab kafka stop

clean-data: ## delete ./data (local broker log, ClickHouse data, Spark checkpoints)
	rm -rf data

.PHONY: help bootstrap lock run test soak reports bench bench-report scale lint docs secret-scan secret-baseline lab notebooks kafka-start kafka-stop clean-data
