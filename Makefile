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

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

# Regenerates the committed protobuf/gRPC modules after a .proto change.
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. serving/recommend.proto
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. features/tf_example.proto

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .streamrec .pytest_cache .ruff_cache *.egg-info
