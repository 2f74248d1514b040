#!/usr/bin/env bash
# Installs what latent-lab needs on Debian/Ubuntu, and only what is missing:
# pkg-config and ALSA headers (cpal), the FluidR3 General MIDI SoundFont (training data),
# MuseScore General's small SF3 (a SoundFont the tests play to the pitch model, which never
# heard it), and the OpenGL/X11 runtime libraries the window uses. Safe to run again.
set -euo pipefail

need=()
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists alsa 2>/dev/null || need+=(libasound2-dev)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
[ -f /usr/share/sounds/sf3/MuseScore_General_Lite.sf3 ] || need+=(musescore-general-soundfont-small)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
if [ "${1:-}" != "--headless" ]; then
  for lib in libEGL.so.1 libGL.so.1 libxkbcommon-x11.so.0 libXcursor.so.1 libXi.so.6; do
    ldconfig -p 2>/dev/null | grep -q "$lib" || { case $lib in
      libEGL.so.1) need+=(libegl1) ;; libGL.so.1) need+=(libgl1 libgl1-mesa-dri) ;;
      libxkbcommon-x11.so.0) need+=(libxkbcommon-x11-0) ;; libXcursor.so.1) need+=(libxcursor1) ;;
      libXi.so.6) need+=(libxi6) ;; esac; }
  done
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "latent-lab setup: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "latent-lab setup: Rust is not installed; get it with your package manager (apt-get install cargo) or rustup, then run this again" >&2
  exit 1
fi
