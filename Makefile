# Suspended-guest series for QEMU: fetch the base, apply the queue, build,
# test.  Everything fetched or built lives in work/ (ignored).
#
#   make demo        set up, build the patched QEMU and run the demo
#   make check       set up, build and run every test suite
#   make help        every target
#
# LINE=7.2 (default), 10.2 or 10.0 picks the line: lines/LINE.pin and
# patches/*-LINE/, in work/LINE/ (docs/lines.md).

LINE ?= 7.2
export LINE

SH := /bin/sh
S := scripts

.PHONY: help deps deps-test base queue export build stock prepare demo \
        check guest kexec-host kexec-check soak lint check-series bench \
        deps-deb deb deb-check posting lines clean distclean

help:
	@echo 'make demo          install deps, fetch base, apply queue, build, run the demo'
	@echo 'make check         install deps, fetch base, apply queue, build, run all tests'
	@echo 'make deps          install Debian packages (and a deb-src entry)'
	@echo 'make base          fetch + verify + unpack the base into work/qemu (tag base)'
	@echo 'make queue         import patches/series onto base (FORCE=1 to drop local work)'
	@echo 'make export        write the work tree back to patches/ (deterministic)'
	@echo 'make build         incremental build of work/qemu into work/build (ccache)'
	@echo 'make stock         build the unpatched base into work/stock/build (cross-version tests)'
	@echo 'make guest         build the Linux guest of the end-to-end tests (work/guest)'
	@echo 'make kexec-host    build the host VM of the kexec test (work/kexec-host)'
	@echo 'make kexec-check   cprsave, real kexec, cprload: pmem and disk x running,'
	@echo '                   paused, suspended, and the tmpfs refusal, step by step'
	@echo 'make soak          200 suspend/migrate/wake round trips of the Linux guest'
	@echo 'make lint          checkpatch + trailers of every patch, compile the Xen/usbredir code'
	@echo 'make check-series  apply patch by patch, build + quick gate at each step'
	@echo 'make bench         run the benchmarks in bench/ (tables + bench/results/*.json)'
	@echo 'make posting       the line as qemu-devel takes it: format-patch --cover-letter'
	@echo '                   into work/LINE/posting, checkpatch (LINE=10.2)'
	@echo 'make deb           Debian 12 packages of qemu with the series (work/7.2/deb/out);'
	@echo '                   LINE=10.0: Debian 13 (trixie) packages (work/10.0/deb/out)'
	@echo 'make deb-check     install them in a clean Debian 12 chroot: version, demo,'
	@echo '                   libvirt core rows, rollback, listings vs Debian, lintian'
	@echo 'make clean         remove the builds;  make distclean: remove work/'
	@echo 'LINE=10.2 make ... the same for another line (lines/*.pin)'

deps:
	$(SH) $(S)/setup-deps.sh

base: deps
	$(SH) $(S)/fetch-base.sh

queue: base
	$(SH) $(S)/queue.sh

export:
	$(SH) $(S)/export.sh

build:
	$(SH) $(S)/build.sh

# import the queue unless the work tree holds a developer's work
prepare: base
	AUTO=1 $(SH) $(S)/queue.sh
	$(SH) $(S)/build.sh

demo: deps prepare
	$(SH) $(S)/demo.sh

deps-test:
	WITH_TEST_DEPS=1 $(SH) $(S)/setup-deps.sh

stock: deps base
	$(SH) $(S)/build-stock.sh

guest: deps-test
	$(SH) $(S)/build-guest.sh

kexec-host: deps prepare
	$(SH) $(S)/build-kexec-host.sh

# the other lines make check covers (CHECK_LINES): base, queue, build
CHECK_LINES ?= 10.2 10.0
export CHECK_LINES
lines: deps
	for l in $(CHECK_LINES); do \
	    LINE=$$l AUTO=1 $(SH) $(S)/queue.sh && \
	    LINE=$$l $(SH) $(S)/build.sh || exit 1; \
	done

check: deps-test prepare stock guest kexec-host lines
	$(SH) $(S)/check.sh

kexec-check: deps-test prepare kexec-host
	python3 tests/kexec.py --all

soak: deps-test prepare guest
	$(SH) $(S)/soak.sh

bench: deps-test prepare stock
	$(SH) $(S)/bench.sh

lint: base
	$(SH) $(S)/lint.sh

check-series: deps base
	$(SH) $(S)/check-series.sh

posting: base
	AUTO=1 $(SH) $(S)/queue.sh
	$(SH) $(S)/posting.sh

deps-deb:
	EXTRA_PKGS="mmdebstrap lintian" $(SH) $(S)/setup-deps.sh

deb: deps-deb
	$(SH) $(S)/build-deb.sh

# the demo and the tests read the series' tree (boot block, python/qemu)
deb-check: deps-deb deps-test base guest
	AUTO=1 $(SH) $(S)/queue.sh
	$(SH) $(S)/deb-check.sh

clean:
	rm -rf work/*/build work/*/build-extra work/*/series work/*/stock \
	    work/*/deb work/kexec-host

distclean:
	rm -rf work
