#!/usr/bin/env bash
# Installs every system dependency of litseg from Debian 12's apt repositories.
# Non-interactive and idempotent: packages already present are skipped by apt.
# Run as root (or with sudo available) on a fresh Debian 12 machine.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev            # LibTorch 1.13.1, CPU
  libopenblas0-openmp     # without it LibTorch's fp32 GEMM falls back to reference BLAS (~50x slower)
  qt6-base-dev qt6-base-dev-tools libqt6opengl6-dev
  libopencv-dev
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev ffmpeg
  libgtest-dev libgmock-dev
  libsqlite3-dev
  nlohmann-json3-dev
  xvfb xauth
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's libtorch links libblas.so.3 through the alternatives system; make sure the
# OpenMP OpenBLAS provides it rather than the reference implementation.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  alt="${lib}-${arch}"
  target=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas-openmp | head -n1 || true)
  if [ -n "$target" ]; then
    as_root update-alternatives --set "$alt" "$target" >/dev/null
  fi
done
echo "setup: done"
