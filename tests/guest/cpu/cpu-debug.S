/*
 * cpu-debug: the debug facilities of the x86 CPU (Intel SDM vol. 3,
 * chapter 17: DR0-DR7, the #DB conditions, RFLAGS.TF and RF), as a
 * multiboot kernel in flat 32-bit protected mode.  Runs under lib/jit's
 * unit test (tests/unit/test-jit-sys.c), vm-run and QEMU alike; prints
 * "ok - what" / "not ok - what" on COM1 and leaves through isa-debug-exit
 * (port 0xf4) with the number of failures.
 *
 * Covers: single-step after POPF sets TF (the trap comes one instruction
 * later) and clears it, the trap held over MOV SS and POP SS, REP MOVSB
 * one iteration per trap, IRET setting
 * and clearing TF, no single-step trap after INT n/INT3, an instruction
 * breakpoint (a fault, RF clear in the image), RF = 1 pushed by other
 * faults, data write and read/write breakpoints of each length, a data
 * breakpoint inside REP MOVSB (trap after that iteration, RF = 1), a data
 * breakpoint and single-step in one #DB, INT1 (ICEBP) leaving DR6 alone,
 * I/O breakpoints, the general-detect fault, and DR4/DR5 aliasing DR6/DR7.
 *
 * QEMU 7.2's TCG is no reference here: it fails seven of these checks (RF
 * pushed by faults and between REP iterations, one #DB for a data
 * breakpoint and single-step together, ICEBP's DR6, DR7.GD, I/O); the SDM
 * sections above decide, and the checks follow them.
 *
 * The #DB handler logs DR6, the pushed EIP, EFLAGS and ECX of each debug
 * exception (up to 8), clears DR6, and can set RF in the image, clear TF
 * after a given number of traps, or skip the faulting instruction.
 */
	.section .multiboot, "a"
	.align 4
	.long 0x1badb002
	.long 0x00000003
	.long -(0x1badb002 + 0x00000003)

#define IDT 0x9000
#define KSTACK 0x70000
#define TF 0x100
#define RF 0x10000
#define DR6_CLEAN 0xffff0ff0

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
	xor %eax, %eax
	mov %eax, %dr7
	mov %eax, %dr6

	call t_step_popf
	call t_step_popf_clear
	call t_step_mov_ss
	call t_step_pop_ss
	call t_step_iret_sets
	call t_step_iret_clears
	call t_step_int
	call t_step_int3
	call t_step_rep
	call t_insn_bp
	call t_fault_rf
	call t_data_write
	call t_data_rw
	call t_data_rep
	call t_data_and_step
	call t_icebp
	call t_io_bp
	call t_gd
	call t_dr_alias

	mov failures, %eax
	mov $0xf4, %dx
	out %eax, %dx
	hlt
	jmp .

/* ---- the #DB log ---- */

/* reset the log; eax = number of traps after which TF is cleared (0: never) */
db_reset:
	movl $0, db_count
	mov %eax, db_clear_tf
	movl $0, db_set_rf
	movl $0, db_skip
	push %eax
	xor %eax, %eax
	mov %eax, %dr6
	pop %eax
	ret

db_handler:
	push %eax
	push %ebx
	mov db_count, %ebx
	cmp $8, %ebx
	jae 1f
	mov %dr6, %eax
	mov %eax, db_dr6(,%ebx,4)
	mov 8(%esp), %eax
	mov %eax, db_eip(,%ebx,4)
	mov 16(%esp), %eax
	mov %eax, db_efl(,%ebx,4)
	mov %ecx, db_ecx(,%ebx,4)
1:	incl db_count
	xor %eax, %eax
	mov %eax, %dr6
	cmpl $0, db_set_rf
	je 2f
	orl $RF, 16(%esp)
2:	mov db_skip, %eax
	add %eax, 8(%esp)
	movl $0, db_skip
	cmpl $0, db_clear_tf
	je 3f
	decl db_clear_tf
	jnz 3f
	andl $~TF, 16(%esp)
3:	pop %ebx
	pop %eax
	iret

/* #UD and #BP/INT 0x40 handlers */
ud_handler:
	push %eax
	mov 12(%esp), %eax
	mov %eax, ud_efl
	mov ud_skip, %eax
	add %eax, 4(%esp)
	movl $2, ud_skip
	pop %eax
	iret

soft_handler:
	incl soft_count
	iret

/* ---- single-step ---- */

t_step_popf:
	mov $3, %eax
	call db_reset
	pushf
	orl $TF, (%esp)
	popf
