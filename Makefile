# make demo | make test | make bench | make fuzz | make fuzz-lut — each sets up what it needs first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.dicompress-installed
# Debian tools the interoperability tests run against (DCMTK, GDCM, dicom3tools), the
# OpenJPEG library glymur loads (without it, the copy inside imagecodecs is used), and
# Chromium, which opens the HTML report of `compare` in the tests, and b3sum, the
# reference BLAKE3 tool the journal's digests are checked against; djxl (libjxl-tools), the
# JPEG XL decoder the jpegxl tests check our codestreams with; Orthanc with its DICOMweb
# plugin, the STOW-RS server the gateway's DICOMweb routes are tested against.
APT_PACKAGES := dcmtk libgdcm-tools dicom3tools libopenjp2-7 chromium openssl b3sum libjxl-tools \
                orthanc orthanc-dicomweb
APT_TOOLS    := dcmdrle dcmdjpls dcmdjpeg gdcmconv dciodvfy chromium openssl storescu b3sum djxl \
                Orthanc
FUZZ_SECONDS ?= 60

.PHONY: demo test bench fuzz fuzz-lut fuzz-deps system-deps venv plain-install clean

demo: venv
	$(VENV)/bin/dicompress demo -o demo-output

test: venv system-deps
	$(PY) -m pytest -q -n auto --dist loadfile

bench: venv
	$(PY) -m pytest benchmarks -o addopts="" -p no:cacheprovider --benchmark-enable \
		--benchmark-json=.benchmarks/rle.json
	$(PY) tools/bench_table.py .benchmarks/rle.json

fuzz: venv fuzz-deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) tools/fuzz_rle.sh

fuzz-lut: venv fuzz-deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) tools/fuzz_lut.sh

# clang with libFuzzer and the sanitizer runtimes (Debian: clang + libclang-rt-NN-dev).
fuzz-deps:
	@if echo 'int LLVMFuzzerTestOneInput(const char*d,long n){return 0;}' | \
		clang -x c -fsanitize=fuzzer,address - -o /dev/null 2>/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null; \
		v=$$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p'); \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-rt-$$v-dev >/dev/null || true; \
	else \
		echo "fuzzing needs clang with libFuzzer: sudo apt-get install clang libclang-rt-14-dev"; exit 1; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml CMakeLists.txt $(wildcard native/*.c native/*.h native/*.pyx)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# A plain `pip install .` (no extras, no test tools) in a fresh virtualenv writes every
# target of the codec table from pydicom's sample files and pulls no GPL package
# (issue 17). pip's cache is reused; only the package index is reached.
PLAIN_VENV ?= build/plain-venv
plain-install:
	rm -rf $(PLAIN_VENV)
	$(PYTHON) -m venv $(PLAIN_VENV)
	$(PLAIN_VENV)/bin/python -m pip install -q --upgrade pip
	$(PLAIN_VENV)/bin/python -m pip install -q .
	$(PLAIN_VENV)/bin/python .ci/plain_install.py

# Installs the Debian packages when root; otherwise says what to run.
system-deps:
	@missing=""; for t in $(APT_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	/sbin/ldconfig -p 2>/dev/null | grep -q libopenjp2.so.7 || missing="$$missing libopenjp2"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(APT_PACKAGES) (missing:$$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	else \
		echo "missing$$missing: run  sudo apt-get install $(APT_PACKAGES)  (tests that need them are skipped)"; \
	fi

clean:
	rm -rf build demo-output .pytest_cache .benchmarks
