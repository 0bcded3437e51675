/*
 * cpu-tlb: TLB invalidation as seen by hot (translated, chained) 64-bit
 * code, as a multiboot kernel for vm-run and QEMU alike.  Prints
 * "ok - what" / "not ok - what" lines on COM1 and leaves through
 * isa-debug-exit (port 0xf4) with the number of failures.
 *
 * Covers (Intel SDM vol. 3, 4.10.4):
 *  - INVLPG of one address in a 2 MiB page drops the whole page: a read
 *    of another 4 KiB piece of it sees the new mapping;
 *  - the same for a 1 GiB page replaced by a directory;
 *  - a call site that has called a function many times (so that the
 *    emulator may jump straight into its code) calls the new code after
 *    the function's page is remapped and INVLPG'd, and after a CR3 load
 *    (the page is not global), while the old code stays in memory;
 *  - one code page mapped at two addresses: RIP-relative code gives the
 *    address it runs at, however often it ran at the other one.
 */
	.section .multiboot, "a"
	.align 4
	.long 0x1badb002
	.long 0x00000003
	.long -(0x1badb002 + 0x00000003)

#define PML4 0x20000
#define PDPT 0x21000
#define PD0 0x22000
#define PD1 0x23000
#define PD2 0x24000
#define PT1 0x25000
#define STACK 0x70000
#define X1 0x300000		/* code pages: f1, f2, f3 */
#define X2 0x301000
#define X3 0x302000
#define LIN_F 0xa00000		/* -> X1, later X2, then X1 again */
#define LIN_A1 0xa01000		/* -> X3 */
#define LIN_A2 0xa02000		/* -> X3 */
#define PA 0x1000000		/* 16 MiB: the values A */
#define PB 0x1200000		/* 18 MiB: the values B */
#define W1G 0x40000000		/* a 1 GiB page: linear 1 GiB -> physical 0 */
#define W2M 0x80000000		/* a 2 MiB page: linear 2 GiB -> PA, later PB */
#define VA 0x1111
#define VB 0x5555

	.text
	.code32
	.globl _start
_start:
	mov $STACK, %esp
	lgdt gdt_desc
	ljmp $0x08, $1f
1:	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $PML4, %edi
	xor %eax, %eax
	mov $(6 * 1024), %ecx
	rep stosl
	movl $(PDPT | 3), PML4
	movl $(PD0 | 3), PDPT
	movl $0x83, PDPT + 8
	movl $(PD1 | 3), PDPT + 16
	/* 0-32 MiB identity in global 2 MiB pages, 10-12 MiB through PT1 */
	mov $PD0, %edi
	mov $0x183, %eax
	mov $16, %ecx
2:	mov %eax, (%edi)
	add $0x200000, %eax
	add $8, %edi
	loop 2b
	movl $(PT1 | 3), PD0 + 5 * 8
	movl $(PA | 0x83), PD1
	movl $(X1 | 3), PT1
	movl $(X3 | 3), PT1 + 8
	movl $(X3 | 3), PT1 + 16
	mov %cr4, %eax
	or $0xa0, %eax			/* PAE | PGE */
	mov %eax, %cr4
	mov $PML4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx
	rdmsr
	or $0x100, %eax			/* LME */
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax
	mov %eax, %cr0
	ljmp $0x18, $lm64

	.code64
lm64:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $STACK, %rsp
	lea f1(%rip), %rsi
	mov $X1, %edi
	mov $(f1_end - f1), %ecx
	rep movsb
	lea f2(%rip), %rsi
	mov $X2, %edi
	mov $(f2_end - f2), %ecx
	rep movsb
	lea f3(%rip), %rsi
	mov $X3, %edi
	mov $(f3_end - f3), %ecx
	rep movsb
	mov $VA, %eax
	mov %rax, PA + 0x5000
	mov %rax, PA + 0x6000
	mov $VB, %eax
	mov %rax, PB + 0x5000
	mov %rax, PB + 0x6000

	/* a 2 MiB page: INVLPG of one piece drops its neighbour too */
	mov $W2M, %ebx
	call warm
	cmp $(2 * VA), %rax
	jne 1f
	movl $(PB | 0x83), PD1
	invlpg 0x5000(%rbx)
	cmpq $VB, 0x6000(%rbx)