sp_a:	nop
sp_b:	nop
sp_c:	nop
sp_d:	nop
	cmpl $3, db_count
	jne 9f
	cmpl $sp_b, db_eip
	jne 9f
	cmpl $sp_c, db_eip + 4
	jne 9f
	cmpl $sp_d, db_eip + 8
	jne 9f
	cmpl $(DR6_CLEAN | 0x4000), db_dr6
	jne 9f
	testl $TF, db_efl
	jz 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_step_popf, %esi
	jmp report

t_step_popf_clear:
	xor %eax, %eax
	call db_reset
	pushf
	pushf
	orl $TF, (%esp)
	popf
spc_a:	popf
spc_b:	nop
	nop
	cmpl $1, db_count
	jne 9f
	cmpl $spc_b, db_eip
	jne 9f
	testl $TF, db_efl
	jnz 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_step_popf_clear, %esi
	jmp report

t_step_mov_ss:
	mov $3, %eax
	call db_reset
	mov %ss, %ax
	pushf
	orl $TF, (%esp)
	popf
	nop
sm_a:	mov %ax, %ss
sm_b:	nop
sm_c:	nop
sm_d:	nop
	cmpl $3, db_count
	jne 9f
	cmpl $sm_a, db_eip
	jne 9f
	cmpl $sm_c, db_eip + 4
	jne 9f
	cmpl $sm_d, db_eip + 8
	jne 9f
	cmpl $(DR6_CLEAN | 0x4000), db_dr6 + 4
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_step_mov_ss, %esi
	jmp report

t_step_pop_ss:
	mov $2, %eax
	call db_reset
	push %ss
	pushf
	orl $TF, (%esp)
	popf
sq_a:	pop %ss
sq_b:	nop
sq_c:	nop
	nop
	cmpl $2, db_count
	jne 9f
	cmpl $sq_c, db_eip
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_step_pop_ss, %esi
	jmp report

t_step_iret_sets:
	mov $1, %eax
	call db_reset
	pushf
	orl $TF, (%esp)
	push %cs
	push $si_a
	iret
si_a:	nop
si_b:	nop
	cmpl $1, db_count
	jne 9f
	cmpl $si_b, db_eip
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_step_iret_sets, %esi
	jmp report

t_step_iret_clears:
	xor %eax, %eax
	call db_reset
	pushf
	andl $~TF, (%esp)
	push %cs
	push $sr_a
	pushf
	orl $TF, (%esp)
	popf
	iret
sr_a:	nop
	nop
	cmpl $1, db_count
	jne 9f
	cmpl $sr_a, db_eip
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_step_iret_clears, %esi
	jmp report

t_step_int:
	mov $1, %eax
	call db_reset
	movl $0, soft_count
	pushf
	orl $TF, (%esp)
	popf
	int $0x40
sn_a:	nop
sn_b:	nop
	cmpl $1, soft_count
	jne 9f
	cmpl $1, db_count
	jne 9f
	cmpl $sn_b, db_eip
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_step_int, %esi
	jmp report

t_step_int3:
	mov $1, %eax
	call db_reset
	movl $0, soft_count
	pushf
	orl $TF, (%esp)
	popf
	int3
s3_a:	nop
s3_b:	nop
	cmpl $1, soft_count
	jne 9f
	cmpl $1, db_count
	jne 9f
	cmpl $s3_b, db_eip
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_step_int3, %esi
	jmp report

t_step_rep:
	mov $3, %eax
	call db_reset
	mov $rep_src, %esi
	mov $rep_buf, %edi
	mov $3, %ecx
	cld
	pushf
	orl $TF, (%esp)
	popf
srep:	rep movsb
srep_a:	nop
	cmpl $3, db_count
	jne 9f
	cmpl $srep, db_eip
	jne 9f
	cmpl $2, db_ecx
	jne 9f
	testl $RF, db_efl
	jz 9f
	cmpl $srep, db_eip + 4
	jne 9f
	cmpl $srep_a, db_eip + 8
	jne 9f
	cmpl $0, db_ecx + 8
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_step_rep, %esi
	jmp report

/* ---- breakpoints ---- */

bp_target:
	nop
	ret

t_insn_bp:
	xor %eax, %eax
	call db_reset
	movl $1, db_set_rf
	mov $bp_target, %eax
	mov %eax, %dr0
	mov $0x401, %eax		/* L0, RW0 = 00 (execute), LEN0 = 00 */
	mov %eax, %dr7
	call bp_target
	call bp_target			/* hits again: RF only covers one instruction */
	xor %eax, %eax
	mov %eax, %dr7
	cmpl $2, db_count
	jne 9f
	cmpl $bp_target, db_eip
	jne 9f
	cmpl $(DR6_CLEAN | 1), db_dr6
	jne 9f
	testl $RF, db_efl
	jnz 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_insn_bp, %esi
	jmp report

