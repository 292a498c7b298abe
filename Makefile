# The two commands of the README contract: `make demo` and `make test`.
# Both create .venv and install exactly what uv.lock pins the first time; afterwards the
# install is a no-op until pyproject.toml or the lock changes. README, "Dependencies".

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# uv, pinned with hashes in requirements-uv.txt, lives in an environment of its own: it
# manages .venv, and would uninstall itself from there (the lock doesn't list it).
UV_ENV := build/uv
UV := $(UV_ENV)/bin/uv
# The interpreter is $(PYTHON), never one that uv would download.
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test check lint proto lock clean

demo: $(STAMP)
	$(BIN)/streamrec demo

test: lint
	$(BIN)/python -m pytest -q

# The inner loop, a few minutes: lint, the unit tests and the fast integration tests. Slow and
# end-to-end tests are marked (pyproject.toml, [tool.pytest.ini_options]); `make test` runs all.
check: lint
	$(BIN)/python -m pytest -q -m "not slow and not e2e"

# ruff for style, import-linter for the architecture's layers (README, "Architecture").
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Regenerates the committed protobuf/gRPC modules after a .proto change, or after the pin of
# grpcio-tools (the generator, in pyproject.toml's dev extra) changes. protoc names modules
# after their path below -I, so the folders are linked under streamrec/ to get the import
# package's names (streamrec.infra.contracts.recommend_pb2); outputs land in the real folders.
PROTO_ROOT := build/proto
proto: $(STAMP)
	rm -rf $(PROTO_ROOT) && mkdir -p $(PROTO_ROOT)/streamrec
	ln -s $(CURDIR)/infra $(CURDIR)/features $(PROTO_ROOT)/streamrec/
	cd $(PROTO_ROOT) && $(CURDIR)/$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. \
		--grpc_python_out=. streamrec/infra/contracts/recommend.proto streamrec/infra/contracts/ingest.proto
	cd $(PROTO_ROOT) && $(CURDIR)/$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. \
		streamrec/features/tf_example.proto
	rm -rf $(PROTO_ROOT)

# --locked: a lock that no longer matches pyproject.toml stops the install (run `make lock`).
$(STAMP): pyproject.toml uv.lock $(UV)
	$(UV) sync --locked --extra dev --python $(PYTHON)
	touch $(STAMP)

$(UV): requirements-uv.txt
	test -x $(UV_ENV)/bin/python || $(PYTHON) -m venv $(UV_ENV)
	$(UV_ENV)/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements-uv.txt
	touch $(UV)

# Re-resolves every pin to the newest release that pyproject.toml's ranges allow, then installs
# the result. Review the lock's diff and run `make test` before committing it.
lock: $(UV)
	$(UV) lock --upgrade
	$(MAKE) $(STAMP)

clean:
	rm -rf $(VENV) .streamrec .pytest_cache .ruff_cache *.egg-info build
