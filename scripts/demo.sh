#!/usr/bin/env bash
# One command from a fresh clone to the app: installs, builds, generates a demo clip with
# exact ground-truth masks (litseg-cli synth) and opens it in litseg.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
demo=build/demo-clip
if [ ! -d "$demo/JPEGImages" ]; then
  build/bin/litseg-cli synth --out "$demo" --frames 120 --objects 3 --seed 7 --size 854x480 --mp4
fi
exec build/bin/litseg "$demo/JPEGImages" "$@"
