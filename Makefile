# The README's commands. Each builds what it needs on a fresh machine. `make help` lists them:
# every public target has a `## what it does` comment after its prerequisites.
PYTHON ?= python3
# The Lambda runtime's interpreter for test-py313: pyenv's here (its python3.13 shim needs
# PYENV_VERSION; other pythons ignore it), setup-python's in CI.
PYTHON313 ?= PYENV_VERSION=3.13.0 python3.13
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Lambda runs python3.13; the code must also run on 3.11 (the dev default).
PY313_VENV := .venv-py313
PY313_STAMP := $(PY313_VENV)/.installed
HYPOTHESIS_EXAMPLES ?= 10000
# aws-sam-cli, cfn-lint and checkov pin boto3/pydantic differently from the main venv.
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
SAM := SAM_CLI_TELEMETRY=0 $(abspath $(SAM_VENV))/bin/sam
TEMPLATE := sam/template.yaml
SAM_BUILD_DIR := sam/.aws-sam/build
# splunk-appinspect and slim pin lxml and friends: their own venv too.
SPLUNK_VENV := .venv-splunk
SPLUNK_STAMP := $(SPLUNK_VENV)/.installed
APP_ID := iot_defender_security
APP_BUILD := build/app
SOAR_DIST := dist/soar
# Splunk's Dashboard Studio schema and validator (npm), pinned by package-lock.json.
DASH_VALIDATION := appbuild/dashboard_validation
DASH_STAMP := $(DASH_VALIDATION)/node_modules/.installed

.PHONY: help demo demo-images test bench capacity-figures lint typecheck unit test-py313 template-lint \
	sam-build package package-check dashboards-check workflow-lint clean mutation

# The first target, so a bare `make` lists the others.
help: ## list the public targets, one line each
	@grep -E '^[a-z0-9 -]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9 -]+):.*## (.*)$$/\1\t\2/' \
		| awk -F '\t' '{ printf "  %-16s %s\n", $$1, $$2 }'

# The project itself goes in editable, so `.venv/bin/iot-defender-splunk` is the installed command.
$(STAMP): requirements-dev.txt transform/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $(STAMP)

$(PY313_STAMP): requirements-dev.txt transform/requirements.txt
	$(PYTHON313) -m venv $(PY313_VENV)
	$(PY313_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PY313_VENV)/bin/python -m pip install --quiet -r requirements-dev.txt
	touch $(PY313_STAMP)

$(SAM_STAMP): requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements-sam.txt
	touch $(SAM_STAMP)

$(SPLUNK_STAMP): requirements-splunk.txt
	$(PYTHON) -m venv $(SPLUNK_VENV)
	$(SPLUNK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SPLUNK_VENV)/bin/python -m pip install --quiet -r requirements-splunk.txt
	touch $(SPLUNK_STAMP)

demo: $(STAMP) ## a simulated fleet with incidents through the real transform: the story, PNGs, response step
	$(PY) -m iot_defender_splunk demo

