/*
 * cpu-modes: privileged behaviour of the x86 CPU, as a multiboot kernel.
 * Runs under lib/jit's unit test (tests/unit/test-jit-sys.c), vm-run and
 * QEMU alike.  Prints TAP-like "ok - what" / "not ok - what" lines on
 * COM1 and leaves through isa-debug-exit (port 0xf4) with the number of
 * failures, so the emulator exits with status (failures << 1) | 1.
 *
 * Covers: protected mode entry, exceptions with their error codes (#DE,
 * #UD, #GP on selector loads, #PF with CR2 and every error-code bit),
 * CR0.WP, a return to real mode and an interrupt through the IVT there,
 * ring 3 through IRET with a TSS stack switch, interrupt gates with DPL
 * checks, long mode entry, canonical #GP, 64-bit #PF, SYSCALL/SYSRET,
 * IRETQ to ring 3 with RSP0 switch, the interrupt stack table, and
 * single-step over SYSRET and SYSCALL, also through a hot SYSRET, and
 * after a hot POPF.
 */
	.section .multiboot, "a"
	.align 4
	.long 0x1badb002
	.long 0x00000003
	.long -(0x1badb002 + 0x00000003)

#define IDT32 0x9000
#define TSS32 0xa000
#define IDT64 0xb000
#define TSS64 0xc000
#define PD32 0x10000
#define PT32 0x11000
#define PML4 0x20000
#define PDPT 0x21000
#define PD64 0x22000
#define PT64 0x23000
#define KSTACK 0x70000
#define K0STACK 0x68000
#define ISTSTACK 0x66000
#define USTACK 0x60000
#define RM_BASE 0x7000

	.text
	.code32
	.globl _start
_start:
	mov $KSTACK, %esp
	lgdt gdt_desc
	ljmp $0x08, $1f
1:	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov %ax, %fs
	mov %ax, %gs
	mov $1, %eax
	mov $s_pm, %esi
	call report
	call setup_idt32
	lidt idt32_desc

	/* #DE */
	movl $2, skip
	movl $-1, last_vec
	xor %ecx, %ecx
	div %ecx
	cmpl $0, last_vec
	sete %al
	movzbl %al, %eax
	mov $s_de, %esi
	call report

	/* #UD */
	movl $2, skip
	movl $-1, last_vec
	ud2
	cmpl $6, last_vec
	sete %al
	movzbl %al, %eax
	mov $s_ud, %esi
	call report

	/* #GP(selector) on a load beyond the GDT limit */
	movl $2, skip
	movl $-1, last_vec
	mov $0x1230, %ax
	mov %ax, %ds
	mov $0x10, %ax
	mov %ax, %ds
	mov $13, %eax
	mov $0x1230, %ebx
	call expect
	mov $s_gpsel, %esi
	call report

	/* #GP(0) on a null SS */
	movl $2, skip
	movl $-1, last_vec
	xor %eax, %eax
	mov %ax, %ss
	mov $13, %eax
	xor %ebx, %ebx
	call expect
	mov $s_gpss, %esi
	call report

	/* #GP(sel) loading a code segment that is not readable... data: DPL 3
	 * data into SS at CPL 0 */
	movl $2, skip
	movl $-1, last_vec
	mov $0x23, %ax
	mov %ax, %ss
	mov $13, %eax
	mov $0x20, %ebx
	call expect
	mov $s_gpss3, %esi
	call report

	call paging32_tests
	call realmode_test
	call ring3_test32
	jmp long_mode

/* eax = expected vector, ebx = expected error code -> eax = 1 if both match */
expect:
	cmp last_vec, %eax
	jne 1f
	cmp last_err, %ebx
	jne 1f
	mov $1, %eax
	ret
1:	xor %eax, %eax
	ret

/* print "ok - " or "not ok - " by eax, then the string at esi */
report:
	push %esi
	test %eax, %eax
	jnz 1f
	incl failures
	mov $s_not, %esi
	call puts
1:	mov $s_ok, %esi
	call puts
	pop %esi
	call puts
	mov $s_nl, %esi
	call puts
	ret

puts:
	push %eax
	push %edx
	mov $0x3f8, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	pop %edx
	pop %eax
	ret

/* set_gate32: eax = vector, ebx = handler, ecx = type/attr byte */
set_gate32:
	push %edx
	lea IDT32(,%eax,8), %edx
	mov %bx, (%edx)
	movw $0x08, 2(%edx)
	movb $0, 4(%edx)
	mov %cl, 5(%edx)
	shr $16, %ebx
	mov %bx, 6(%edx)
	pop %edx
	ret

