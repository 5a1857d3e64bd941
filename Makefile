# Two commands on a fresh machine:  make study   (the default study -> report/default.html/.pdf)
#                                   make test    (the test suite, tiny profile)
# Both run `make setup` first when .venv is missing or older than the pinned requirements.
PY := .venv/bin/python
STAMP := .venv/.setup-stamp
STUDY ?= params/study.yaml

.PHONY: setup study test docs lab tensorboard bench clean-results

$(STAMP): requirements.txt pyproject.toml tools/setup.sh
	bash tools/setup.sh

setup: $(STAMP)

study: $(STAMP)
	$(PY) -m petaction study -f $(STUDY)

test: $(STAMP)
	$(PY) -m pytest -q

docs: $(STAMP)
	$(PY) tools/docs.py

lab: $(STAMP)
	.venv/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

# every run of the study's curves (loss, lr, validation top-1): results/<study>/**/tensorboard
tensorboard: $(STAMP)
	$(PY) -m petaction tensorboard -f $(STUDY)

bench: $(STAMP)
	$(PY) benchmarks/loader.py
	$(PY) benchmarks/prepare_memory.py
