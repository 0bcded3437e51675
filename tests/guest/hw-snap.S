/*
 * hw-snap: a multiboot test program for VM snapshots (savevm/loadvm).
 * It keeps a counter in RAM and answers single characters on COM1:
 *   n  count one up and print "count=N"
 *   w  write "CNT" and the counter to sector 0 of the first IDE disk
 *      (ATA PIO, WRITE SECTORS) and print "wrote=N"
 *   r  read sector 0 back and print "disk=N" ("disk=none" without "CNT")
 *   q  leave through isa-debug-exit with 0x10 (status 33)
 * Restoring a snapshot must bring back the counter (RAM and registers)
 * and the sector (the disk's internal snapshot) as they were.
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
	mov $hello, %esi
	call puts
loop:
	mov $0x3fd, %dx
1:	in %dx, %al
	test $1, %al
	jz 1b
	mov $0x3f8, %dx
	in %dx, %al
	cmp $'n', %al
	je do_count
	cmp $'w', %al
	je do_write
	cmp $'r', %al
	je do_read
	cmp $'q', %al
	jne loop
	mov $0x10, %al
	out %al, $0xf4
	hlt

do_count:
	incl counter
	mov $s_count, %esi
	call puts
	mov counter, %eax
	call putdec
	jmp loop

do_write:
	mov $sector, %edi
	movl $0x00544e43, (%edi)	/* "CNT" */
	mov counter, %al
	mov %al, 3(%edi)
	mov $0x30, %bl			/* WRITE SECTORS */
	call ata_cmd
	mov $0x1f0, %dx
	mov $sector, %esi
	mov $256, %ecx
	rep outsw
	call ata_wait
	mov $s_wrote, %esi
	call puts
	mov counter, %eax
	call putdec
	jmp loop

do_read:
	mov $0x20, %bl			/* READ SECTORS */
	call ata_cmd
	mov $0x1f0, %dx
	mov $sector, %edi
	mov $256, %ecx
	rep insw
	mov $s_disk, %esi
	call puts
	mov $sector, %edi
	mov (%edi), %eax
	and $0xffffff, %eax
	cmp $0x544e43, %eax
	je 2f
	mov $s_none, %esi
	call puts
	jmp loop
2:	movzbl 3(%edi), %eax
	call putdec
	jmp loop

/* LBA 0, one sector, command %bl; waits for DRQ. */
ata_cmd:
	call ata_wait
	mov $0x1f6, %dx
	mov $0xe0, %al
	out %al, %dx
	mov $0x1f2, %dx
	mov $1, %al
	out %al, %dx
	xor %al, %al
	mov $0x1f3, %dx
	out %al, %dx
	inc %dx
	out %al, %dx
	inc %dx
	out %al, %dx
	mov $0x1f7, %dx
	mov %bl, %al
	out %al, %dx
3:	in %dx, %al
	test $0x80, %al
	jnz 3b
	test $0x08, %al
	jz 3b
	ret

ata_wait:
	mov $0x1f7, %dx
4:	in %dx, %al
	test $0x80, %al
	jnz 4b
	ret

/* %eax in decimal, then a newline. */
putdec:
	mov $10, %ecx
	mov $numend, %edi
5:	xor %edx, %edx
	div %ecx
	add $'0', %dl
	dec %edi
	mov %dl, (%edi)
	test %eax, %eax
	jnz 5b
	mov %edi, %esi
	call puts
	ret

puts:
	lodsb
	test %al, %al
	jz 6f
	mov %al, %ah
	mov $0x3fd, %dx
7:	in %dx, %al
	test $0x20, %al
	jz 7b
	mov $0x3f8, %dx
	mov %ah, %al
	out %al, %dx
	jmp puts
6:	ret

	.section .rodata
hello:	.asciz "hw-snap ready\n"
s_count: .asciz "count="
s_wrote: .asciz "wrote="
s_disk:	.asciz "disk="
s_none:	.asciz "none\n"

	.data
counter: .long 0
numbuf:	.space 12
numend:	.byte '\n', 0

	.bss
	.align 4
sector:	.space 512
