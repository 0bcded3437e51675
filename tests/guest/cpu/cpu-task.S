/*
 * cpu-task: hardware task switching (Intel SDM vol. 3, chapter 8), as a
 * multiboot kernel in flat 32-bit protected mode.  Runs under lib/jit's
 * unit test (tests/unit/test-jit-sys.c), vm-run and QEMU alike; prints
 * "ok - what" / "not ok - what" on COM1 and leaves through isa-debug-exit
 * (port 0xf4) with the number of failures.
 *
 * Covers: JMP far to a TSS (registers from the new TSS, the old task's
 * state saved in its TSS, busy bits moved, CR0.TS set, TR loaded), JMP
 * back resuming the first task where it left, CALL far through a task
 * gate in the GDT (NT set, back link written, the caller stays busy) and
 * IRET back through the link, a busy TSS refused with #GP, the T bit's
 * debug trap, and a double
 * fault (a #GP whose IDT gate is not present) delivered through a task
 * gate in the IDT onto the fault task's own stack with error code 0.
 * (QEMU 7.2's TCG does not model the T bit and fails that check.)
 */
	.section .multiboot, "a"
	.align 4
	.long 0x1badb002
	.long 0x00000003
	.long -(0x1badb002 + 0x00000003)

#define IDT 0x9000
#define KSTACK 0x70000
#define BSTACK 0x6c000
#define DFSTACK 0x68000
#define SEL_A 0x18
#define SEL_B 0x20
#define SEL_DF 0x28
#define SEL_GATE 0x30

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
	call setup_idt
	lidt idt_desc
	mov $SEL_A, %eax
	mov $tss_a, %ebx
	call set_tss
	mov $SEL_B, %eax
	mov $tss_b, %ebx
	call set_tss
	mov $SEL_DF, %eax
	mov $tss_df, %ebx
	call set_tss
	mov $SEL_A, %ax
	ltr %ax

	call t_jmp
	call t_call_gate
	call t_busy
	call t_trap_bit
	jmp t_double_fault		/* ends in the fault task */

finish:
	mov failures, %eax
	mov $0xf4, %dx
	out %eax, %dx
	hlt
	jmp .

/* set_tss: GDT entry eax = an available 32-bit TSS at ebx, limit 0x67 */
set_tss:
	movw $0x67, gdt(%eax)
	mov %bx, gdt + 2(%eax)
	shr $16, %ebx
	mov %bl, gdt + 4(%eax)
	movb $0x89, gdt + 5(%eax)
	movb $0, gdt + 6(%eax)
	mov %bh, gdt + 7(%eax)
	ret

/* a fresh task B: EIP = eax, EAX = 0x1111 */
init_b:
	mov %eax, tss_b + 0x20
	movl $0x2, tss_b + 0x24
	movl $0x1111, tss_b + 0x28
	movl $BSTACK, tss_b + 0x38
	movl $0x10, tss_b + 0x48
	movl $0x08, tss_b + 0x4c
	movl $0x10, tss_b + 0x50
	movl $0x10, tss_b + 0x54
	movl $0x10, tss_b + 0x58
	movl $0x10, tss_b + 0x5c
	ret

/* descriptor type nibble of GDT entry sel -> eax */
desc_type:
	mov gdt + 5(%eax), %al
	and $0xf, %eax
	ret

/* ---- JMP to a TSS and back ---- */

t_jmp:
	mov $task_b_jmp, %eax
	call init_b
	clts
	mov $0xabcd, %ebx
	mov $0x5555, %eax
jmp_out:
	ljmp $SEL_B, $0
	/* task B jumped back: we resume here with our registers */
	cmp $0xabcd, %ebx
	jne 9f
	cmp $0x5555, %eax
	jne 9f
	cmpl $1, b_ok
	jne 9f
	str %ax
	cmp $SEL_A, %ax
	jne 9f
	mov $SEL_B, %eax
	call desc_type
	cmp $9, %eax
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_jmp, %esi
	jmp report

task_b_jmp:
	movl $0, b_ok
	cmp $0x1111, %eax
	jne 1f
	cmp $BSTACK, %esp
	jne 1f
	str %ax
	cmp $SEL_B, %ax
	jne 1f
	mov $SEL_A, %eax
	call desc_type
	cmp $9, %eax			/* JMP: the old task is no longer busy */
	jne 1f
	mov $SEL_B, %eax
	call desc_type
	cmp $0xb, %eax
	jne 1f
	cmpl $(jmp_out + 7), tss_a + 0x20	/* the return point saved */
	jne 1f
	cmpl $0xabcd, tss_a + 0x34	/* EBX saved */
	jne 1f
	mov %cr0, %eax
	test $8, %eax			/* CR0.TS */
	jz 1f
	pushf
	pop %eax
	test $0x4000, %eax		/* no NT after a JMP */
	jnz 1f
	movl $1, b_ok
1:	ljmp $SEL_A, $0
	jmp .

/* ---- CALL through a task gate, IRET back ---- */

t_call_gate:
	mov $task_b_call, %eax
	call init_b
	movl $0, b_ok
	lcall $SEL_GATE, $0
	pushf
	pop %eax
	test $0x4000, %eax
	jnz 9f
	cmpl $1, b_ok
	jne 9f
	mov $SEL_B, %eax
	call desc_type
	cmp $9, %eax			/* IRET freed task B */
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_call, %esi
	jmp report

