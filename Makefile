# Pendulum build. `make` builds $(BUILD)/release/pendulum; `make run` starts the demo gateway;
# `make test` installs what is missing, builds everything and runs every test.
# Sources are picked up by wildcard: a new module is a new src/<layer>/<name>.c, nothing here.

PKGS     := libevent_pthreads libevent libcurl jansson yaml-0.1 sqlite3 libpq libhs
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

LLAMA_PREFIX := $(shell scripts/llama.sh --prefix)
# The embedded engine (src/engine) links the pinned llama.cpp, built by scripts/llama.sh.
LLAMA_LIBS := -L$(LLAMA_PREFIX)/lib -Wl,-rpath,$(LLAMA_PREFIX)/lib -lllama -lggml -lggml-base
LLAMA_STAMP := $(LLAMA_PREFIX)/.built

CC       ?= cc
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wvla
BASE     := -std=c11 -D_GNU_SOURCE -Isrc -I$(LLAMA_PREFIX)/include $(WARN) $(PKG_CFLAGS) -MMD -MP
LIBS     := $(PKG_LIBS) $(LLAMA_LIBS) -lpthread -lm

SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

VARIANT_release_CFLAGS := -O2 -g
VARIANT_asan_CFLAGS    := -O1 -g $(SAN)
VARIANT_release_LDFLAGS :=
VARIANT_asan_LDFLAGS    := $(SAN)
# Fuzzers: clang's libFuzzer; the library is built once with fuzzer coverage, each target links it.
VARIANT_fuzz_CC         := clang
VARIANT_fuzz_CFLAGS     := -O1 -g -fsanitize=fuzzer-no-link,address,undefined

