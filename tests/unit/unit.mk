# tests/unit/test-*.c: one C program each, linked with every library,
# printing TAP ("ok N - what" / "not ok N - what").
UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_OBJS := $(patsubst %.c,$(O)/%.o,$(UNIT_SRCS))
UNIT_BINS := $(patsubst %.c,$(O)/%,$(UNIT_SRCS))

$(O)/tests/unit/%: $(O)/tests/unit/%.o $(LIB_ARCHIVES)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB_ARCHIVES) $(LDLIBS)