setup_idt32:
	mov $0, %eax
	mov $exc_noerr0, %ebx
	mov $0x8e, %ecx
	call set_gate32
	mov $6, %eax
	mov $exc_noerr6, %ebx
	call set_gate32
	mov $13, %eax
	mov $exc_err13, %ebx
	call set_gate32
	mov $14, %eax
	mov $exc_err14, %ebx
	call set_gate32
	mov $0x80, %eax
	mov $int80_32, %ebx
	mov $0xee, %ecx
	call set_gate32
	mov $0x81, %eax
	mov $int80_32, %ebx
	mov $0x8e, %ecx
	call set_gate32
	ret

exc_noerr0:
	push $0
	push $0
	jmp exc_common
exc_noerr6:
	push $0
	push $6
	jmp exc_common
exc_err13:
	push $13
	jmp exc_common
exc_err14:
	push $14
exc_common:
	push %eax
	mov 4(%esp), %eax
	mov %eax, last_vec
	mov 8(%esp), %eax
	mov %eax, last_err
	mov %cr2, %eax
	mov %eax, last_cr2
	mov 12(%esp), %eax
	mov %eax, last_cs
	mov skip, %eax
	add %eax, 12(%esp)
	pop %eax
	add $8, %esp
	iret

/* ---- 32-bit paging ---- */

paging32_tests:
	/* PD: 4 MiB identity page at 0 (user), a page table for 4-8 MiB */
	mov $PD32, %edi
	xor %eax, %eax
	mov $1024, %ecx
	rep stosl
	mov $PT32, %edi
	mov $1024, %ecx
	rep stosl
	movl $0x87, PD32
	movl $(PT32 | 7), PD32 + 4
	movl $0, PT32			/* 0x400000: not present */
	movl $0x401005, PT32 + 4	/* 0x401000: read-only, user */
	movl $0x402003, PT32 + 8	/* 0x402000: supervisor only */
	movl $0x403007, PT32 + 12	/* 0x403000: user, writable */
	mov %cr4, %eax
	or $0x10, %eax			/* PSE */
	mov %eax, %cr4
	mov $PD32, %eax
	mov %eax, %cr3
	mov %cr0, %eax
	or $0x80010000, %eax		/* PG | WP */
	mov %eax, %cr0

	movl $5, skip
	movl $-1, last_vec
	mov 0x400000, %eax
	mov $14, %eax
	xor %ebx, %ebx
	call expect
	cmpl $0x400000, last_cr2
	je 1f
	xor %eax, %eax
1:	mov $s_pf_np, %esi
	call report

	movl $5, skip
	movl $-1, last_vec
	mov %eax, 0x401000
	mov $14, %eax
	mov $3, %ebx
	call expect
	mov $s_pf_wp, %esi
	call report

	/* with CR0.WP clear the supervisor may write a read-only page */
	mov %cr0, %eax
	and $~0x10000, %eax
	mov %eax, %cr0
	movl $-1, last_vec
	movl $0x1234, 0x401000
	cmpl $-1, last_vec
	jne 1f
	cmpl $0x1234, 0x401000
	jne 1f
	mov $1, %eax
	jmp 2f
1:	xor %eax, %eax
2:	mov $s_wp0, %esi
	call report
	mov %cr0, %eax
	or $0x10000, %eax
	mov %eax, %cr0

	/* the dirty and accessed bits got set in the PTE */
	mov PT32 + 4, %eax
	and $0x60, %eax
	cmp $0x60, %eax
	sete %al
	movzbl %al, %eax
	mov $s_ad, %esi
	call report
	ret

/* ---- back to real mode and an interrupt through the IVT ---- */

realmode_test:
	/* copy the 16-bit code below 1 MiB */
	mov $rm_start, %esi
	mov $RM_BASE, %edi
	mov $(rm_end - rm_start), %ecx
	rep movsb
	movl $0, RM_BASE + (rm_flag - rm_start)
	mov %esp, saved_esp
	/* IVT entry 0x40 -> RM_BASE/16 : rm_int40 */
	movw $(rm_int40 - rm_start), 0x100
	movw $(RM_BASE >> 4), 0x102
	/* paging off before leaving protected mode */
	mov %cr0, %eax
	and $0x7fffffff, %eax
	mov %eax, %cr0
	ljmp $0x68, $RM_BASE		/* 16-bit code segment, base 0 */
