#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages named as arguments (nothing when none is named), through
# sudo unless run as root. The other scripts call it with what they found missing.
set -euo pipefail
[ $# -gt 0 ] || exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "$@"
