/*
 * cpu-smp: SMP start-up and the local APIC, as a multiboot kernel for a
 * machine with two vCPUs and an xAPIC at 0xfee00000 (vm-run -smp 2, or
 * QEMU -smp 2).  Run by tests/unit/test-jit-machine.c; prints TAP-like
 * "ok - what" / "not ok - what" lines on COM1 and leaves through
 * isa-debug-exit (port 0xf4) with the number of failures.
 *
 * Follows the Intel SDM vol. 3: 10.4 (the INIT-SIPI-SIPI sequence: the AP
 * starts in real mode at vector << 12), chapter 11 (local APIC registers,
 * ICR, EOI, the timer's one-shot and periodic modes and its divide
 * register), 9.1 (locked atomic operations).
 *
 * Covers: the BSP's APIC ID and version, starting the AP through the
 * trampoline at 0x8000 (real mode -> protected mode), the AP's APIC ID,
 * LOCK INC / LOCK XADD / XCHG spin locks racing on both vCPUs (counters
 * must be exact), a fixed IPI from the BSP to a halted AP and its EOI, the
 * APIC timer in periodic mode (several interrupts, the current count
 * counts down) and in one-shot mode (exactly one interrupt), and masking.
 */
	.section .multiboot, "a"
	.align 4
	.long 0x1badb002
	.long 0x00000003
	.long -(0x1badb002 + 0x00000003)

#define APIC 0xfee00000
#define APIC_ID 0x20
#define APIC_VER 0x30
#define APIC_EOI 0xb0
#define APIC_SVR 0xf0
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define APIC_LVT_TIMER 0x320
#define APIC_TIMER_INIT 0x380
#define APIC_TIMER_CUR 0x390
#define APIC_TIMER_DIV 0x3e0
#define IDT 0x9000
#define TRAMP 0x8000
#define BSP_STACK 0x70000
#define AP_STACK 0x68000
#define ITERS 200000
#define VEC_IPI 0x40
#define VEC_TIMER 0x41

	.text
	.code32
	.globl _start
_start:
	mov $BSP_STACK, %esp
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
	mov $0xff, %al		/* mask the 8259s: only the APIC interrupts */
	out %al, $0x21
	out %al, $0xa1

	/* APIC on (SVR bit 8, spurious vector 0xff) */
	movl $0x1ff, APIC + APIC_SVR
	mov APIC + APIC_ID, %eax
	shr $24, %eax
	cmp $0, %eax
	sete %al
	movzbl %al, %eax
	mov $s_bspid, %esi
	call report
	mov APIC + APIC_VER, %eax
	and $0xff, %eax
	cmp $0x10, %eax
	setae %al
	movzbl %al, %eax
	mov $s_ver, %esi
	call report

	call start_ap
	call test_atomics
	call test_ipi
	call test_timer_periodic
	call test_timer_oneshot

	mov failures, %eax
	mov $0xf4, %dx
	out %eax, %dx
	cli
2:	hlt
	jmp 2b

/* INIT, then two SIPIs with vector 0x08 (the AP starts at 0800:0000). */
start_ap:
	mov $tramp_start, %esi
	mov $TRAMP, %edi
	mov $(tramp_end - tramp_start), %ecx
	rep movsb
	movl $(1 << 24), APIC + APIC_ICR_HI
	movl $0x00004500, APIC + APIC_ICR_LO	/* INIT, assert */
	call delay
	movl $(1 << 24), APIC + APIC_ICR_HI
	movl $0x00004608, APIC + APIC_ICR_LO	/* STARTUP, vector 8 */
	call delay
	cmpl $0, ap_alive
	jne 1f
	movl $(1 << 24), APIC + APIC_ICR_HI
	movl $0x00004608, APIC + APIC_ICR_LO	/* second SIPI */
1:	mov $2000000000, %ecx
2:	cmpl $0, ap_alive
	jne 3f
	pause
	loop 2b
