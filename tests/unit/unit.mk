# tests/unit/test-*.c: one C program each, printing TAP ("ok N - what" /
# "not ok N - what").  A test links with the libraries its name says
# (test-common-*: lib/common; test-fmt-*, test-nbd-*: lib/fmt too;
# test-jit-*: lib/jit), and anything else with all of them.
UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_OBJS := $(patsubst %.c,$(O)/%.o,$(UNIT_SRCS))
UNIT_BINS := $(patsubst %.c,$(O)/%,$(UNIT_SRCS))

unit_link = @mkdir -p $(@D); $(if $(Q),echo "  LD      $@";) $(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/tests/unit/test-common-%: $(O)/tests/unit/test-common-%.o $(call lib_archives,common)
	$(Q)$(unit_link)
$(O)/tests/unit/test-fmt-%: $(O)/tests/unit/test-fmt-%.o $(call lib_archives,fmt common)
	$(Q)$(unit_link)
$(O)/tests/unit/test-nbd-%: $(O)/tests/unit/test-nbd-%.o $(call lib_archives,fmt common)
	$(Q)$(unit_link)
$(O)/tests/unit/test-jit-%: $(O)/tests/unit/test-jit-%.o $(call lib_archives,jit common)
	$(Q)$(unit_link)
$(O)/tests/unit/test-%: $(O)/tests/unit/test-%.o $(LIB_ARCHIVES)
	$(Q)$(unit_link)