back_from_rm:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov saved_esp, %esp
	lidt idt32_desc
	cmpl $0x5a, RM_BASE + (rm_flag - rm_start)
	sete %al
	movzbl %al, %eax
	mov $s_rm, %esi
	call report
	ret

	.code16
rm_start:
	mov $0x70, %ax			/* 16-bit data segment */
	mov %ax, %ds
	mov %ax, %ss
	mov %cr0, %eax
	and $~1, %eax
	mov %eax, %cr0
	ljmp $(RM_BASE >> 4), $(rm_real - rm_start)
rm_real:
	mov %cs, %ax
	mov %ax, %ds
	mov %ax, %ss
	mov $0x0ff0, %sp
	xor %ax, %ax
	mov %ax, %es
	lidt %cs:(rm_ivt - rm_start)
	int $0x40
	lgdt %cs:(rm_gdt - rm_start)
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x08, $back_from_rm
rm_int40:
	movw $0x5a, %cs:(rm_flag - rm_start)
	iret
rm_ivt:
	.word 0x3ff
	.long 0
rm_gdt:
	.word gdt_end - gdt - 1
	.long gdt
rm_flag:
	.long 0
rm_end:
	.code32

/* ---- ring 3 in protected mode ---- */

ring3_test32:
	mov %cr0, %eax
	or $0x80000000, %eax
	mov %eax, %cr0
	movl $K0STACK, TSS32 + 4
	movl $0x10, TSS32 + 8
	movw $104, TSS32 + 102		/* no I/O bitmap */
	mov $0x28, %ax
	ltr %ax
	mov %esp, saved_esp
	push $0x23
	push $USTACK
	pushf
	push $0x1b
	push $user32
	iret

user32:
	mov $0x23, %ax
	mov %ax, %ds
	mov %ax, %es
	xor %eax, %eax
	int $0x80			/* DPL 3 gate: allowed, switches to ESP0 */
	movl $2, skip
	movl $-1, last_vec
	int $0x81			/* DPL 0 gate: #GP(0x81 * 8 + 2) */
	mov last_vec, %ecx
	mov last_err, %edx
	mov %ecx, u_vec
	mov %edx, u_err
	movl $5, skip
	movl $-1, last_vec
	mov 0x402000, %eax		/* supervisor page: #PF, error code 5 */
	mov last_vec, %ecx
	mov last_err, %edx
	mov %ecx, u_vec2
	mov %edx, u_err2
	mov $1, %eax
	int $0x80			/* back to the kernel */

int80_32:
	cmp $1, %eax
	je back_to_kernel32
	movl 4(%esp), %eax		/* interrupted CS */
	and $3, %eax
	cmp $3, %eax
	jne 1f
	cmp $K0STACK, %esp
	ja 1f
	cmp $(K0STACK - 0x100), %esp
	jb 1f
	movl $1, int80_ok
1:	iret

back_to_kernel32:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov saved_esp, %esp
	mov int80_ok, %eax
	mov $s_ring3, %esi
	call report
	cmpl $13, u_vec
	jne 1f
	cmpl $0x40a, u_err
	jne 1f
	mov $1, %eax
	jmp 2f
1:	xor %eax, %eax
2:	mov $s_gate_dpl, %esi
	call report
	cmpl $14, u_vec2
	jne 1f
	cmpl $5, u_err2
	jne 1f
	mov $1, %eax
	jmp 2f
1:	xor %eax, %eax
2:	mov $s_pf_user, %esi
	call report
	ret

/* ---- long mode ---- */

long_mode:
	mov %cr0, %eax
	and $0x7fffffff, %eax
	mov %eax, %cr0
	/* tables: 2 MiB identity pages for 0-4 MiB (user), a PT for 4-6 MiB */
	mov $PML4, %edi
	xor %eax, %eax
	mov $(4 * 1024), %ecx
	rep stosl
	movl $(PDPT | 7), PML4
	movl $(PD64 | 7), PDPT
	movl $0x87, PD64
	movl $0x200087, PD64 + 8
	movl $(PT64 | 7), PD64 + 16
	movl $0, PT64
	movl $0x401005, PT64 + 8
	movl $0x402003, PT64 + 16
	movl $0x403007, PT64 + 24
	mov %cr4, %eax
	or $0x20, %eax			/* PAE */
	mov %eax, %cr4
	mov $PML4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx
	rdmsr
	or $0x101, %eax			/* LME | SCE */
	wrmsr
	mov %cr0, %eax
	or $0x80000000, %eax
	mov %eax, %cr0
	ljmp $0x30, $lm64

	.code64
