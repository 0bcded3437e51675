/*
 * cpu-tlb: TLB invalidation, and system instructions inside a run of
 * straight-line code, as seen by hot (translated, chained) 64-bit code,
 * as a multiboot kernel for vm-run and QEMU alike.  Prints
 * "ok - what" / "not ok - what" lines on COM1 and leaves through
 * isa-debug-exit (port 0xf4) with the number of failures.
 *
 * Covers (Intel SDM vol. 3, 4.10.4):
 *  - INVLPG of one address in a 2 MiB page drops the whole page: a read
 *    of another 4 KiB piece of it sees the new mapping;
 *  - the same for a 1 GiB page replaced by a directory;
 *  - a page whose TLB entry another page 2 MiB away took (an emulator
 *    may keep it aside) is read through its new mapping after INVLPG;
 *  - a call site that has called a function many times (so that the
 *    emulator may jump straight into its code) calls the new code after
 *    the function's page is remapped and INVLPG'd, and after a CR3 load
 *    (the page is not global), while the old code stays in memory; the
 *    same for an indirect call site;
 *  - one code page mapped at two addresses: RIP-relative code gives the
 *    address it runs at, however often it ran at the other one;
 *  - hot code whose instructions cross from one page into the next (the
 *    pages in two 2 MiB regions): it runs the bytes of the page mapped
 *    next after that page is remapped and INVLPG'd, and after a store to
 *    them; with the next page not present, the #PF is raised at the
 *    instruction that crosses, with CR2 the next page, after the
 *    instruction before it and once; a store by such code into its own
 *    bytes in the next page is seen by its next instruction;
 *  - SWAPGS between GS-relative loads, MOV from SS, CLI and SMSW in a hot
 *    loop: each load sees the GS base the SWAPGS before it gave.
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
#define PT2 0x26000
#define STACK 0x70000
#define X1 0x300000		/* code pages: f1, f2, f3 */
#define X2 0x301000
#define X3 0x302000
#define LIN_F 0xa00000		/* -> X1, later X2, then X1 again */
#define LIN_A1 0xa01000		/* -> X3 */
#define LIN_A2 0xa02000		/* -> X3 */
#define Y1 0x303000		/* code across a page boundary: Y1, then Y2 or Y3 */
#define Y2 0x304000
#define Y3 0x306000
#define LIN_P1 0xbff000		/* -> Y1 (PT1's last entry) */
#define LIN_P2 0xc00000		/* -> Y2, Y3 or nothing (PT2) */
#define LIN_FX (LIN_P1 + 0xffa)	/* inc %r8; mov $imm32, %eax (crosses); ret */
#define Y4 0x307000		/* code across a page boundary that stores into itself */
#define Y5 0x308000
#define LIN_G 0xa03ff0		/* -> Y4 + 0xff0: mov %r9b, LIN_G_IMM; nop x 8; add $5, %eax; ret */
#define LIN_G_IMM 0xa04002
#define IMM_Y2 0x44332211	/* what mov gives with Y2 next, Y3 next, Y3 stored to */
#define IMM_Y3 0x66552211
#define IMM_Y3S 0x88772211
#define PA 0x1000000		/* 16 MiB: the values A */
#define PB 0x1200000		/* 18 MiB: the values B */
#define W1G 0x40000000		/* a 1 GiB page: linear 1 GiB -> physical 0 */
#define W2M 0x80000000		/* a 2 MiB page: linear 2 GiB -> PA, later PB */
#define VA 0x1111
#define LIN_V 0xa05000		/* -> PA + 0x5000, later PB + 0x5000 (PT1) */
#define LIN_V2 (LIN_V + 0x200000)	/* -> PA + 0x6000 (PT2): the same TLB index */
#define VB 0x5555

/* r13 = the sum of what 101 direct calls of target return (r12 counts
 * them); between the 100th and the 101st the instructions given run: the
 * change under test, made while the call site is hot (translated,
 * chained).  Local labels 2 and 3. */
#define HOT_CALLS(target, ...) \
	xor %r12d, %r12d; \
	xor %r13d, %r13d; \
2:	call target; \
	add %rax, %r13; \
	inc %r12d; \
	cmp $100, %r12d; \
	jne 3f; \
	__VA_ARGS__; \
3:	cmp $101, %r12d; \
	jb 2b

/* The same through an indirect call (CALL r/m: the target looked up as
 * RET's is). */
#define HOT_ICALLS(target, ...) \
	xor %r12d, %r12d; \
	xor %r13d, %r13d; \
