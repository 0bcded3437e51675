# tests/guest/cpu: freestanding test kernels of lib/jit's privileged
# behaviour (multiboot, ELF32 so QEMU's -kernel takes them too), run by
# tests/unit/test-jit-sys.c (cpu-modes, on a bare bus) and
# tests/unit/test-jit-machine.c (cpu-smp, on lib/hw's PC with -smp 2), and
# usable with vm-run or QEMU:
#   qemu-system-x86_64 -kernel o/rel/tests/guest/cpu/cpu-modes.elf \
#       -device isa-debug-exit,iobase=0xf4,iosize=0x04 -nographic
CPU_GUEST_SRCS := $(wildcard tests/guest/cpu/*.S)
CPU_GUEST_BINS := $(patsubst %.S,$(O)/%.elf,$(CPU_GUEST_SRCS))
GUEST_BINS += $(CPU_GUEST_BINS)

$(O)/tests/guest/cpu/%.elf: tests/guest/cpu/%.S tests/guest/cpu/link.ld
	@mkdir -p $(@D)
	$(if $(Q),@echo "  AS      $@")
	$(Q)$(CC) -c -o $@.o $<
	$(Q)ld -m elf_x86_64 -static -nostdlib --build-id=none --no-warn-rwx-segments -T tests/guest/cpu/link.ld -o $@.64 $@.o
	$(Q)objcopy -O elf32-i386 $@.64 $@
	$(Q)rm -f $@.o $@.64

# tests/unit/test-jit-machine runs the kernels on lib/hw's whole PC (APIC,
# SMP): it links hw before jit, like the test-hw-* programs.
$(O)/tests/unit/test-jit-machine: $(O)/tests/unit/test-jit-machine.o $(call lib_archives,hw jit fmt common)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