1:	sete %al
	movzbl %al, %eax
	lea s_2m(%rip), %rsi
	call report

	/* a 1 GiB page replaced by a directory */
	mov $(W1G + PA), %ebx
	call warm
	cmp $(2 * VA), %rax
	jne 1f
	movl $(PD2 | 3), PDPT + 8
	movl $(PB | 0x83), PD2 + (PA >> 21) * 8
	invlpg 0x5000(%rbx)
	cmpq $VB, 0x6000(%rbx)
1:	sete %al
	movzbl %al, %eax
	lea s_1g(%rip), %rsi
	call report

	/* a hot call site after its callee's page is remapped: INVLPG */
	xor %r12d, %r12d
	xor %r13d, %r13d
2:	call LIN_F
	add %rax, %r13
	inc %r12d
	cmp $100, %r12d
	jne 3f
	movl $(X2 | 3), PT1
	invlpg LIN_F
3:	cmp $101, %r12d
	jb 2b
	cmp $(100 * 1 + 2), %r13
	sete %al
	movzbl %al, %eax
	lea s_invlpg(%rip), %rsi
	call report

	/* the same through a CR3 load (the page is not global) */
	xor %r12d, %r12d
	xor %r13d, %r13d
2:	call LIN_F
	add %rax, %r13
	inc %r12d
	cmp $100, %r12d
	jne 3f
	movl $(X1 | 3), PT1
	mov %cr3, %rax
	mov %rax, %cr3
3:	cmp $101, %r12d
	jb 2b
	cmp $(100 * 2 + 1), %r13
	sete %al
	movzbl %al, %eax
	lea s_cr3(%rip), %rsi
	call report

	/* one code page at two addresses */
	xor %r15d, %r15d
	mov $LIN_A1, %r14d
	call alias
	mov $LIN_A2, %r14d
	call alias
	mov $LIN_A1, %r14d
	call alias
	test %r15d, %r15d
	setz %al
	movzbl %al, %eax
	lea s_alias(%rip), %rsi
	call report

	mov failures(%rip), %eax
	mov $0xf4, %dx
	out %eax, %dx
	hlt
	jmp .

/* rax = the sum of the quadwords at rbx + 0x5000 and rbx + 0x6000, read
 * in a hot loop (both pieces of the page end up in the TLB) */
warm:
	mov $100, %ecx
1:	mov 0x5000(%rbx), %rax
	add 0x6000(%rbx), %rax
	dec %ecx
	jnz 1b
	ret

/* call the code at r14 50 times; r15 += the calls that did not give
 * their own address back */
alias:
	mov $50, %ecx
	lea (f3_rip - f3)(%r14), %rdx
1:	call *%r14
	cmp %rdx, %rax
	je 2f
	inc %r15d
2:	dec %ecx
	jnz 1b
	ret

/* eax: pass; rsi: what */
report:
	test %eax, %eax
	jnz 1f
	incl failures(%rip)
	push %rsi
	lea s_not(%rip), %rsi
	call puts
	pop %rsi
1:	push %rsi
	lea s_ok(%rip), %rsi
	call puts
	pop %rsi
	call puts
	lea s_nl(%rip), %rsi
	call puts
	ret

puts:
	mov $0x3f8, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	ret

/* copied to the code pages */
f1:	mov $1, %eax
	ret
f1_end:
f2:	mov $2, %eax
	ret
f2_end:
f3:	lea 0(%rip), %rax
f3_rip:	ret
f3_end:

	.data
	.align 8
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08 code32 */
	.quad 0x00cf92000000ffff	/* 0x10 data */
	.quad 0x00af9a000000ffff	/* 0x18 code64 */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
failures:
	.long 0
s_ok:	.asciz "ok - "
s_not:	.asciz "not "
s_nl:	.asciz "\n"
s_2m:	.asciz "INVLPG drops every 4 KiB piece of a 2 MiB page"
s_1g:	.asciz "INVLPG drops every piece of a 1 GiB page"
s_invlpg: .asciz "a hot call site calls the new code after INVLPG of its callee's page"
s_cr3:	.asciz "a hot call site calls the new code after a CR3 load"
s_alias: .asciz "code mapped at two addresses runs at the address called"
