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

run: all guest
	$(O)/bin/vm-run $(RUN_ARGS) -nographic -kernel $(GUEST_KERNEL) \
		-initrd $(GUEST_INITRD) -append "console=ttyS0 quiet vmtest.shell=1"

.PHONY: guest
