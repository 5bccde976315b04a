# The README's two set-up commands: `make run` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
# Debian packages the test suite drives as real clients and servers (gcc: a foreign-thread
# probe of the FUSE binding, tests/gateways/fuse/test_mfusepy_internals.py; chromium and its
# matching chromium-driver: the web client's browser tests, tests/web; slapd and ldap-utils:
# the LDAP directory of tests/gateways/test_ldap_login.py; nodejs: the OpenID Connect provider
# of the OAuth tests, tests/oidc_op; redis-server: the Celery job runner's broker,
# tests/gateways/plugins/test_jobs_celery.py).
DEB_TEST_PACKAGES := openssh-client fuse3 litmus cadaver davfs2 gcc libc6-dev \
	chromium chromium-driver slapd ldap-utils nodejs redis-server
# The OAuth tests' OpenID Connect provider (panva's oidc-provider) from the npm registry,
# pinned with integrity hashes in tests/oidc_op/package-lock.json; kept out of git.
OP_STAMP := tests/oidc_op/node_modules/.installed-stamp

.PHONY: run test test-mongo test-s3 test-deps install system-deps lint clean

# Browser code (Swagger UI) comes from the npm registry, pinned and verified, not from the repository.
$(STAMP): setup.py config/web-assets.json
	$(PYTHON) admin/fetch_assets.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,s3]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/joist serve $(ARGS)

system-deps:
	@sh .ci/system-deps $(DEB_TEST_PACKAGES)

$(OP_STAMP): tests/oidc_op/package.json tests/oidc_op/package-lock.json
	@# Debian's nodejs comes without npm (NodeSource's includes it: the two packages conflict).
	@command -v npm >/dev/null 2>&1 || sh .ci/system-deps npm
	cd tests/oidc_op && npm ci --no-audit --no-fund --loglevel=error
	touch $(OP_STAMP)

test-deps: system-deps $(OP_STAMP)

test: $(STAMP) test-deps
	$(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) test-mongo
	$(MAKE) test-s3

# The core, hierarchy, auth and gateway suites again, on the MongoDB engine (mongomock here;
# a real server when JOIST_TEST_MONGO_URI is set: see the README). The REST, WebDAV and SFTP
# servers the tests start run on it (tests/conftest.py site_app); FUSE mounts and other
# processes cannot share mongomock's memory, so those tests stay on SQLite or skip there.
MONGO_SUITES := tests/unit/core/services/test_services_tree.py tests/unit/core/auth/test_auth.py \
	tests/unit/core/hierarchy/test_hierarchy_paging.py tests/unit/core/hierarchy/test_view_rules.py \
	tests/contract/test_hierarchy_contract.py tests/gateways tests/security/test_access_matrix.py
test-mongo: $(STAMP)
	JOIST_TEST_ENGINE=mongo $(PY) -m pytest $(MONGO_SUITES)

# Every gateway suite again with an S3 assetstore current (moto's server on 127.0.0.1,
# started by the tests: no S3 is reachable from CI).
# Identity and plugin suites store no bytes of their own: the assetstore changes nothing they
# test, so they run once, in the main run.
S3_SUITES := tests/gateways tests/contract/test_hierarchy_contract.py \
	--ignore=tests/gateways/test_ldap_login.py --ignore=tests/gateways/http/test_rest_mail.py \
	--ignore=tests/gateways/test_third_party_plugin.py --ignore=tests/gateways/plugins/test_oauth.py \
	--ignore=tests/gateways/plugins/test_jobs_rest.py \
	--ignore=tests/gateways/plugins/test_jobs_restart.py \
	--ignore=tests/gateways/plugins/test_jobs_celery.py
test-s3: $(STAMP)
	JOIST_TEST_ASSETSTORE=s3 $(PY) -m pytest $(S3_SUITES)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --ignore-missing-imports core

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache tests/oidc_op/node_modules