lm64:
	mov $0x38, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $KSTACK, %rsp
	mov $0xc0000080, %ecx
	rdmsr
	test $0x400, %eax		/* LMA */
	setnz %al
	movzbl %al, %eax
	mov $s_lm, %esi
	call report64
	call setup_idt64
	lidt idt64_desc
	movq $K0STACK, TSS64 + 4
	movq $ISTSTACK, TSS64 + 36
	mov $0x58, %ax
	ltr %ax

	/* #GP(0) on a non-canonical address */
	movq $3, skip
	movq $-1, last_vec
	mov $0x8000000000000000, %rcx
	mov (%rcx), %rax
	mov $13, %eax
	xor %ebx, %ebx
	call expect64
	mov $s_canon, %esi
	call report64

	/* #PF: not present, read */
	movq $8, skip
	movq $-1, last_vec
	mov 0x400000, %rax
	mov $14, %eax
	xor %ebx, %ebx
	call expect64
	cmpq $0x400000, last_cr2
	je 1f
	xor %eax, %eax
1:	mov $s_pf64, %esi
	call report64

	/* #PF: write to read-only */
	movq $8, skip
	movq $-1, last_vec
	mov %rax, 0x401000
	mov $14, %eax
	mov $3, %ebx
	call expect64
	mov $s_pf64w, %esi
	call report64

	/* IST: vector 0x82 runs on IST1 */
	movq $0, ist_ok
	int $0x82
	mov ist_ok, %eax
	mov $s_ist, %esi
	call report64

	/* SYSRET to ring 3, SYSCALL back */
	mov $0xc0000081, %ecx		/* STAR */
	xor %eax, %eax
	mov $0x00400030, %edx		/* SYSRET base 0x40, SYSCALL CS 0x30 */
	wrmsr
	mov $0xc0000082, %ecx		/* LSTAR */
	mov $syscall_entry, %eax
	xor %edx, %edx
	wrmsr
	mov $0xc0000084, %ecx		/* SFMASK: clear IF, TF */
	mov $0x300, %eax
	wrmsr
	mov %rsp, saved_esp
	mov $user64, %rcx
	mov $0x202, %r11
	sysretq

user64:
	mov %cs, %ax
	movzwl %ax, %eax
	mov %rax, u_cs
	mov $USTACK, %rsp
	syscall
user64_ret:

syscall_entry:
	mov saved_esp, %rsp
	mov %cs, %ax
	cmp $0x30, %ax
	jne 1f
	cmpq $0x53, u_cs
	jne 1f
	mov $user64_ret, %rax
	cmp %rax, %rcx
	jne 1f
	test $0x200, %r11		/* user IF was set */
	jz 1f
	mov $1, %eax
	jmp 2f
1:	xor %eax, %eax
2:	mov $s_syscall, %esi
	call report64

	/* IRETQ to ring 3, INT 0x80 back on RSP0 */
	mov %rsp, saved_esp
	push $0x4b
	push $USTACK
	pushfq
	push $0x53
	push $user64b
	iretq
user64b:
	int $0x80

db64:
	push %rax
	incq db64_count
	mov 8(%rsp), %rax
	mov %rax, db64_rip
	pop %rax
	iretq

/* eax = 1 when exactly one #DB came, at rax */
one_db64_at:
	cmpq $1, db64_count
	jne 1f
	cmp %rax, db64_rip
	jne 1f
	mov $1, %eax
	ret
1:	xor %eax, %eax
	ret

db64_clear:
	push %rax
	incq db64_count
	mov 8(%rsp), %rax
	mov %rax, db64_rip
	andq $~0x100, 24(%rsp)		/* no more steps */
	pop %rax
	iretq

int80_64:
	mov 8(%rsp), %rax		/* CS */
	cmp $0x53, %rax
	jne 1f
	cmp $K0STACK, %rsp
	ja 1f
	cmp $(K0STACK - 0x100), %rsp
	jb 1f
	mov 32(%rsp), %rax		/* SS */
	cmp $0x4b, %rax
	jne 1f
	mov %ss, %ax			/* a null SS at the new CPL */
	test $0xfffc, %ax
	jnz 1f
	mov $1, %eax
	jmp 2f