t_fault_rf:
	movl $0, ud_efl
	ud2
	mov ud_efl, %eax
	shr $16, %eax
	and $1, %eax
	mov $s_fault_rf, %esi
	jmp report

t_data_write:
	xor %eax, %eax
	call db_reset
	mov $watch, %eax
	mov %eax, %dr1
	mov $0x00d00404, %eax		/* L1, RW1 = 01 (write), LEN1 = 11 (4 bytes) */
	mov %eax, %dr7
	movl $5, watch + 4		/* beside it: no trap */
	mov watch, %eax			/* a read: no trap */
	movl $1, watch
dw_a:	nop
	movw $2, watch + 3		/* overlaps its last byte */
dw_b:	nop
	xor %eax, %eax
	mov %eax, %dr7
	cmpl $2, db_count
	jne 9f
	cmpl $dw_a, db_eip
	jne 9f
	cmpl $dw_b, db_eip + 4
	jne 9f
	cmpl $(DR6_CLEAN | 2), db_dr6
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_data_write, %esi
	jmp report

t_data_rw:
	xor %eax, %eax
	call db_reset
	lea watch + 8, %eax
	mov %eax, %dr2
	mov $0x07000410, %eax		/* L2, RW2 = 11 (read/write), LEN2 = 01 (2 bytes) */
	mov %eax, %dr7
	movb watch + 10, %al		/* beside it: no trap */
	movb watch + 8, %al
drw_a:	nop
	xor %eax, %eax
	mov %eax, %dr7
	cmpl $1, db_count
	jne 9f
	cmpl $drw_a, db_eip
	jne 9f
	cmpl $(DR6_CLEAN | 4), db_dr6
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_data_rw, %esi
	jmp report

t_data_rep:
	xor %eax, %eax
	call db_reset
	lea rep_buf + 5, %eax
	mov %eax, %dr3
	mov $0x10000440, %eax		/* L3, RW3 = 01, LEN3 = 00 */
	mov %eax, %dr7
	mov $rep_src, %esi
	mov $rep_buf, %edi
	mov $16, %ecx
	cld
drep:	rep movsb
	xor %eax, %eax
	mov %eax, %dr7
	cmpl $1, db_count
	jne 9f
	cmpl $drep, db_eip
	jne 9f
	cmpl $10, db_ecx
	jne 9f
	testl $RF, db_efl
	jz 9f
	cmpl $(DR6_CLEAN | 8), db_dr6
	jne 9f
	cmpl $0x0f0e0d0c, rep_buf + 12	/* and the copy completed */
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_data_rep, %esi
	jmp report

t_data_and_step:
	mov $1, %eax
	call db_reset
	mov $watch, %eax
	mov %eax, %dr1
	mov $0x00d00404, %eax
	mov %eax, %dr7
	pushf
	orl $TF, (%esp)
	popf
	movl $7, watch
das_a:	nop
	xor %eax, %eax
	mov %eax, %dr7
	cmpl $1, db_count
	jne 9f
	cmpl $das_a, db_eip
	jne 9f
	cmpl $(DR6_CLEAN | 0x4000 | 2), db_dr6
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_data_and_step, %esi
	jmp report

t_icebp:
	xor %eax, %eax
	call db_reset
	.byte 0xf1
ice_a:	nop
	cmpl $1, db_count
	jne 9f
	cmpl $ice_a, db_eip
	jne 9f
	cmpl $DR6_CLEAN, db_dr6
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_icebp, %esi
	jmp report

t_io_bp:
	xor %eax, %eax
	call db_reset
	mov %cr4, %eax
	or $8, %eax			/* CR4.DE */
	mov %eax, %cr4
	mov $0x80, %eax
	mov %eax, %dr0
	mov $0x00020401, %eax		/* L0, RW0 = 10 (I/O), LEN0 = 00 */
	mov %eax, %dr7
	mov $0x55, %al
	out %al, $0x81			/* another port: no trap */
	out %al, $0x80
io_a:	nop
	mov $0x80, %dx
	in %dx, %al
io_b:	nop
	xor %eax, %eax
	mov %eax, %dr7
	mov %cr4, %eax
	and $~8, %eax
	mov %eax, %cr4
	cmpl $2, db_count
	jne 9f
	cmpl $io_a, db_eip
	jne 9f
	cmpl $io_b, db_eip + 4
	jne 9f
	cmpl $(DR6_CLEAN | 1), db_dr6
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_io_bp, %esi
	jmp report

t_gd:
	xor %eax, %eax
	call db_reset
	movl $3, db_skip
	mov $0x2400, %eax		/* GD */
	mov %eax, %dr7
