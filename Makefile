# nutlite — see README.md.  `make run` and `make test` install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Root with apt-get: install Debian's NUT for the interop tests, and insist that they run.
ROOT_APT := $(shell [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && echo yes)
PYTEST_ARGS ?=

.PHONY: help run test test-fast bench lint deps nut-deps deb image image-test clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
	  if [ "$(ROOT_APT)" = yes ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip; \
	  else echo "need python3 with venv (apt-get install python3-venv)"; exit 1; fi; fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

deps: $(STAMP) ## create .venv and install nutlite with its test dependencies

nut-deps: ## as root: apt-get install Debian's NUT (nut-server nut-client nut-scanner nut-snmp python3-nut), prometheus, libusb, gcc and make (modem-line and USB test doubles) for interop tests, mmdebstrap, dpkg-dev and lintian for the package test
ifeq ($(ROOT_APT),yes)
	@if [ ! -x /lib/nut/upsd ] || [ ! -x /bin/upsc ] || [ ! -f /usr/lib/python3/dist-packages/PyNUT.py ] \
	    || [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/promtool ] || ! command -v gcc >/dev/null \
	    || ! command -v make >/dev/null || ! ldconfig -p | grep -q 'libusb-1.0.so.0 ' \
	    || [ ! -x /usr/bin/nut-scanner ] || [ ! -x /lib/nut/snmp-ups ] || ! command -v mmdebstrap >/dev/null || ! command -v dpkg-deb >/dev/null || ! command -v lintian >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nut-server nut-client nut-scanner nut-snmp python3-nut openssl prometheus gcc libc6-dev make libusb-1.0-0 mmdebstrap dpkg-dev lintian; fi
else
	@echo "not root: interop tests against Debian's NUT run only if it is already installed"
endif

deb: deps ## build build/nutlite_<version>_all.deb with dpkg-deb (see docs/packaging.md; its private pysnmp and pyasn1 come from the venv)
	$(PYTHON) packaging/build_deb.py

image: deps ## as root: build build/nutlite-<version>-arm64.img.xz, the Raspberry Pi SD-card image (see docs/image.md)
	$(PYTHON) image/build.py

image-test: deps nut-deps ## as root: boot the built image in QEMU with a simulated UPS on the host: hot-plug, a power cut, the power race
ifeq ($(ROOT_APT),yes)
	@if ! command -v qemu-system-aarch64 >/dev/null || ! command -v mcopy >/dev/null || ! command -v ssh >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-arm mtools openssh-client xz-utils; fi
endif
	$(PY) -m pytest -p no:cacheprovider -s -v --timeout=1200 image/test_image.py

run: deps ## run the whole stack on simulated UPSes (dummy-ups, Q1 and APC on ptys; upsd on 127.0.0.1:3493)
	$(VENV)/bin/nutlite demo

test: deps nut-deps ## run the whole test suite (unit, integration, interop)
	NUTLITE_REQUIRE_REAL_NUT=$(if $(ROOT_APT),1,0) $(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

test-fast: deps ## unit tests only (no daemons)
	$(PY) -m pytest -q -m "not interop" tests/test_parseconf.py tests/test_config.py

bench: deps nut-deps ## benchmarks: upsd vs Debian's (throughput, latency, RSS, CPU), upsmon timing, exporter, password-guessing rate, systemd exposure scores, usbhid-ups vs Debian's (idle CPU, plug to data), snmp-ups vs Debian's (round trips and time of one poll) and the SNMP scan, the last image build and image test
	$(PY) bench/bench.py
	$(PY) bench/upsmon_timing.py
	$(PY) bench/exporter_bench.py
	$(PY) bench/login_bench.py
	$(PY) bench/unit_security.py
	$(PY) bench/usb_bench.py
	$(PY) bench/snmp_bench.py
	$(PY) bench/image_figures.py

lint: deps ## ruff
	$(VENV)/bin/ruff check nutlite tests bench image packaging

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .demo
