.DEFAULT_GOAL := help
VENV := .venv/bin

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

bootstrap: ## create .venv, install packages, fetch JVM jars (idempotent)
	@scripts/bootstrap.sh

run: bootstrap ## run the whole pipeline with the dashboard on http://127.0.0.1:8050
	$(VENV)/cryptolab up $(ARGS)

test: bootstrap ## run the whole test suite (unit, integration, e2e)
	@scripts/test-tools.sh
	$(VENV)/python -m pytest $(ARGS)

bench: bootstrap ## run the benchmark suite (~10 min), write reports/benchmarks.{md,json}
	$(VENV)/python -m benchmarks.run $(ARGS)

scale: bootstrap ## whole-market cost curve (~30 min; ARGS="--points all" for the 5x3 grid) -> build/results/bench, reports/scale.md
	$(VENV)/python -m benchmarks.bench_scale --render $(ARGS)

lint: bootstrap ## ruff + mypy
	$(VENV)/ruff check cryptolab tests benchmarks scripts
	$(VENV)/ruff format --check cryptolab tests benchmarks scripts
	$(VENV)/mypy

docs: bootstrap ## regenerate docs/configuration.md from the Settings fields
	$(VENV)/python scripts/gen_configuration.py

secret-scan: ## fail if a committed file holds a secret-like string (also part of `make test`)
	python3 scripts/secret_scan.py

lab: bootstrap ## register the `cryptolab` Jupyter kernel and start JupyterLab on notebooks/
	$(VENV)/python -m ipykernel install --user --name cryptolab --display-name "Python (cryptolab)"
	$(VENV)/jupyter lab --notebook-dir=notebooks $(ARGS)

notebooks: bootstrap ## re-execute notebooks/*.ipynb (papermill) to refresh their committed outputs
	$(VENV)/python scripts/refresh_notebooks.py $(ARGS)

kafka-start: bootstrap ## start the local Kafka broker in the background
	$(VENV)/cryptolab kafka start

kafka-stop: ## stop the local Kafka broker
	$(VENV)/cryptolab kafka stop

clean-data: ## delete ./data (local broker log, ClickHouse data, Spark checkpoints)
	rm -rf data

.PHONY: help bootstrap run test bench scale lint docs secret-scan lab notebooks kafka-start kafka-stop clean-data