2:	mov $target, %eax; \
	call *%rax; \
	add %rax, %r13; \
	inc %r12d; \
	cmp $100, %r12d; \
	jne 3f; \
	__VA_ARGS__; \
3:	cmp $101, %r12d; \
	jb 2b

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
	mov $(7 * 1024), %ecx
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
	movl $(PT2 | 3), PD0 + 6 * 8	/* 12-14 MiB through PT2 */
	movl $(Y1 | 3), PT1 + 511 * 8
	movl $(Y2 | 3), PT2
	movl $(Y4 | 3), PT1 + 3 * 8
	movl $(Y5 | 3), PT1 + 4 * 8
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
	movl $0xb8c0ff49, Y1 + 0xffa	/* inc %r8; mov $imm32, %eax ... */
	movw $0x2211, Y1 + 0xffe
	movw $0x4433, Y2		/* ... its last two bytes; ret */
	movb $0xc3, Y2 + 2
	movw $0x6655, Y3
	movb $0xc3, Y3 + 2
	movl $0x250c8844, Y4 + 0xff0	/* mov %r9b, LIN_G_IMM */
	movl $LIN_G_IMM, Y4 + 0xff4
	movq $0x9090909090909090, %rax
	mov %rax, Y4 + 0xff8
	movl $0xc305c083, Y5		/* add $5, %eax; ret */
	lea pf(%rip), %rax		/* IDT: #PF */
	mov %ax, idt + 14 * 16
	movw $0x18, idt + 14 * 16 + 2
	movw $0x8e00, idt + 14 * 16 + 4
	shr $16, %rax
	mov %ax, idt + 14 * 16 + 6
	shr $16, %rax
	mov %eax, idt + 14 * 16 + 8
	lidt idt_desc(%rip)
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

	/* a page pushed out of its TLB entry by another at the same index */
	movl $((PA + 0x5000) | 3), PT1 + 5 * 8
	movl $((PA + 0x6000) | 3), PT2 + 5 * 8
	mov $LIN_V, %ebx
	mov (%rbx), %rax
	add LIN_V2 - LIN_V(%rbx), %rax
	cmp $(2 * VA), %rax
	jne 1f
	movl $((PB + 0x5000) | 3), PT1 + 5 * 8
	invlpg (%rbx)
	cmpq $VB, (%rbx)
1:	sete %al
	movzbl %al, %eax
	lea s_victim(%rip), %rsi
	call report

	/* a hot call site after its callee's page is remapped: INVLPG */
	HOT_CALLS(LIN_F, movl $(X2 | 3), PT1; invlpg LIN_F)
	cmp $(100 * 1 + 2), %r13
	sete %al
	movzbl %al, %eax
	lea s_invlpg(%rip), %rsi
	call report

	/* the same through a CR3 load (the page is not global) */
	HOT_CALLS(LIN_F, movl $(X1 | 3), PT1; mov %cr3, %rax; mov %rax, %cr3)
	cmp $(100 * 2 + 1), %r13
	sete %al
	movzbl %al, %eax
	lea s_cr3(%rip), %rsi
	call report

	/* both again for a hot indirect call site */
	HOT_ICALLS(LIN_F, movl $(X2 | 3), PT1; invlpg LIN_F)
	cmp $(100 * 1 + 2), %r13
	sete %al
	movzbl %al, %eax
	lea s_iinvlpg(%rip), %rsi
	call report
	HOT_ICALLS(LIN_F, movl $(X1 | 3), PT1; mov %cr3, %rax; mov %rax, %cr3)
	cmp $(100 * 2 + 1), %r13
	sete %al
	movzbl %al, %eax
	lea s_icr3(%rip), %rsi
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

	/* code across a page boundary, hot: the next page remapped */
	movb LIN_P2, %al		/* (the next page in the TLB from the start) */
	xor %r8d, %r8d
	HOT_CALLS(LIN_FX, movl $(Y3 | 3), PT2; invlpg LIN_P2)
	movabs $(100 * IMM_Y2 + IMM_Y3), %rax
	cmp %rax, %r13
	jne 1f
	cmp $101, %r8d
