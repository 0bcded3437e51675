# fuzz/fuzz-*.c: libFuzzer harnesses (LLVMFuzzerTestOneInput), one per
# parser of untrusted bytes.  `make` builds each with fuzz/standalone.c as
# a plain program that replays fuzz/corpus/NAME/ (tests/run-all runs them);
# `make fuzz` builds real libFuzzer binaries with clang into o/fuzz/ and
# runs each for FUZZ_SECONDS.
FUZZ_SRCS := $(wildcard fuzz/fuzz-*.c)
FUZZ_BINS := $(patsubst fuzz/%.c,$(O)/fuzz/%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 60


# Named here so that the objects are not intermediate files: a changed
# header must recompile them, not only relink the harness.
$(FUZZ_BINS): $(O)/fuzz/%: $(O)/fuzz/%.o

# fuzz-common-*: lib/common only; fuzz-fmt-*: the block layer; the rest
# link every library.
$(O)/fuzz/fuzz-common-%: $(O)/fuzz/fuzz-common-%.o $(O)/fuzz/standalone.o $(call lib_archives,common)
	$(Q)$(unit_link)
$(O)/fuzz/fuzz-fmt-%: $(O)/fuzz/fuzz-fmt-%.o $(O)/fuzz/standalone.o $(call lib_archives,fmt common)
	$(Q)$(unit_link)
# fuzz-nbd-server: vm-nbd's own objects (all but main.o) drive the server.
$(O)/fuzz/fuzz-nbd-server: $(O)/fuzz/fuzz-nbd-server.o $(O)/fuzz/standalone.o \
		$(filter-out %/main.o,$(vm-nbd_OBJS)) $(call lib_archives,fmt common)
	$(Q)$(unit_link)
$(O)/fuzz/%: $(O)/fuzz/%.o $(O)/fuzz/standalone.o $(LIB_ARCHIVES)
	$(Q)$(unit_link)

LIBFUZZER_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -DVM_VERSION='"$(VERSION)"' -Ilib $(PKG_CFLAGS) \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -pthread
fuzz: deps
	@command -v clang >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
	@mkdir -p o/fuzz
	@for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); \
		echo "  FUZZ    $$n"; \
		case $$n in fuzz-common-*) srcs="lib/common/*.c" ;; fuzz-fmt-*) srcs="lib/fmt/*.c lib/common/*.c" ;; \
			fuzz-nbd-server) srcs="$$(ls cmd/vm-nbd/*.c | grep -v main.c) lib/fmt/*.c lib/common/*.c" ;; \
			*) srcs="lib/*/*.c" ;; esac; \
		clang $(LIBFUZZER_CFLAGS) -o o/fuzz/$$n $$f $$srcs $(PKG_LIBS) -lm || exit 1; \
		mkdir -p o/fuzz/corpus-$$n; \
		o/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) o/fuzz/corpus-$$n fuzz/corpus/$${n#fuzz-} || exit 1; \
	done
.PHONY: fuzz
ALL_OBJS += $(patsubst %,%.o,$(FUZZ_BINS)) $(O)/fuzz/standalone.o
