# The vm-* suite: one non-recursive Makefile.  Each folder adds itself
# through a .mk fragment; outputs go to o/rel (or o/san with SAN=1).
#
#   make              build every tool
#   make deps         install the Debian packages needed to build and test
#   make check        build, then unit and bats tests ("N passed, N failed")
#   make SAN=1 check  the same under ASan + UBSan
#   make install      PREFIX=/usr/local DESTDIR=
#   make run          boot the default guest (the main job)

.DELETE_ON_ERROR:
.SECONDARY:
.SUFFIXES:
.DEFAULT_GOAL := all

VERSION := 0.1.0
PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?=

ifeq ($(SAN),1)
O        := o/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT      := -O1
else
O        := o/rel
SANFLAGS :=
OPT      := -O2
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

PKGS      := zlib liblzma libzstd libsodium jansson slirp libpcap libedit
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC      ?= cc
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
           -D_GNU_SOURCE -DVM_VERSION='"$(VERSION)"' -Ilib $(PKG_CFLAGS) $(SANFLAGS) -pthread
LDFLAGS += $(SANFLAGS) -pthread
LDLIBS  += $(PKG_LIBS) -lm

LIBS  := hw jit fmt common
TOOLS := vm-img vm-nbd vm-run vm-net vm-mon vm-snap

# lib/NAME/*.c -> $(O)/lib/NAME.a
define lib_rule
$(1)_SRCS := $$(wildcard lib/$(1)/*.c)
$(1)_OBJS := $$(patsubst %.c,$(O)/%.o,$$($(1)_SRCS))
$(O)/lib/$(1).a: $$($(1)_OBJS)
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(if $(Q),@echo "  AR      $$@")
	$(Q)ar rcs $$@ $$^
endef
$(foreach l,$(LIBS),$(eval $(call lib_rule,$(l))))
LIB_ARCHIVES := $(foreach l,$(LIBS),$(O)/lib/$(l).a)

# cmd/TOOL/*.c -> $(O)/bin/TOOL, linked with only the libraries it uses
# (in link order), so a tool never waits on a library it does not need.
vm-img_LIBS  := fmt common
vm-nbd_LIBS  := fmt common
vm-run_LIBS  := hw jit fmt common
vm-net_LIBS  := common
vm-mon_LIBS  := common
vm-snap_LIBS := fmt common
lib_archives = $(foreach l,$(1),$(O)/lib/$(l).a)

define tool_rule
$(1)_SRCS := $$(wildcard cmd/$(1)/*.c)
$(1)_OBJS := $$(patsubst %.c,$(O)/%.o,$$($(1)_SRCS))
$(O)/bin/$(1): $$($(1)_OBJS) $$(call lib_archives,$$($(1)_LIBS))
	@mkdir -p $$(@D)
	$$(if $(Q),@echo "  LD      $$@")
	$(Q)$(CC) $(LDFLAGS) -o $$@ $$($(1)_OBJS) $$(call lib_archives,$$($(1)_LIBS)) $(LDLIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rule,$(t))))
BINS := $(foreach t,$(TOOLS),$(O)/bin/$(t))

$(O)/%.o: %.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

include $(wildcard */*.mk */*/*.mk)

all: | pkgcheck
all: $(BINS) $(UNIT_BINS) $(FUZZ_BINS) $(GUEST_BINS)
	@mkdir -p bin && for t in $(TOOLS); do ln -sf ../$(O)/bin/$$t bin/$$t; done

# Debian packages to build and test; apt-get update runs only when
# something is missing, so a second `make deps` is quick.
DEB_PKGS := build-essential pkg-config zlib1g-dev liblzma-dev libzstd-dev libsodium-dev \
            libjansson-dev libslirp-dev libglib2.0-dev libpcap-dev libedit-dev \
            bats bats-assert bats-support bats-file mandoc \
            qemu-utils qemu-system-x86 libnbd-bin tshark fio jq python3 bc systemd \
            busybox-static cpio xz-utils zstd kmod grub-pc-bin xorriso mtools seabios
# Say plainly when a library is missing, instead of failing later on
# empty compiler flags.
pkgcheck:
	@pkg-config --exists $(PKGS) || { pkg-config --print-errors --exists $(PKGS); \
		echo "missing build libraries: run 'make deps' (as root)"; exit 1; }

deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "  DEPS    installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	else echo "  DEPS    all present"; fi

check: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@tests/run-all $(O)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(wildcard man/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/
	$(if $(wildcard man/*.7),install -m 644 $(wildcard man/*.7) $(DESTDIR)$(PREFIX)/share/man/man7/)

# Side-by-side benchmarks against QEMU's tools (long; never part of check).
bench: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@for b in bench/*.sh; do [ -x "$$b" ] || continue; echo "== $$b"; VM_BUILD=$(CURDIR)/$(O) "$$b" || exit 1; done

clean:
	rm -rf o bin

.PHONY: all deps check install clean run bench pkgcheck

ALL_OBJS += $(foreach l,$(LIBS),$($(l)_OBJS)) $(foreach t,$(TOOLS),$($(t)_OBJS)) $(UNIT_OBJS)
-include $(ALL_OBJS:.o=.d)
