# tether: one Makefile.  `make` builds bin/p and bin/c; `make check` is the
# test command; `make fuzz`, `make bench`, `make run` (alias `demo`),
# `make install` and `make uninstall` (PREFIX, DESTDIR).
# V=1 shows full commands.

CC       ?= gcc
FUZZ_CC  ?= clang
LLHTTP_SRC_DIR ?= /usr/share/llhttp
LLHTTP_INC_DIR ?= /usr/share/include/llhttp
FUZZ_SECONDS ?= 60
VERSION  := 0.1.0

WARN     := -Wall -Wextra -Werror -Wshadow
CPPFLAGS += -I. -I$(LLHTTP_INC_DIR) -D_GNU_SOURCE -DTT_VERSION='"$(VERSION)"'
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARN) -fno-strict-aliasing
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZFLAGS := -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
# Each program links only the libraries its layers use: p has no gzip and no
# floating point, c compresses listings and text (zlib) and parses its flags
# with math.h.  Tests and fuzzers link the union.
# inih reads --config files (proto/conffile.c) for both programs.
INIH_CFLAGS := $(shell pkg-config --cflags inih 2>/dev/null)
INIH_LIBS   := $(shell pkg-config --libs inih 2>/dev/null || echo -linih)
CPPFLAGS += $(INIH_CFLAGS)
P_LIBS   := -lssl -lcrypto -lz -lm -pthread $(INIH_LIBS)
C_LIBS   := -lssl -lcrypto -lz -lm -pthread $(INIH_LIBS)
LIBS     := -lssl -lcrypto -lz -lm -pthread $(INIH_LIBS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

CODEC_SRC  := $(sort $(wildcard codec/*.c))
PROTO_SRC  := $(sort $(wildcard proto/*.c))
PROXY_SRC  := $(sort $(filter-out proxy/main.c,$(wildcard proxy/*.c)))
ORIGIN_SRC := $(sort $(filter-out origin/main.c,$(wildcard origin/*.c)))
LLHTTP_SRC := $(LLHTTP_SRC_DIR)/llhttp.c $(LLHTTP_SRC_DIR)/api.c $(LLHTTP_SRC_DIR)/http.c
# The layers, bottom up: codec (sans-IO HTTP/2), proto (shared runtime),
# then proxy (the client side of streams: fronts, exchanges, tunnels) and
# origin (the server side: tunnel server, files, upstreams) side by side,
# never using each other.  The two programs compose them: p runs origin's
# tunnel server for its --service names, c runs proxy's fronts for
# --local-listen.  tools/layers.sh checks the rule on includes and symbols.
P_SRC      := $(CODEC_SRC) $(PROTO_SRC) $(PROXY_SRC) $(ORIGIN_SRC)
C_SRC      := $(CODEC_SRC) $(PROTO_SRC) $(ORIGIN_SRC) $(PROXY_SRC)

P_REL_OBJ  := $(P_SRC:%.c=build/rel/%.o)
C_REL_OBJ  := $(C_SRC:%.c=build/rel/%.o)
SAN_CODEC  := $(CODEC_SRC:%.c=build/san/%.o)
SAN_PROTO  := $(PROTO_SRC:%.c=build/san/%.o)
SAN_PROXY  := $(PROXY_SRC:%.c=build/san/%.o)
SAN_ORIGIN := $(ORIGIN_SRC:%.c=build/san/%.o)
LLHTTP_REL := build/rel/llhttp/llhttp.o build/rel/llhttp/api.o build/rel/llhttp/http.o
LLHTTP_SAN := build/san/llhttp/llhttp.o build/san/llhttp/api.o build/san/llhttp/http.o
# Only the tests name these objects, through a pattern rule, so make would
# take them for intermediates and delete them after every build, compiling
# them all again on the next `make unit`.
.SECONDARY: $(SAN_CODEC) $(SAN_PROTO) $(SAN_PROXY) $(SAN_ORIGIN) $(LLHTTP_SAN)

TESTS      := $(patsubst tests/%.c,build/tests/%,$(sort $(wildcard tests/test_*.c)))
FUZZERS    := $(patsubst fuzz/%.c,build/fuzz/%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ_LIB   := $(CODEC_SRC) $(PROTO_SRC)

.PHONY: all check test unit fuzz fuzz-build bench bench-codec deps deps-demo run demo clean install uninstall tables tokens asan check-asan

all: bin/p bin/c

bin/p: build/rel/proxy/main.o $(P_REL_OBJ) $(LLHTTP_REL)
	@mkdir -p bin
	@echo "  LD    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(P_LIBS)

bin/c: build/rel/origin/main.o $(C_REL_OBJ) $(LLHTTP_REL)
	@mkdir -p bin
	@echo "  LD    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(C_LIBS)

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

build/san/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $< (asan+ubsan)"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) -MMD -MP -c -o $@ $<

# llhttp is Debian's generated C; it is not ours to warn about.
build/rel/llhttp/%.o: $(LLHTTP_SRC_DIR)/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -O2 -g -I$(LLHTTP_INC_DIR) -w -c -o $@ $<
build/san/llhttp/%.o: $(LLHTTP_SRC_DIR)/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(SANFLAGS) -I$(LLHTTP_INC_DIR) -w -c -o $@ $<

# Unit tests: one file per module, cmocka, built with ASan and UBSan.
# A test links the layers of the headers it includes and those below them,
# as the programs do: one that includes a proxy/ header gets proxy + proto +
# codec (and llhttp), origin/ likewise, proto/ gets proto + codec, and a
# codec test the codec alone (which proves the codec needs no runtime).  A
# test including both proxy/ and origin/ headers would get both; they define
# no global symbol twice (tools/layers.sh would say so).
TEST_SRC   := $(sort $(wildcard tests/test_*.c))
tests_including = $(patsubst tests/%.c,build/tests/%,$(shell grep -lE 'include *"$(1)/' $(TEST_SRC) /dev/null))
T_PROXY    := $(call tests_including,proxy)
T_ORIGIN   := $(call tests_including,origin)
T_PROTO    := $(sort $(call tests_including,proto) $(T_PROXY) $(T_ORIGIN))
$(T_PROXY): $(SAN_PROXY) $(LLHTTP_SAN)
$(T_ORIGIN): $(SAN_ORIGIN) $(LLHTTP_SAN)
$(T_PROTO): $(SAN_PROTO)
build/tests/%: tests/%.c $(SAN_CODEC) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	@echo "  TEST  $@"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) -o $@ $< $(sort $(filter %.o,$^)) $(LIBS) -lcmocka -ljansson

# libFuzzer targets: the codec and the handshake parser, no sockets.
build/fuzz/%: fuzz/%.c $(FUZZ_LIB) $(wildcard codec/*.h proto/*.h fuzz/*.h)
	@mkdir -p $(dir $@)
	@echo "  FUZZ  $@"
	$(Q)$(FUZZ_CC) $(CPPFLAGS) -std=gnu11 $(WARN) $(FUZZFLAGS) -o $@ $< $(FUZZ_LIB) $(LIBS)

# Targets that fuzz a part of c also link the origin sources it needs; the
# rest stay on the codec and proto alone.
FUZZ_ORIGIN_FS := origin/fileserver.c origin/listing.c origin/mime.c
build/fuzz/fuzz_fileserver: FUZZ_LIB += $(FUZZ_ORIGIN_FS)
build/fuzz/fuzz_fileserver: $(FUZZ_ORIGIN_FS) $(wildcard origin/*.h)
# p's request-head mapping (route.c, and config.c for the name check).
build/fuzz/fuzz_request_map: FUZZ_LIB += proxy/route.c proxy/config.c
build/fuzz/fuzz_request_map: proxy/route.c proxy/config.c $(wildcard proxy/*.h)

# Sanitizer builds of the real programs, for the integration suite
# (`make check-asan`; not part of `make check`: it is several times slower).
# Own object folder: the flags match build/san but the two never share files.
ASAN_P_OBJ  := $(P_SRC:%.c=build/asan/obj/%.o)
ASAN_C_OBJ  := $(C_SRC:%.c=build/asan/obj/%.o)
ASAN_LLHTTP := build/asan/obj/llhttp/llhttp.o build/asan/obj/llhttp/api.o build/asan/obj/llhttp/http.o
# ASan and LSan reports go to files, not stderr, so no test's output or exit
# check can hide one: check-asan fails if any file appears in ASAN_LOGS (one
# per report, named by PID; the runner's pids files map a PID to its test).
# GCC's separate libubsan ignores log_path: its reports stay on stderr (the
# tests' *.log and *.out files), where check-asan looks for them.  The
# quarantine (freed memory held back to catch use-after-free) is cut from
# 256 to 16 MiB: p frees and retakes MiB-sized output buffers, and the
# default quarantine alone put p past test-09's 64 MiB memory bound.
ASAN_WORKROOT = $(if $(TT_WORKROOT),$(TT_WORKROOT),$(CURDIR)/integration-tests/.work)
ASAN_LOGS     = $(ASAN_WORKROOT)/asan-logs
ASAN_RUN_ENV  = ASAN_OPTIONS=log_path=$(ASAN_LOGS)/asan:detect_leaks=1:exitcode=23:quarantine_size_mb=16:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

asan: build/asan/p build/asan/c

build/asan/p: build/asan/obj/proxy/main.o $(ASAN_P_OBJ) $(ASAN_LLHTTP)
	@echo "  LD    $@ (asan+ubsan)"
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(P_LIBS)

build/asan/c: build/asan/obj/origin/main.o $(ASAN_C_OBJ) $(ASAN_LLHTTP)
	@echo "  LD    $@ (asan+ubsan)"
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(C_LIBS)

build/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $< (asan build)"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) -MMD -MP -c -o $@ $<
build/asan/obj/llhttp/%.o: $(LLHTTP_SRC_DIR)/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(SANFLAGS) -I$(LLHTTP_INC_DIR) -w -c -o $@ $<

check-asan: asan
	@rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS)
	@TT_P=$(CURDIR)/build/asan/p TT_C=$(CURDIR)/build/asan/c $(ASAN_RUN_ENV) \
		bash integration-tests/run.sh '$(FILTER)'; rc=$$?; \
	n=$$(ls $(ASAN_LOGS) | wc -l); \
	for f in $(ASAN_LOGS)/*; do [ -f "$$f" ] || continue; pid=$${f##*.}; \
		t=$$(grep -l "^$$pid " $(ASAN_WORKROOT)/test-*/pids 2>/dev/null | head -1); \
		if [ -n "$$t" ]; then t=$$(basename "$$(dirname "$$t")"); else t="PID in no test's pids file"; fi; \
		echo "== $$f ($$t)"; \
		head -40 "$$f"; done; \
	ub=$$(grep -rlE '^[^ ]+:[0-9]+:[0-9]+: runtime error: ' $(ASAN_WORKROOT)/test-* 2>/dev/null); \
	for f in $$ub; do echo "== UBSan in $$f"; grep -E -A12 ': runtime error: ' "$$f" | head -40; n=$$((n + 1)); done; \
	echo "sanitizer reports: $$n (in $(ASAN_LOGS) and the tests' logs)"; \
	[ "$$rc" -eq 0 ] && [ "$$n" -eq 0 ]

unit: $(TESTS)
fuzz-build: $(FUZZERS)

deps:
	@tools/deps.sh

# `make run` needs the build and what the demo runs, not the test tool set.
deps-demo:
	@tools/deps.sh demo

check: deps
	$(Q)$(MAKE) --no-print-directory all unit fuzz-build
	@tools/check.sh

test: check

fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tools/fuzz.sh $(FUZZERS)

bench: deps
	@BENCH=1 tools/deps.sh
	$(Q)$(MAKE) --no-print-directory all
	@bench/run.sh

bench-codec:
	@BENCH=1 tools/deps.sh
	$(Q)$(MAKE) --no-print-directory build/bench/bench_codec
	@build/bench/bench_codec $(CURDIR)/../shared/testdata/hpack-test-case

build/bench/bench_codec: bench/bench_codec.c $(CODEC_SRC) $(wildcard codec/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC    $@"
	$(Q)$(CC) $(CPPFLAGS) -std=gnu11 $(WARN) -O2 -g -o $@ $< $(CODEC_SRC) -lnghttp2 -ljansson

run demo: deps-demo all
	@tools/demo.sh

# The Huffman tables are generated from RFC 7541 Appendix B by a program in
# the repo; the output is committed, `make tables` makes it again.
tables:
	/usr/bin/python3 tools/mkhuff.py > codec/huff_table.h

# The header-name tokens and their flags (codec/token.h) likewise: the names
# are written once, in tools/mktokens.py.
tokens:
	/usr/bin/python3 tools/mktokens.py > codec/token_table.h

# `make install PREFIX=/usr/local DESTDIR=`: the programs as tether-p and
# tether-c (plain p and c would collide with other programs in a shared bin
# folder), their man pages, the systemd units with these paths written in,
# the sysusers.d entry for p's user, and the example configs.  SYSCONFDIR is
# /etc whatever the prefix: the units read SYSCONFDIR/tether, where a
# service's configuration belongs.  Nothing under SYSCONFDIR is written but
# the empty folder, so a second install never overwrites an operator's
# files.  UNITDIR and SYSUSERSDIR under the prefix are on systemd's search
# paths for /usr and /usr/local alike.  Installing into the live system
# (DESTDIR empty) also makes p's user with systemd-sysusers; a package made
# with DESTDIR does that when it is installed.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/tether
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SYSCONFDIR  ?= /etc
INSTALL     ?= install
MAN_PAGES   := docs/man/tether-p.1 docs/man/tether-c.1
UNITS       := tether-p.service tether-c@.service
EXAMPLES    := docs/examples/p.conf docs/examples/c.conf

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSCONFDIR)/tether
	$(INSTALL) -m 755 bin/p $(DESTDIR)$(BINDIR)/tether-p
	$(INSTALL) -m 755 bin/c $(DESTDIR)$(BINDIR)/tether-c
	$(INSTALL) -m 644 $(MAN_PAGES) $(DESTDIR)$(MANDIR)/man1/
	$(Q)for u in $(UNITS); do \
		echo "sed tools/systemd/$$u.in > $(DESTDIR)$(UNITDIR)/$$u"; \
		sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
			-e 's|@DOCDIR@|$(DOCDIR)|g' tools/systemd/$$u.in >$(DESTDIR)$(UNITDIR)/$$u && \
		chmod 644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	$(INSTALL) -m 644 tools/sysusers/tether.conf $(DESTDIR)$(SYSUSERSDIR)/tether.conf
	$(INSTALL) -m 644 $(EXAMPLES) $(DESTDIR)$(DOCDIR)/examples/
	$(Q)if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then \
		echo "systemd-sysusers $(SYSUSERSDIR)/tether.conf"; \
		systemd-sysusers $(SYSUSERSDIR)/tether.conf; \
	fi
	@echo "installed under $(DESTDIR)$(PREFIX); options go in $(DESTDIR)$(SYSCONFDIR)/tether (examples in $(DESTDIR)$(DOCDIR)/examples)"

# Removes what install put under the prefix; SYSCONFDIR/tether, p's state
# and its user stay.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/tether-p $(DESTDIR)$(BINDIR)/tether-c
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN_PAGES)))
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS))
	rm -f $(DESTDIR)$(SYSUSERSDIR)/tether.conf
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