1:	xor %eax, %eax
2:	mov saved_esp, %rsp
	mov $s_iretq, %esi
	call report64

	/* single-step over SYSRET and SYSCALL: the flags they leave decide
	 * (SFMASK clears TF, so no #DB on the kernel's first instruction) */
	mov $1, %eax
	mov $db64, %rbx
	mov $0x8e, %ecx
	xor %edx, %edx
	call set_gate64
	movq $0, db64_count
	mov $0xc0000082, %ecx		/* LSTAR */
	mov $tf_entry, %eax
	xor %edx, %edx
	wrmsr
	mov %rsp, saved_esp
	mov $user_tf, %rcx
	mov $0x302, %r11		/* IF and TF for ring 3 */
	sysretq
user_tf:
	syscall
tf_entry:
	mov saved_esp, %rsp
	cmpq $1, db64_count
	jne 1f
	mov $user_tf, %rax
	cmp %rax, db64_rip
	jne 1f
	test $0x100, %r11		/* SYSCALL saw TF set */
	jz 1f
	mov $1, %eax
	jmp 2f
1:	xor %eax, %eax
2:	mov $s_tf_syscall, %esi
	call report64

	/* the same through a hot SYSRET (an emulator may translate the loop
	 * and go from SYSRET straight into the code it returns to): 300
	 * rounds without TF, then one with TF, one #DB at user_hot */
	movq $0, db64_count
	mov $0xc0000082, %ecx		/* LSTAR */
	mov $hot_entry, %eax
	xor %edx, %edx
	wrmsr
	mov %rsp, saved_esp
	mov $300, %r12d
hot_k:
	mov $user_hot, %rcx
	mov $0x202, %r11
	dec %r12d
	jnz 1f
	mov $0x302, %r11		/* the last round: TF for ring 3 */
1:	sysretq
user_hot:
	syscall
hot_entry:
	mov saved_esp, %rsp
	test %r12d, %r12d
	jnz hot_k
	mov $user_hot, %rax
	call one_db64_at
	mov $s_tf_hot, %esi
	call report64

	/* a hot POPF (an emulator may go on from it straight into the next
	 * block): 300 rounds, the last one setting TF; one #DB, after the
	 * instruction that follows it (db64_clear clears TF) */
	mov $1, %eax
	mov $db64_clear, %rbx
	mov $0x8e, %ecx
	xor %edx, %edx
	call set_gate64
	movq $0, db64_count
	mov $300, %r12d
hot_p:
	pushfq
	dec %r12d
	jnz 1f
	orq $0x100, (%rsp)
	jmp 1f				/* to the same POPF as the other rounds */
1:	popfq
	nop
popf_trap:
	test %r12d, %r12d
	jnz hot_p
	mov $popf_trap, %rax
	call one_db64_at
	mov $s_tf_popf, %esi
	call report64

	/* done: report failures through isa-debug-exit */
	mov failures, %eax
	mov $0xf4, %dx
	out %eax, %dx
	hlt
	jmp .

int82_64:
	cmp $ISTSTACK, %rsp
	ja 1f
	cmp $(ISTSTACK - 0x100), %rsp
	jb 1f
	movq $1, ist_ok
1:	iretq

expect64:
	cmp last_vec, %rax
	jne 1f
	cmp last_err, %rbx
	jne 1f
	mov $1, %eax
	ret
1:	xor %eax, %eax
	ret

report64:
	push %rsi
	test %eax, %eax
	jnz 1f
	incl failures
	mov $s_not, %esi
	call puts64
1:	mov $s_ok, %esi
	call puts64
	pop %rsi
	call puts64
	mov $s_nl, %esi
	call puts64
	ret

puts64:
	push %rax
	push %rdx
	mov $0x3f8, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	pop %rdx
	pop %rax
	ret

/* rax = vector, rbx = handler, rcx = attr, rdx = ist */
set_gate64:
	push %rdi
	mov %rax, %rdi
	shl $4, %rdi
	add $IDT64, %rdi
	mov %bx, (%rdi)
	movw $0x30, 2(%rdi)
	mov %dl, 4(%rdi)
	mov %cl, 5(%rdi)
	shr $16, %rbx
	mov %bx, 6(%rdi)
	shr $16, %rbx
	mov %ebx, 8(%rdi)
	movl $0, 12(%rdi)
	pop %rdi
	ret