3:	cmpl $0, ap_alive
	setne %al
	movzbl %al, %eax
	mov $s_apstart, %esi
	call report
	cmpl $1, ap_apicid
	sete %al
	movzbl %al, %eax
	mov $s_apid, %esi
	call report
	ret

/* Both CPUs hammer the counters; go releases the AP, done counts. */
test_atomics:
	movl $1, go
	call hammer
1:	cmpl $1, ap_done
	je 2f
	pause
	jmp 1b
2:	cmpl $(2 * ITERS), cnt_inc
	sete %al
	movzbl %al, %eax
	mov $s_inc, %esi
	call report
	cmpl $(2 * ITERS), cnt_xadd
	sete %al
	movzbl %al, %eax
	mov $s_xadd, %esi
	call report
	cmpl $(2 * ITERS), cnt_plain
	sete %al
	movzbl %al, %eax
	mov $s_lock, %esi
	call report
	ret

/* ITERS rounds of: LOCK INC, LOCK XADD, and a plain increment under an
 * XCHG spin lock.  Clobbers eax, ecx. */
hammer:
	mov $ITERS, %ecx
1:	lock incl cnt_inc
	mov $1, %eax
	lock xaddl %eax, cnt_xadd
2:	mov $1, %eax
	xchg %eax, spin
	test %eax, %eax
	jz 3f
	pause
	jmp 2b
3:	mov cnt_plain, %eax
	inc %eax
	mov %eax, cnt_plain
	movl $0, spin
	loop 1b
	ret

/* A fixed IPI to the AP, which sleeps in HLT with interrupts on. */
test_ipi:
	movl $(1 << 24), APIC + APIC_ICR_HI
	movl $VEC_IPI, APIC + APIC_ICR_LO
	mov $2000000000, %ecx
1:	cmpl $1, ap_ipis
	jae 2f
	pause
	loop 1b
2:	movl $(1 << 24), APIC + APIC_ICR_HI
	movl $VEC_IPI, APIC + APIC_ICR_LO
	mov $2000000000, %ecx
3:	cmpl $2, ap_ipis
	jae 4f
	pause
	loop 3b
4:	cmpl $2, ap_ipis
	sete %al
	movzbl %al, %eax
	mov $s_ipi, %esi
	call report
	ret

/* Periodic timer, divide by 1, 200 us period: wait for 5 interrupts. */
test_timer_periodic:
	movl $0, ticks
	movl $0xb, APIC + APIC_TIMER_DIV
	movl $(VEC_TIMER | (1 << 17)), APIC + APIC_LVT_TIMER
	movl $200000, APIC + APIC_TIMER_INIT
	mov APIC + APIC_TIMER_CUR, %eax
	mov %eax, cur1
	sti
1:	hlt
	cmpl $5, ticks
	jb 1b
	cli
	mov APIC + APIC_TIMER_CUR, %eax
	cmp $200000, %eax
	setbe %al
	movzbl %al, %eax
	mov $s_cur, %esi
	call report
	mov cur1, %eax
	test %eax, %eax
	setnz %al
	movzbl %al, %eax
	mov $s_cur1, %esi
	call report
	movl $1, %eax
	mov $s_periodic, %esi
	call report
	/* mask: no more ticks.  A tick that fired while the reports above
	 * ran with IF=0 already waits in the IRR (masking does not take it
	 * back): let it in first, then count. */
	movl $(VEC_TIMER | (1 << 16) | (1 << 17)), APIC + APIC_LVT_TIMER
	sti
	nop
	cli
	mov ticks, %ebx
	sti
	call delay
	cli
	cmp ticks, %ebx
	sete %al
	movzbl %al, %eax
	mov $s_mask, %esi
	call report
	movl $0, APIC + APIC_TIMER_INIT
	ret

/* One-shot, divide by 2, 100 us: exactly one interrupt, then 0 in CUR. */
test_timer_oneshot:
	movl $0, ticks
	movl $0x0, APIC + APIC_TIMER_DIV
	movl $VEC_TIMER, APIC + APIC_LVT_TIMER
	movl $50000, APIC + APIC_TIMER_INIT
	sti
