# tests/guest: the test guest (Debian's stock kernel + a busybox
# initramfs, fetched once into $(VM_CACHE)) and small freestanding test
# programs for vm-run, built with the host toolchain.
#
#   make guest      fetch and build the kernel and initramfs
#   make run        boot them under vm-run to a busybox shell on the console

VM_CACHE ?= .cache/guest
GUEST_KERNEL := $(VM_CACHE)/vmlinuz
GUEST_INITRD := $(VM_CACHE)/initramfs.cpio.gz
RUN_ARGS ?= -m 1G -smp 1

# Tiny multiboot/flat test programs of vm-run (tests/guest/hw-*.S).
HW_GUEST_SRCS := $(wildcard tests/guest/hw-*.S)
HW_GUEST_BINS := $(patsubst %.S,$(O)/%.elf,$(HW_GUEST_SRCS))
GUEST_BINS += $(HW_GUEST_BINS)

$(O)/tests/guest/hw-%.elf: tests/guest/hw-%.S tests/guest/hw-link.ld
	@mkdir -p $(@D)
	$(if $(Q),@echo "  AS      $@")
	$(Q)$(CC) -m32 -nostdlib -ffreestanding -static -no-pie -Wl,--build-id=none \
		-Wl,-T,tests/guest/hw-link.ld -o $@ $<

$(GUEST_KERNEL) $(GUEST_INITRD) &: tests/guest/build-guest.sh tests/guest/init
	$(if $(Q),@echo "  GUEST   $(VM_CACHE)")
	$(Q)tests/guest/build-guest.sh $(VM_CACHE)

guest: $(GUEST_KERNEL) $(GUEST_INITRD)

# deps first (apt-get), then build, as `make check` does.
run: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all guest
	$(O)/bin/vm-run $(RUN_ARGS) -nographic -kernel $(GUEST_KERNEL) \
		-initrd $(GUEST_INITRD) -append "console=ttyS0 quiet vmtest.shell=1"

.PHONY: guest

# The unit tests of lib/hw (tests/unit/test-hw-*.c) link hw before jit:
# lib/hw's JIT accelerator needs lib/jit after it on the link line.
$(O)/tests/unit/test-hw-%: $(O)/tests/unit/test-hw-%.o $(call lib_archives,hw jit fmt common)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The same for the C test programs (tests/guest/hw-*.c), freestanding i386.
HW_GUEST_CSRCS := $(wildcard tests/guest/hw-*.c)
HW_GUEST_CBINS := $(patsubst %.c,$(O)/%.elf,$(HW_GUEST_CSRCS))
GUEST_BINS += $(HW_GUEST_CBINS)

$(O)/tests/guest/hw-%.elf: tests/guest/hw-%.c tests/guest/hw-link.ld
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) -m32 -O2 -ffreestanding -fno-pic -fno-stack-protector -mgeneral-regs-only \
		-mno-red-zone -nostdlib -static -no-pie -Wall -Wextra -Wno-unused-parameter \
		-Wl,--build-id=none -Wl,--no-warn-rwx-segments -Wl,-T,tests/guest/hw-link.ld -o $@ $<
