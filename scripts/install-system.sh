#!/usr/bin/env bash
# Install the Debian packages listed in $1 (comments and blank lines ignored), idempotently.
# Needs root and apt-get; elsewhere prints what it skipped and succeeds, since every package
# here is optional (prefstyle works without them, with fewer photos or skipped browser tests).
set -u
list="$1"
mapfile -t pkgs < <(grep -v '^\s*#' "$list" | grep -v '^\s*$')
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: not root or no apt-get; skipping optional system packages: ${missing[*]}" >&2
  exit 0
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  # One unavailable package must not block the others.
  for p in "${missing[@]}"; do
    apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 || echo "note: could not install $p (optional)" >&2
  done
fi
exit 0
