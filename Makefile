# The two commands of the README contract: `make demo` and `make test`.
# Both create .venv and install streamrec the first time; afterwards the install is a no-op
# until pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint proto clean

demo: $(STAMP)
	$(BIN)/streamrec demo

test: lint
	$(BIN)/python -m pytest -q

# ruff for style, import-linter for the architecture's layers (README, "Architecture").
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Regenerates the committed protobuf/gRPC modules after a .proto change. protoc names modules
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

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .streamrec .pytest_cache .ruff_cache *.egg-info build
