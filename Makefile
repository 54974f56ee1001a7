# tether: one Makefile.  `make` builds bin/p and bin/c; `make check` is the
# test command; `make fuzz`, `make bench`, `make run` (alias `demo`).
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
LIBS     := -lssl -lcrypto -lz -lm -pthread

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
LIB_SRC    := $(CODEC_SRC) $(PROTO_SRC) $(PROXY_SRC) $(ORIGIN_SRC)

REL_OBJ    := $(LIB_SRC:%.c=build/rel/%.o)
SAN_OBJ    := $(LIB_SRC:%.c=build/san/%.o)
LLHTTP_REL := build/rel/llhttp/llhttp.o build/rel/llhttp/api.o build/rel/llhttp/http.o
LLHTTP_SAN := build/san/llhttp/llhttp.o build/san/llhttp/api.o build/san/llhttp/http.o

TESTS      := $(patsubst tests/%.c,build/tests/%,$(sort $(wildcard tests/test_*.c)))
FUZZERS    := $(patsubst fuzz/%.c,build/fuzz/%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ_LIB   := $(CODEC_SRC) $(PROTO_SRC)

.PHONY: all check test unit fuzz fuzz-build bench bench-codec deps run demo clean install tables

all: bin/p bin/c

bin/p: build/rel/proxy/main.o $(REL_OBJ) $(LLHTTP_REL)
	@mkdir -p bin
	@echo "  LD    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

bin/c: build/rel/origin/main.o $(REL_OBJ) $(LLHTTP_REL)
	@mkdir -p bin
	@echo "  LD    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

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
build/tests/%: tests/%.c $(SAN_OBJ) $(LLHTTP_SAN) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	@echo "  TEST  $@"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) -o $@ $< $(SAN_OBJ) $(LLHTTP_SAN) $(LIBS) -lcmocka -ljansson

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

unit: $(TESTS)
fuzz-build: $(FUZZERS)

deps:
	@tools/deps.sh

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

run demo: deps all
	@tools/demo.sh

# The Huffman tables are generated from RFC 7541 Appendix B by a program in
# the repo; the output is committed, `make tables` makes it again.
tables:
	/usr/bin/python3 tools/mkhuff.py > codec/huff_table.h

install: all
	install -d $(DESTDIR)/usr/local/bin
	install -m 755 bin/p $(DESTDIR)/usr/local/bin/tether-p
	install -m 755 bin/c $(DESTDIR)/usr/local/bin/tether-c

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