gd_a:	mov %dr0, %eax			/* 3 bytes: 0f 21 c0 */
	mov %dr7, %eax
	mov %eax, gd_dr7
	cmpl $1, db_count
	jne 9f
	cmpl $gd_a, db_eip
	jne 9f
	cmpl $(DR6_CLEAN | 0x2000), db_dr6
	jne 9f
	testl $RF, db_efl
	jz 9f
	cmpl $0x400, gd_dr7
	jne 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_gd, %esi
	jmp report

t_dr_alias:
	mov $0x12345678, %eax
	mov %eax, %dr0
	mov $0x401, %eax		/* L0 of an execute breakpoint far away */
	mov %eax, %dr5
	mov %dr7, %ebx
	xor %eax, %eax
	mov %eax, %dr7
	mov %dr4, %ecx
	cmp $0x401, %ebx
	jne 9f
	cmp $DR6_CLEAN, %ecx
	jne 9f
	movl $0, ud_efl
	mov %cr4, %eax
	or $8, %eax			/* CR4.DE: DR4/DR5 are #UD */
	mov %eax, %cr4
	movl $3, ud_skip
	mov %dr4, %eax			/* 3 bytes: 0f 21 e0 */
	mov %cr4, %eax
	and $~8, %eax
	mov %eax, %cr4
	cmpl $0, ud_efl
	je 9f
	mov $1, %eax
	jmp 8f
9:	xor %eax, %eax
8:	mov $s_dr_alias, %esi
	jmp report

/* ---- output ---- */

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

/* set_gate: eax = vector, ebx = handler (interrupt gate, DPL 0) */
set_gate:
	push %ebx
	push %edx
	lea IDT(,%eax,8), %edx
	mov %bx, (%edx)
	movw $0x08, 2(%edx)
	movb $0, 4(%edx)
	movb $0x8e, 5(%edx)
	shr $16, %ebx
	mov %bx, 6(%edx)
	pop %edx
	pop %ebx
	ret

setup_idt:
	mov $1, %eax
	mov $db_handler, %ebx
	call set_gate
	mov $3, %eax
	mov $soft_handler, %ebx
	call set_gate
	mov $6, %eax
	mov $ud_handler, %ebx
	call set_gate
	mov $0x40, %eax
	mov $soft_handler, %ebx
	call set_gate
	ret

	.data
	.align 8
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08 code32 */
	.quad 0x00cf92000000ffff	/* 0x10 data */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
idt_desc:
	.word 0x7ff
	.long IDT
	.align 16
watch:	.long 0, 0, 0, 0
rep_src: .byte 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
rep_buf: .fill 16, 1, 0xff
failures: .long 0
db_count: .long 0
db_clear_tf: .long 0
db_set_rf: .long 0
db_skip: .long 0
soft_count: .long 0
ud_efl: .long 0
ud_skip: .long 2
gd_dr7: .long 0
db_dr6: .fill 8, 4, 0
db_eip: .fill 8, 4, 0
db_efl: .fill 8, 4, 0
db_ecx: .fill 8, 4, 0

s_ok: .asciz "ok - "
s_not: .asciz "not "
s_nl: .asciz "\n"
s_step_popf: .asciz "single-step traps start one instruction after POPF sets TF; DR6.BS"
s_step_popf_clear: .asciz "a POPF clearing TF still traps after itself"
s_step_mov_ss: .asciz "the single-step trap after MOV SS waits for the next instruction"
s_step_pop_ss: .asciz "the single-step trap after POP SS waits for the next instruction"
s_step_iret_sets: .asciz "IRET setting TF traps after the first instruction it returns to"
s_step_iret_clears: .asciz "IRET clearing TF traps once, at its target"
s_step_int: .asciz "INT n clears TF for its handler: no trap inside, the next one after IRET"
s_step_int3: .asciz "INT3 under TF: no trap in its handler"
s_step_rep: .asciz "single-step runs REP MOVSB one iteration per trap, RF 1 between"
s_insn_bp: .asciz "an instruction breakpoint faults before the instruction, DR6.B0, RF 0 pushed"
s_fault_rf: .asciz "a fault (#UD) pushes RF = 1"
s_data_write: .asciz "a 4-byte write breakpoint traps after writes that overlap it, not reads"
s_data_rw: .asciz "a 2-byte read/write breakpoint traps after a read"
s_data_rep: .asciz "a write breakpoint in REP MOVSB traps after that iteration, RF 1 pushed"
s_data_and_step: .asciz "a data breakpoint and single-step report together in one #DB"
s_icebp: .asciz "INT1 (ICEBP) raises #DB as a trap and leaves DR6 alone"
s_io_bp: .asciz "with CR4.DE an I/O breakpoint traps after IN and OUT of its port"
s_gd: .asciz "DR7.GD: MOV DR faults with DR6.BD and GD clear for the handler"
s_dr_alias: .asciz "DR4/DR5 alias DR6/DR7, #UD with CR4.DE"