# The README's pictures: the demo at a fixed end (and its default seed), so they are the same
# bytes every time (tests/test_demo.py regenerates and compares them).
DEMO_IMAGES := docs/images/demo
DEMO_IMAGES_END := 2026-11-30T12:00:00Z
demo-images: $(STAMP) ## the README's demo pictures, at a fixed end (byte-identical re-runs)
	$(PY) -m iot_defender_splunk demo --end $(DEMO_IMAGES_END) --out-dir build/demo-images
	mkdir -p $(DEMO_IMAGES) && cp build/demo-images/*.png $(DEMO_IMAGES)/

lint: $(STAMP) ## ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP) ## mypy --strict
	$(PY) -m mypy

unit: $(STAMP) ## the test suite on Python 3.11 (HYPOTHESIS_EXAMPLES examples per property)
	HYPOTHESIS_EXAMPLES=$(HYPOTHESIS_EXAMPLES) $(PY) -m pytest -n 2 --dist loadgroup -q

test-py313: $(PY313_STAMP) ## the test suite on Python 3.13, the Lambda runtime
	HYPOTHESIS_EXAMPLES=500 $(PY313_VENV)/bin/python -m pytest -q -p no:cacheprovider

# The template: SAM's own lint, cfn-lint (errors and warnings fail) and checkov (every skip is
# an inline Metadata entry with its reason in the template).
template-lint: $(SAM_STAMP) ## sam validate --lint, cfn-lint and checkov on the SAM template
	cd sam && $(SAM) validate --lint --template template.yaml
	$(SAM_VENV)/bin/cfn-lint $(TEMPLATE)
	$(SAM_VENV)/bin/checkov --file $(TEMPLATE) --framework cloudformation --skip-download --quiet --compact

# Builds every function as sam deploy would, then checks each artefact holds what it imports.
sam-build: $(SAM_STAMP) $(STAMP) ## sam build, then check each Lambda artefact holds what it imports
	rm -rf $(SAM_BUILD_DIR)
	cd sam && $(SAM) build --template template.yaml
	SAM_BUILD_DIR=$(abspath $(SAM_BUILD_DIR)) $(PY) -m pytest -q -p no:cacheprovider tests/test_lambda_artifacts.py

# The Splunk app: generated parts built from detections/, reports/ and dashboards/, a manifest
# from slim, then dist/<app id>-<version>.tgz with the app id as its only top-level folder.
# Then the SOAR playbooks: dist/soar/<Name>.tgz each, as SOAR's playbook import takes them.
package: $(STAMP) $(SPLUNK_STAMP) ## build the Splunk app package and the SOAR playbooks into dist/
	rm -rf $(APP_BUILD) dist/$(APP_ID)-*.tgz
	$(PY) -m appbuild.build_app $(APP_BUILD)
	$(PY) -m appbuild.spl.check $(APP_BUILD)/$(APP_ID)
	$(SPLUNK_VENV)/bin/slim generate-manifest $(APP_BUILD)/$(APP_ID) --output $(APP_BUILD)/$(APP_ID)/app.manifest
	$(SPLUNK_VENV)/bin/slim validate $(APP_BUILD)/$(APP_ID)
	mkdir -p dist
	tar -C $(APP_BUILD) --owner=0 --group=0 -czf dist/$$($(PY) -c 'from appbuild.build_app import package_file_name; print(package_file_name())') $(APP_ID)
	@ls dist/$(APP_ID)-*.tgz
	rm -rf $(SOAR_DIST)
	$(PY) -m appbuild.build_playbooks --output $(SOAR_DIST)

# AppInspect (Splunk Cloud checks) on the package: it always exits 0, so its JSON is read.
package-check: package ## package, then AppInspect (Splunk Cloud checks): no failure or error
	$(SPLUNK_VENV)/bin/splunk-appinspect inspect dist/$(APP_ID)-*.tgz --mode precert \
		--included-tags cloud --data-format json --output-file build/appinspect.json > build/appinspect.log
	$(PY) -m appbuild.appinspect_report build/appinspect.json

$(DASH_STAMP): $(DASH_VALIDATION)/package.json $(DASH_VALIDATION)/package-lock.json
	cd $(DASH_VALIDATION) && npm ci --no-audit --no-fund --silent
	touch $(DASH_STAMP)

# Every dashboards/*.json against Splunk's own Dashboard Studio schema and chart option schemas.
dashboards-check: $(DASH_STAMP) ## every dashboard against Splunk's Dashboard Studio schema
	node $(DASH_VALIDATION)/validate.cjs dashboards/*.json

# Both GitHub workflows, by zizmor (workflow security), offline: it exits non-zero on a finding.
workflow-lint: $(STAMP) ## zizmor (pedantic) on .github/workflows, offline
	$(VENV)/bin/zizmor --offline --persona pedantic --quiet .github/workflows

test: lint typecheck unit test-py313 template-lint sam-build package-check dashboards-check workflow-lint ## every check (the CI gate)

bench: $(STAMP) ## throughput, memory and cold-start figures of the transform Lambda
	$(PY) -m bench.transform_bench

# Mutation testing (pyproject's [tool.mutmut]): long, so not part of `make test`. Always from
# scratch, as mutmut keeps a survivor's verdict even after a test changes. MUTATE narrows it to
# some mutants (mutmut's names, globs allowed), e.g. MUTATE='transform.timestamps.*'; each
# mutant runs the property tests with MUTATION_EXAMPLES examples.
MUTATION_JOBS ?= 2
MUTATION_EXAMPLES ?= 50
MUTATE ?=
mutation: $(STAMP) ## mutmut over the transform core, shared/ and respond/: score per module, survivors
	rm -rf mutants
	HYPOTHESIS_EXAMPLES=$(MUTATION_EXAMPLES) $(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) \
		$(foreach pattern,$(MUTATE),'$(pattern)')
	$(PY) -m devtools.mutation_report

# What `iot-defender-splunk capacity` sizes with: the transform on representative messages
# (bytes, events) and its ms per MB on this machine, into iot_defender_splunk/data/measured.json.
capacity-figures: $(STAMP) ## measure the figures iot-defender-splunk capacity sizes with
	$(PY) -m iot_defender_splunk.capacity_figures

# --- Lambda artefacts: `sam build` (BuildMethod: makefile) calls these with ARTIFACTS_DIR. ---
# Dependencies are wheels for the Lambda runtime (CPython 3.13 on arm64), whatever runs the build,
# so no matching local interpreter or container is needed.
LAMBDA_PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check --no-compile --only-binary=:all: \
	--implementation cp --python-version 3.13 --platform manylinux2014_aarch64 \
	--platform manylinux_2_28_aarch64 --target $(ARTIFACTS_DIR)
# Copies source files (never caches or compiled files) into the artefact.
COPY_SOURCES = tar -cf - --exclude=__pycache__ --exclude='*.pyc'
# Then bytecode for the runtime's CPython 3.13: /var/task is read-only, so without it every cold
# start compiles every module again. Hash-checked, so the files' zip
# times cannot invalidate it. Without a local python3.13 the artefact simply ships none.
LAMBDA_COMPILE = if $(PYTHON313) -c '' 2>/dev/null; then \
	$(PYTHON313) -m compileall -q -j 0 --invalidation-mode checked-hash $(ARTIFACTS_DIR); \
	else echo "no python3.13: $@ ships without bytecode (each cold start compiles it)"; fi

# Each function ships its own package and the package every function shares, nothing else.
build-TransformFunction:
	$(COPY_SOURCES) transform shared | tar -xf - -C $(ARTIFACTS_DIR)
	$(LAMBDA_PIP) -r transform/requirements.txt
	$(LAMBDA_COMPILE)

build-AuditFindingsFunction build-InventoryFunction:
	$(COPY_SOURCES) collect shared | tar -xf - -C $(ARTIFACTS_DIR)
	$(LAMBDA_PIP) -r collect/requirements.txt
	$(LAMBDA_COMPILE)

build-QuarantinePolicyFunction:
	$(COPY_SOURCES) provision shared | tar -xf - -C $(ARTIFACTS_DIR)
	$(LAMBDA_PIP) -r provision/requirements.txt
	$(LAMBDA_COMPILE)

build-ResponderFunction:
	$(COPY_SOURCES) respond shared | tar -xf - -C $(ARTIFACTS_DIR)
	$(LAMBDA_PIP) -r respond/requirements.txt
	$(LAMBDA_COMPILE)

clean: ## remove venvs, node_modules, builds and caches
	rm -rf $(VENV) $(PY313_VENV) $(SAM_VENV) $(SPLUNK_VENV) $(DASH_VALIDATION)/node_modules sam/.aws-sam build dist mutants .pytest_cache .mypy_cache .ruff_cache .hypothesis