task_b_call:
	pushf
	pop %eax
	test $0x4000, %eax		/* NT */
	jz 1f
	cmpw $SEL_A, tss_b		/* back link */
	jne 1f
	mov $SEL_A, %eax
	call desc_type
	cmp $0xb, %eax			/* CALL: the caller stays busy */
	jne 1f
	movl $1, b_ok
1:	iret
	jmp .

/* ---- a busy TSS is refused ---- */

t_busy:
	movl $-1, last_vec
	movl $7, gp_skip
	ljmp $SEL_A, $0			/* 7 bytes: ea imm32 imm16 */
	cmpl $13, last_vec
	jne 9f
	cmpl $SEL_A, last_err
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_busy, %esi
	jmp report

/* ---- a TSS with T set: #DB (DR6.BT) before the task's first instruction ---- */

t_trap_bit:
	mov $task_b_trap, %eax
	call init_b
	movl $1, tss_b + 0x64		/* T */
	movl $0, db_count
	xor %eax, %eax
	mov %eax, %dr6
	ljmp $SEL_B, $0
	movl $0, tss_b + 0x64
	cmpl $1, db_count
	jne 9f
	cmpl $task_b_trap, db_eip
	jne 9f
	testl $0x8000, db_dr6		/* BT */
	jz 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_trap, %esi
	jmp report

task_b_trap:
	ljmp $SEL_A, $0
	jmp .

db_handler:
	push %eax
	incl db_count
	mov 4(%esp), %eax
	mov %eax, db_eip
	mov %dr6, %eax
	mov %eax, db_dr6
	xor %eax, %eax
	mov %eax, %dr6
	pop %eax
	iret

/* ---- a double fault through a task gate ---- */

t_double_fault:
	movl $0, IDT + 13 * 8 + 4	/* #GP gate: not present */
	movl $df_task, tss_df + 0x20
	movl $0x2, tss_df + 0x24
	movl $DFSTACK, tss_df + 0x38
	movl $0x10, tss_df + 0x48
	movl $0x08, tss_df + 0x4c
	movl $0x10, tss_df + 0x50
	movl $0x10, tss_df + 0x54
	movl $0x10, tss_df + 0x58
	movl $0x10, tss_df + 0x5c
	mov $0x1230, %ax
df_at:	mov %ax, %ds			/* #GP beyond the GDT, whose gate is absent: #NP -> #DF */
	jmp .

df_task:
	cmp $(DFSTACK - 4), %esp
	jne 9f
	cmpl $0, (%esp)			/* #DF's error code */
	jne 9f
	cmpw $SEL_A, tss_df		/* back link */
	jne 9f
	cmpl $df_at, tss_a + 0x20	/* the faulting instruction */
	jne 9f
	str %ax
	cmp $SEL_DF, %ax
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_df, %esi
	call report
	jmp finish

/* ---- #GP for t_busy ---- */

gp_handler:
	push %eax
	movl $13, last_vec
	mov 4(%esp), %eax
	mov %eax, last_err
	mov gp_skip, %eax
	add %eax, 8(%esp)
	pop %eax
	add $4, %esp
	iret

/* ---- output ---- */

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

setup_idt:
	mov $gp_handler, %eax
	mov %ax, IDT + 13 * 8
	movw $0x08, IDT + 13 * 8 + 2
	movw $0x8e00, IDT + 13 * 8 + 4
	shr $16, %eax
	mov %ax, IDT + 13 * 8 + 6
	mov $db_handler, %eax
	mov %ax, IDT + 1 * 8
	movw $0x08, IDT + 1 * 8 + 2
	movw $0x8e00, IDT + 1 * 8 + 4
	shr $16, %eax
	mov %ax, IDT + 1 * 8 + 6
	/* #DF: a task gate to the fault task */
	movl $(SEL_DF << 16), IDT + 8 * 8
	movl $0x8500, IDT + 8 * 8 + 4
	ret

	.data
	.align 8
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08 code32 */
	.quad 0x00cf92000000ffff	/* 0x10 data */
	.quad 0				/* 0x18 TSS A (set_tss fills the TSS descriptors) */
	.quad 0				/* 0x20 TSS B */
	.quad 0				/* 0x28 the double-fault TSS */
	.word 0, SEL_B, 0x8500, 0	/* 0x30 task gate to TSS B */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
idt_desc:
	.word 0x7ff
	.long IDT

failures: .long 0
b_ok: .long 0
last_vec: .long 0
last_err: .long 0
gp_skip: .long 0
db_count: .long 0
db_eip: .long 0
db_dr6: .long 0

s_ok: .asciz "ok - "
s_not: .asciz "not "
s_nl: .asciz "\n"
s_jmp: .asciz "JMP to a TSS loads the new task, saves the old one, moves busy; JMP back resumes"
s_call: .asciz "CALL through a task gate sets NT and the back link; IRET returns and frees it"
s_busy: .asciz "JMP to a busy TSS raises #GP(selector)"
s_trap: .asciz "a TSS with T set raises #DB with DR6.BT before the task's first instruction"
s_df: .asciz "a double fault through an IDT task gate runs the fault task with error code 0"

	.align 128
tss_a:	.fill 128, 1, 0
tss_b:	.fill 128, 1, 0
tss_df:	.fill 128, 1, 0
