#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: system packages, .venv, editable install, model files.
set -euo pipefail
cd "$(dirname "$0")/.."

# libusb: pyrealsense2 and pyusb load it; libopenni2-0: OpenNI2 runtime + Dummy driver;
# softhsm2: PKCS#11 token for terminal keys in tests; redis-server: the reference ingest server's shared
# store (the tests start their own instance on a Unix socket; the package's system service is not used);
# swtpm + swtpm-tools: the software TPM 2.0 the TPM tests start; libtss2-dev, gcc, pkg-config: to build
# tpm2-pytss (no binary wheel on PyPI; gcc also builds the store tests' Redis clock, hil/fakes/redis_clock.c); openssl: the SM2 interoperability tests check against its CLI;
# chromium: the HIL report's screenshot test (headless); uhubctl: USB port power on HIL rigs (its
# tests check the fake against the real CLI); libseccomp2: the liveness worker's seccomp filter
# (through pyseccomp); systemd: systemd-analyze, which checks the shipped unit's exposure.
DEBS=(libusb-1.0-0 libopenni2-0 softhsm2 redis-server swtpm swtpm-tools libtss2-dev gcc pkg-config openssl
      chromium uhubctl libseccomp2 systemd)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: installing capture-agent (editable, with test extras)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  # Orbbec SDK v2's binding, without its declared dependencies: they are for its examples (open3d,
  # pygame, opencv-python, numpy<2) and would replace our numpy and OpenCV. The binding itself needs
  # only numpy.
  .venv/bin/python -m pip install -q --no-deps 'pyorbbecsdk2==2.1.2'
  rm -f .venv/.installed-*
  touch "$stamp"
fi

if [ -f scripts/fetch_models.py ]; then
  .venv/bin/python scripts/fetch_models.py
fi