BUILD    ?= build
LIB_SRC  := $(sort $(wildcard src/*/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))


.SECONDARY:
.PHONY: all deps llama model run test unit integration ui-test pii-eval engine-test fuzz bench bench-pii bench-engine clean format
all: $(BUILD)/release/pendulum

# ---- compile, per variant --------------------------------------------------------------
define variant
$(BUILD)/$(1)/obj/%.o: %.c | $(LLAMA_STAMP)
	@mkdir -p $$(dir $$@)
	$$(or $$(VARIANT_$(1)_CC),$$(CC)) $$(BASE) $$(VARIANT_$(1)_CFLAGS) -c $$< -o $$@

$(BUILD)/$(1)/libpendulum.a: $$(patsubst %.c,$(BUILD)/$(1)/obj/%.o,$$(LIB_SRC))
	@rm -f $$@
	ar rcs $$@ $$^

$(BUILD)/$(1)/pendulum: $(BUILD)/$(1)/obj/src/main.o $(BUILD)/$(1)/obj/tools/bench_local.o $(BUILD)/$(1)/libpendulum.a
	$$(CC) $$(VARIANT_$(1)_LDFLAGS) -o $$@ $$^ $$(LIBS)

$(BUILD)/$(1)/tests/%: $(BUILD)/$(1)/obj/tests/unit/%.o $(BUILD)/$(1)/libpendulum.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(VARIANT_$(1)_LDFLAGS) -o $$@ $$^ $$(LIBS)
endef
$(eval $(call variant,release))
$(eval $(call variant,asan))
$(eval $(call variant,fuzz))

UNIT_BINS = $(foreach v,release asan,$(patsubst tests/unit/%.c,$(BUILD)/$(v)/tests/%,$(UNIT_SRC)))

# ---- fuzz targets: one binary per tests/fuzz/fuzz_*.c, with ASan+UBSan ---------------------
$(BUILD)/fuzz/%: $(BUILD)/fuzz/obj/tests/fuzz/%.o $(BUILD)/fuzz/libpendulum.a
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS)
FUZZ_BINS = $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

# ---- set-up -----------------------------------------------------------------------------
deps:
	@scripts/bootstrap.sh

# Built once per machine into a cache outside the clone (scripts/llama.sh), about 5 minutes.
$(LLAMA_STAMP):
	@scripts/bootstrap.sh
	@scripts/llama.sh >/dev/null

llama: deps $(LLAMA_STAMP)

$(BUILD)/mkmodel: tools/mkmodel.c | llama
	@mkdir -p build
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I$(LLAMA_PREFIX)/include -o $@ $< \
	    -L$(LLAMA_PREFIX)/lib -Wl,-rpath,$(LLAMA_PREFIX)/lib -lggml-base -lggml -lm

# A tiny random-weight llama model with a real tokenizer: for tests and the demo.
model: $(BUILD)/models/tiny.gguf
$(BUILD)/models/tiny.gguf: $(BUILD)/mkmodel
	@mkdir -p $(BUILD)/models
	$(BUILD)/mkmodel --vocab $(LLAMA_PREFIX)/share/vocab/ggml-vocab-llama-bpe.gguf --preset tiny --seed 42 -o $@

tests/node_modules/.package-lock.json: tests/package-lock.json | deps
	cd tests && npm ci --no-audit --no-fund --loglevel=error

# ---- run and test -----------------------------------------------------------------------
run: deps $(BUILD)/release/pendulum model
	scripts/run-demo.sh $(BUILD)/release/pendulum

# One throwaway PostgreSQL serves the ledger's tests (scripts/pg-test.sh starts and removes it).
unit: $(UNIT_BINS)
	@scripts/pg-test.sh run scripts/run-unit.sh $(UNIT_BINS)

integration: $(BUILD)/asan/pendulum model tests/node_modules/.package-lock.json
	PENDULUM_BIN=$(CURDIR)/$(BUILD)/asan/pendulum LLAMA_PREFIX=$(LLAMA_PREFIX) \
	TINY_MODEL=$(CURDIR)/$(BUILD)/models/tiny.gguf \
	    node --test --test-concurrency=1 tests/integration/

# The PII detector against its labelled corpus: fails when a structured type's precision or
# recall drops below 0.97 (docs/pii.md).
$(BUILD)/release/pii_eval: tests/pii/eval.c $(BUILD)/release/libpendulum.a
	$(CC) $(BASE) $(VARIANT_release_CFLAGS) -o $@ $^ $(LIBS)

pii-eval: $(BUILD)/release/pii_eval
	$(BUILD)/release/pii_eval tests/pii/corpus.jsonl tests/pii/hard_negatives.jsonl

$(BUILD)/release/bench_pii: bench/pii/bench.c $(BUILD)/release/libpendulum.a
	$(CC) $(BASE) $(VARIANT_release_CFLAGS) $(shell pkg-config --cflags libpcre2-8) -o $@ $^ \
	    $(LIBS) $(shell pkg-config --libs libpcre2-8)

bench-pii: $(BUILD)/release/bench_pii
	$(BUILD)/release/bench_pii

# The embedded engine against the pinned llama-server on the tiny model (greedy equality,
# logprobs, concurrency, stop strings, cancellation, prefix reuse, embeddings): tests/engine.
engine-test: model
	OUT=$(CURDIR)/$(BUILD)/engine-tests tests/engine/run.sh $(CURDIR)/$(BUILD)/models/tiny.gguf

# The web page's files are compiled in (src/ingress/ui_assets.c, committed; regenerated here).
UI_ASSETS := ui/index.html ui/app.js ui/style.css
src/ingress/ui_assets.c: $(UI_ASSETS) tools/embed_assets.sh
	tools/embed_assets.sh $@ $(UI_ASSETS)

tests/ui/node_modules/.package-lock.json: tests/ui/package-lock.json | deps
	cd tests/ui && npm ci --no-audit --no-fund --loglevel=error

ui-test: $(BUILD)/asan/pendulum tests/ui/node_modules/.package-lock.json
	tools/embed_assets.sh --check src/ingress/ui_assets.c $(UI_ASSETS)
	PENDULUM_BIN=$(CURDIR)/$(BUILD)/asan/pendulum node --test --test-concurrency=1 tests/ui/

fuzz: $(FUZZ_BINS)
	@scripts/run-fuzz.sh $(FUZZ_BINS)

test: deps
	$(MAKE) --no-print-directory $(BUILD)/release/pendulum $(BUILD)/asan/pendulum
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory pii-eval
	$(MAKE) --no-print-directory engine-test
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory integration
	$(MAKE) --no-print-directory ui-test

bench: $(BUILD)/release/pendulum
	bench/overhead

# The embedded engine side by side with llama-server on the 1B shape, Q4_K_M and Q8_0 (issue 7).
bench-engine: $(BUILD)/release/pendulum
	BUILD=$(BUILD) bench/engine

format:
	clang-format -i src/*.c src/*/*.[ch] tests/unit/*.[ch] tests/fuzz/*.c tools/*.c

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
