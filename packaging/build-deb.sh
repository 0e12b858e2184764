#!/usr/bin/env bash
# Builds the blocksnap .deb into OUTDIR:
#   packaging/build-deb.sh [--lintian] [--worktree] OUTDIR
#
# Debian tools want debian/ at the top of the source tree, and the repository keeps it in
# packaging/debian/. So the script exports the source to a temp dir (the committed HEAD, as
# `git archive` gives it; with --worktree the working tree instead: tracked and untracked
# files minus what .gitignore ignores, e.g. build directories), puts packaging/debian there as
# ./debian, and runs `dpkg-buildpackage -us -uc -b` in it. The repository itself is never
# written to. Build dependencies: see packaging/debian/control
# (scripts/install-deps.sh test installs them). With --lintian, lintian checks the result
# and the script fails on any lintian error.
set -euo pipefail

lintian=0
worktree=0
while [[ ${1:-} == --* ]]; do
  case $1 in
    --lintian) lintian=1 ;;
    --worktree) worktree=1 ;;
    *) echo "usage: $0 [--lintian] [--worktree] OUTDIR" >&2; exit 2 ;;
  esac
  shift
done
if [[ $# -ne 1 ]]; then
  echo "usage: $0 [--lintian] [--worktree] OUTDIR" >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)

version=$(dpkg-parsechangelog -l "$repo/packaging/debian/changelog" -S Version)
upstream=${version%-*}
work=$(mktemp -d /tmp/blocksnap-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/blocksnap-$upstream
mkdir -p "$src"

if ((worktree)); then
  # The working tree as git sees it, without ignored files; files deleted but not yet
  # committed are skipped.
  (
    cd "$repo"
    git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do [[ -f $f || -L $f ]] && printf '%s\0' "$f"; done |
      tar --null -T - -cf -
  ) | tar -xf - -C "$src"
else
  git -C "$repo" archive --format=tar HEAD | tar -xf - -C "$src"
fi
rm -rf "$src/debian"
cp -r "$src/packaging/debian" "$src/debian"

echo "build-deb: building blocksnap $version ($( ((worktree)) && echo working tree || git -C "$repo" rev-parse --short HEAD)) in $src"
(
  cd "$src"
  export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$(nproc)}"
  dpkg-buildpackage -us -uc -b
) >"$work/build.log" 2>&1 || {
  tail -n 60 "$work/build.log" >&2
  echo "build-deb: dpkg-buildpackage failed (log above)" >&2
  exit 1
}

debs=("$work"/*.deb)
cp "${debs[@]}" "$out/"
for d in "${debs[@]}"; do echo "build-deb: $out/$(basename "$d")"; done

if ((lintian)); then
  changes=("$work"/*.changes)
  # Errors fail the build; warnings are shown.
  lintian --fail-on error --suppress-tags initial-upload-closes-no-bugs "${changes[0]}"
fi