1:	sete %al
	movzbl %al, %eax
	lea s_xremap(%rip), %rsi
	call report

	/* the same, its bytes in the next page stored to */
	HOT_CALLS(LIN_FX, movw $0x8877, Y3)
	movabs $(100 * IMM_Y3 + IMM_Y3S), %rax
	cmp %rax, %r13
	sete %al
	movzbl %al, %eax
	lea s_xstore(%rip), %rsi
	call report

	/* the same, the next page not present: pf() maps Y2 there */
	movl $(Y2 | 3), PT2
	invlpg LIN_P2
	xor %r8d, %r8d
	HOT_CALLS(LIN_FX, movl $0, PT2; invlpg LIN_P2)
	movabs $(101 * IMM_Y2), %rax
	cmp %rax, %r13
	jne 1f
	cmpl $1, pf_count(%rip)
	jne 1f
	cmpq $LIN_P2, pf_cr2(%rip)
	jne 1f
	cmpq $(LIN_FX + 3), pf_rip(%rip)
	jne 1f
	cmpq $101, pf_r8(%rip)
	jne 1f
	cmp $101, %r8d
1:	sete %al
	movzbl %al, %eax
	lea s_xfault(%rip), %rsi
	call report

	/* the same code storing into its own bytes in the next page */
	movb LIN_G_IMM, %al		/* (the next page in the TLB from the start) */
	xor %r13d, %r13d
	mov $100, %r12d
	mov $0x33, %r9d
2:	movb $5, Y5 + 2			/* the imm8 of add, as translated */
	xor %eax, %eax
	call LIN_G
	add %rax, %r13
	dec %r12d
	jnz 2b
	cmp $(100 * 0x33), %r13
	sete %al
	movzbl %al, %eax
	lea s_xsmc(%rip), %rsi
	call report

	/* SWAPGS and friends in the middle of hot straight-line code */
	mov $0xc0000101, %ecx		/* GS base: gs_a */
	lea gs_a(%rip), %rax
	mov %rax, %rdx
	shr $32, %rdx
	wrmsr
	mov $0xc0000102, %ecx		/* kernel GS base: gs_b */
	lea gs_b(%rip), %rax
	mov %rax, %rdx
	shr $32, %rdx
	wrmsr
	xor %r13d, %r13d
	xor %r14d, %r14d
	mov $100, %r12d
2:	swapgs
	add %gs:0, %r13			/* gs_b: 100 */
	swapgs
	add %gs:8, %r13			/* gs_a + 8: 2 */
	mov %ss, %eax
	add %rax, %r14
	cli
	smsw %eax
	and $1, %eax
	add %rax, %r14
	dec %r12d
	jnz 2b
	cmp $(100 * 102), %r13
	jne 1f
	cmp $(100 * 0x11), %r14
1:	sete %al
	movzbl %al, %eax
	lea s_swapgs(%rip), %rsi
	call report

	mov failures(%rip), %eax
	mov $0xf4, %dx
	out %eax, %dx
	hlt
	jmp .

/* #PF: note where and when, map Y2 at LIN_P2, and retry */
pf:
	push %rax
	incl pf_count(%rip)
	mov %cr2, %rax
	mov %rax, pf_cr2(%rip)
	mov 16(%rsp), %rax		/* above the saved RAX and the error code */
	mov %rax, pf_rip(%rip)
	mov %r8, pf_r8(%rip)
	movl $(Y2 | 3), PT2
	pop %rax
	add $8, %rsp
	iretq

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
pf_count:
	.long 0
	.align 8
gs_a:	.quad 1, 2
gs_b:	.quad 100, 0
	.align 8
pf_cr2:	.quad 0
pf_rip:	.quad 0
pf_r8:	.quad 0
idt_desc:
	.word 16 * 16 - 1
	.quad idt
	.align 16
idt:	.fill 16 * 16, 1, 0
s_ok:	.asciz "ok - "
s_not:	.asciz "not "
s_nl:	.asciz "\n"
s_2m:	.asciz "INVLPG drops every 4 KiB piece of a 2 MiB page"
s_1g:	.asciz "INVLPG drops every piece of a 1 GiB page"
s_victim: .asciz "INVLPG drops a page another page took the TLB entry of"
s_invlpg: .asciz "a hot call site calls the new code after INVLPG of its callee's page"
s_cr3:	.asciz "a hot call site calls the new code after a CR3 load"
s_iinvlpg: .asciz "a hot indirect call site calls the new code after INVLPG of its callee's page"
s_icr3:	.asciz "a hot indirect call site calls the new code after a CR3 load"
s_alias: .asciz "code mapped at two addresses runs at the address called"
s_xremap: .asciz "hot code crossing into the next page runs that page's new mapping"
s_xstore: .asciz "hot code crossing into the next page runs bytes stored there"
s_xfault: .asciz "a #PF of the next page comes at the crossing instruction, once"
s_xsmc:	.asciz "hot code crossing into the next page sees its own store there"
s_swapgs: .asciz "SWAPGS, MOV from SS, CLI and SMSW inside hot code"