1:	hlt
	cmpl $1, ticks
	jb 1b
	call delay
	cli
	cmpl $1, ticks
	sete %al
	movzbl %al, %eax
	mov $s_oneshot, %esi
	call report
	mov APIC + APIC_TIMER_CUR, %eax
	test %eax, %eax
	sete %al
	movzbl %al, %eax
	mov $s_expired, %esi
	call report
	ret

/* A few milliseconds: 5 million TSC cycles. */
delay:
	push %eax
	push %ecx
	push %edx
	rdtsc
	mov %eax, %ecx
1:	pause
	rdtsc
	sub %ecx, %eax
	cmp $5000000, %eax
	jb 1b
	pop %edx
	pop %ecx
	pop %eax
	ret

/* ---- the AP, after the trampoline ---- */
ap_main:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $AP_STACK, %esp
	lidt idt_desc
	movl $0x1ff, APIC + APIC_SVR
	mov APIC + APIC_ID, %eax
	shr $24, %eax
	mov %eax, ap_apicid
	movl $1, ap_alive
1:	cmpl $0, go
	je 1b
	call hammer
	movl $1, ap_done
	sti
2:	hlt
	jmp 2b

/* ---- interrupts ---- */
ipi_handler:
	incl ap_ipis
	movl $0, APIC + APIC_EOI
	iret

timer_handler:
	incl ticks
	movl $0, APIC + APIC_EOI
	iret

spurious_handler:
	iret

setup_idt:
	mov $VEC_IPI, %eax
	mov $ipi_handler, %ebx
	call set_gate
	mov $VEC_TIMER, %eax
	mov $timer_handler, %ebx
	call set_gate
	mov $0xff, %eax
	mov $spurious_handler, %ebx
	call set_gate
	ret

/* eax = vector, ebx = handler: a 32-bit interrupt gate */
set_gate:
	lea IDT(,%eax,8), %edx
	mov %bx, (%edx)
	movw $0x08, 2(%edx)
	movb $0, 4(%edx)
	movb $0x8e, 5(%edx)
	shr $16, %ebx
	mov %bx, 6(%edx)
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

/* ---- the AP trampoline, copied to TRAMP and entered in real mode ---- */
	.code16
tramp_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	lgdtl TRAMP + (tramp_gdt_desc - tramp_start)
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x08, $ap_main
tramp_gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
tramp_end:
	.code32

	.data
	.align 8
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: code, flat 32-bit */
	.quad 0x00cf92000000ffff	/* 0x10: data, flat */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
idt_desc:
	.word 256 * 8 - 1
	.long IDT

	.align 4
failures: .long 0
ap_alive: .long 0
ap_apicid: .long -1
ap_done: .long 0
ap_ipis: .long 0
go: .long 0
spin: .long 0
cnt_inc: .long 0
cnt_xadd: .long 0
cnt_plain: .long 0
ticks: .long 0
cur1: .long 0

s_ok: .asciz "ok - "
s_not: .asciz "not "
s_nl: .asciz "\n"
s_bspid: .asciz "BSP local APIC ID is 0"
s_ver: .asciz "local APIC version is an integrated APIC"
s_apstart: .asciz "INIT-SIPI-SIPI starts the AP in real mode at the vector's page"
s_apid: .asciz "AP local APIC ID is 1"
s_inc: .asciz "LOCK INC from two vCPUs is exact"
s_xadd: .asciz "LOCK XADD from two vCPUs is exact"
s_lock: .asciz "an XCHG spin lock protects a plain counter"
s_ipi: .asciz "fixed IPIs wake a halted AP, EOI lets the next one in"
s_cur: .asciz "periodic APIC timer: current count within the initial count"
s_cur1: .asciz "APIC timer current count is non-zero while counting"
s_periodic: .asciz "periodic APIC timer interrupts repeatedly"
s_mask: .asciz "a masked APIC timer does not interrupt"
s_oneshot: .asciz "one-shot APIC timer interrupts exactly once"
s_expired: .asciz "an expired one-shot APIC timer reads 0"
