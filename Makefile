# The README's two set-up commands: `make run` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
# Debian packages the test suite drives as real clients and servers.
DEB_TEST_PACKAGES := openssh-client fuse3 litmus

.PHONY: run test install system-deps lint clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,s3]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/joist serve $(ARGS)

system-deps:
	@sh .ci/system-deps $(DEB_TEST_PACKAGES)

test: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