setup_idt64:
	xor %edx, %edx
	mov $0x8e, %ecx
	mov $13, %eax
	mov $exc64_13, %rbx
	call set_gate64
	mov $14, %eax
	mov $exc64_14, %rbx
	call set_gate64
	mov $0x80, %eax
	mov $int80_64, %rbx
	mov $0xee, %ecx
	call set_gate64
	mov $0x82, %eax
	mov $int82_64, %rbx
	mov $0x8e, %ecx
	mov $1, %edx
	call set_gate64
	ret

exc64_13:
	push $13
	jmp exc64_common
exc64_14:
	push $14
exc64_common:
	push %rax
	mov 8(%rsp), %rax
	mov %rax, last_vec
	mov 16(%rsp), %rax
	mov %rax, last_err
	mov %cr2, %rax
	mov %rax, last_cr2
	mov skip, %rax
	add %rax, 24(%rsp)
	pop %rax
	add $16, %rsp
	iretq

	.data
	.align 8
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08 code32 */
	.quad 0x00cf92000000ffff	/* 0x10 data */
	.quad 0x00cffa000000ffff	/* 0x18 code32 DPL3 */
	.quad 0x00cff2000000ffff	/* 0x20 data DPL3 */
	.quad 0x00008900a0000067	/* 0x28 TSS32 at 0xa000 */
	.quad 0x00af9a000000ffff	/* 0x30 code64 */
	.quad 0x00cf92000000ffff	/* 0x38 data */
	.quad 0x00cffa000000ffff	/* 0x40 code32 DPL3 (SYSRET base) */
	.quad 0x00cff2000000ffff	/* 0x48 data DPL3 */
	.quad 0x00affa000000ffff	/* 0x50 code64 DPL3 */
	.quad 0x00008900c0000067	/* 0x58 TSS64 at 0xc000 */
	.quad 0
	.quad 0x00009a000000ffff	/* 0x68 code16, base 0 */
	.quad 0x000092007000ffff	/* 0x70 data16, base 0x7000 */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
idt32_desc:
	.word 0x7ff
	.long IDT32
	.align 8
idt64_desc:
	.word 0xfff
	.quad IDT64
	.align 8
last_vec: .quad 0
last_err: .quad 0
last_cr2: .quad 0
last_cs: .quad 0
skip: .quad 0
saved_esp: .quad 0
failures: .quad 0
int80_ok: .quad 0
ist_ok: .quad 0
db64_count: .quad 0
db64_rip: .quad 0
u_vec: .quad 0
u_err: .quad 0
u_vec2: .quad 0
u_err2: .quad 0
u_cs: .quad 0

s_ok: .asciz "ok - "
s_not: .asciz "not "
s_nl: .asciz "\n"
s_pm: .asciz "protected mode"
s_de: .asciz "#DE on divide by zero"
s_ud: .asciz "#UD on UD2"
s_gpsel: .asciz "#GP(selector) beyond the GDT limit"
s_gpss: .asciz "#GP(0) for a null SS"
s_gpss3: .asciz "#GP(selector) for a DPL 3 SS at CPL 0"
s_pf_np: .asciz "#PF not present, error 0, CR2"
s_pf_wp: .asciz "#PF write to read-only with CR0.WP, error 3"
s_wp0: .asciz "supervisor writes read-only pages with CR0.WP clear"
s_ad: .asciz "accessed and dirty bits set"
s_rm: .asciz "back to real mode, interrupt through the IVT, and back"
s_ring3: .asciz "ring 3 through IRET, INT 0x80 switches to the TSS ESP0"
s_gate_dpl: .asciz "INT through a DPL 0 gate from ring 3: #GP(0x40a)"
s_pf_user: .asciz "user read of a supervisor page: #PF error 5"
s_lm: .asciz "long mode active"
s_canon: .asciz "#GP(0) on a non-canonical address"
s_pf64: .asciz "64-bit #PF not present with CR2"
s_pf64w: .asciz "64-bit #PF write to read-only, error 3"
s_ist: .asciz "interrupt stack table"
s_syscall: .asciz "SYSRET to ring 3 and SYSCALL back"
s_tf_popf: .asciz "TF: one #DB after the instruction after a hot POPF's 300th round, the one setting it"
s_tf_hot: .asciz "TF: one #DB after a hot SYSRET's 301st round, the one setting it"
s_tf_syscall: .asciz "TF: #DB after SYSRET setting it, none after SYSCALL masking it"
s_iretq: .asciz "IRETQ to ring 3, INT 0x80 back on RSP0 with a null SS"
