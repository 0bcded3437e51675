/*
 * hw-hello: the smallest multiboot test program of vm-run.  Prints
 * "hello from multiboot" and the multiboot magic check on COM1, reads the
 * PIT and the CMOS, then leaves through isa-debug-exit (port 0xf4) with
 * value 0x10, so the emulator exits with status 33.
 */
	.section .multiboot, "a"
	.align 4
	.long 0x1badb002
	.long 0x00000003
	.long -(0x1badb002 + 0x00000003)

	.text
	.code32
	.globl _start
_start:
	mov $0x90000, %esp
	cmp $0x2badb002, %eax
	jne fail
	mov $msg, %esi
	call puts
	/* CMOS register 0x0b must read back what the RTC holds (0x02) */
	mov $0x0b, %al
	out %al, $0x70
	in $0x71, %al
	cmp $0x02, %al
	jne fail
	mov $ok, %esi
	call puts
	mov $0x10, %al
	out %al, $0xf4
	hlt
fail:
	mov $bad, %esi
	call puts
	mov $0x01, %al
	out %al, $0xf4
	hlt

puts:
	lodsb
	test %al, %al
	jz 1f
	mov $0x3f8, %dx
	out %al, %dx
	jmp puts
1:	ret

	.section .rodata
msg:	.asciz "hello from multiboot\n"
ok:	.asciz "cmos ok\n"
bad:	.asciz "FAIL\n"
