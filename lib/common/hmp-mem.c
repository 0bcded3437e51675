/*
 * x, xp and print: QEMU monitor's memory dump and expression printing
 * (QEMU user manual, "QEMU Monitor": "x/fmt addr", "xp /fmt addr",
 * "print/fmt expr").
 *
 * Layout of a dump: one line per 16 bytes (8 when the unit is a byte),
 * each starting with the address as 16 hex digits and a colon, then each
 * unit after a space: x as 0x and zero-padded hex, d and u right-aligned
 * decimal, o with a leading 0, c as a quoted character with C escapes.
 * The column width is what the largest value of the unit size needs.
 *
 * Expressions: numbers (0x hex, leading-0 octal, decimal), $register,
 * unary - ~ +, * / %, + -, and & | ^ lowest, with parentheses.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

struct eval {
	const struct hmp_session *s;
	const char *p;
	int err;
	int depth;                /* nesting, bounded: input is untrusted */
};

static void ev_space(struct eval *e)
{
	while (isspace((unsigned char)*e->p))
		e->p++;
}

static uint64_t ev_logic(struct eval *e);

static uint64_t ev_register(struct eval *e)
{
	const char *start = ++e->p;
	uint64_t v = 0;
	char name[32];

	while (isalnum((unsigned char)*e->p) || *e->p == '_')
		e->p++;
	snprintf(name, sizeof(name), "%.*s", (int)(e->p - start), start);
	if (!e->s || !e->s->mach || !e->s->mach->get_reg)
		e->err = err_set(-ENOTSUP, "registers are not available here");
	else if (e->s->mach->get_reg(e->s->machine, name, &v) < 0)
		e->err = err_set(-EINVAL, "unknown register '%s'", name);
	return v;
}

/* A number or a $register. */
static uint64_t ev_number(struct eval *e)
{
	uint64_t v;
	char *end;

	if (*e->p == '$')
		return ev_register(e);
	if (!isdigit((unsigned char)*e->p)) {
		e->err = err_set(-EINVAL, *e->p ? "invalid char '%c' in expression" :
				 "unexpected end of expression", *e->p);
		return 0;
	}
	errno = 0;
	v = strtoull(e->p, &end, 0);
	if (errno)
		e->err = err_set(-ERANGE, "number too large");
	e->p = end;
	return v;
}

static uint64_t ev_unary(struct eval *e)
{
	uint64_t v = 0;

	ev_space(e);
	if (e->err)
		return 0;
	if (++e->depth > 64) {
		e->err = err_set(-EINVAL, "expression nested too deeply");
		return 0;
	}
	switch (*e->p) {
	case '-': e->p++; v = -ev_unary(e); break;
	case '+': e->p++; v = ev_unary(e); break;
	case '~': e->p++; v = ~ev_unary(e); break;
	case '(':
		e->p++;
		v = ev_logic(e);
		ev_space(e);
		if (*e->p == ')')
			e->p++;
		else if (!e->err)
			e->err = err_set(-EINVAL, "')' expected");
		break;
	default:
		v = ev_number(e);
		break;
	}
	e->depth--;
	return v;
}

static uint64_t ev_prod(struct eval *e)
{
	uint64_t v = ev_unary(e), w;
	char op;

	while (!e->err) {
		ev_space(e);
		op = *e->p;
		if (op != '*' && op != '/' && op != '%')
			return v;
		e->p++;
		w = ev_unary(e);
		if (op != '*' && w == 0) {
			if (!e->err)
				e->err = err_set(-EDOM, "division by zero");
			return 0;
		}
		v = op == '*' ? v * w : op == '/' ? v / w : v % w;
	}
	return 0;
}

static uint64_t ev_sum(struct eval *e)
{
	uint64_t v = ev_prod(e);

	while (!e->err) {
		ev_space(e);
		if (*e->p == '+')
			e->p++, v += ev_prod(e);
		else if (*e->p == '-')
			e->p++, v -= ev_prod(e);
		else
			return v;
	}
	return 0;
}

static uint64_t ev_logic(struct eval *e)
{
	uint64_t v = ev_sum(e);

	while (!e->err) {
		ev_space(e);
		if (*e->p == '&')
			e->p++, v &= ev_sum(e);
		else if (*e->p == '|')
			e->p++, v |= ev_sum(e);
		else if (*e->p == '^')
			e->p++, v ^= ev_sum(e);
		else
			return v;
	}
	return 0;
}

int hmp_eval(const struct hmp_session *s, const char *expr, uint64_t *val)
{
	struct eval e = { .s = s, .p = expr };
	uint64_t v = ev_logic(&e);

	ev_space(&e);
	if (!e.err && *e.p)
		e.err = err_set(-EINVAL, "invalid char '%c' in expression", *e.p);
	if (e.err)
		return e.err;
	*val = v;
	return 0;
}

static void print_char(struct hmp_out *o, unsigned c)
{
	if (c == '\'')
		hmp_printf(o, "'\\''");
	else if (c == '\\')
		hmp_printf(o, "'\\\\'");
	else if (c == '\n')
		hmp_printf(o, "'\\n'");
	else if (c == '\r')
		hmp_printf(o, "'\\r'");
	else if (c >= 32 && c <= 126)
		hmp_printf(o, "'%c'", c);
	else
		hmp_printf(o, "'\\x%02x'", c & 0xff);
}

void hmp_print_value(struct hmp_out *o, uint64_t v, char format)
{
	switch (format) {
	case 'o': hmp_printf(o, "%#" PRIo64 "\n", v); break;
	case 'x': hmp_printf(o, "%#" PRIx64 "\n", v); break;
	case 'u': hmp_printf(o, "%" PRIu64 "\n", v); break;
	case 'c': print_char(o, (unsigned)(v & 0xff)); hmp_printf(o, "\n"); break;
	default:  hmp_printf(o, "%" PRId64 "\n", (int64_t)v); break;
	}
}

static uint64_t load_le(const uint8_t *p, int size)
{
	uint64_t v = 0;

	for (int i = size - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* d is not sign-extended: QEMU loads each unit zero-extended. */
static void dump_unit(struct hmp_out *o, uint64_t v, char format, int digits)
{
	hmp_printf(o, " ");
	switch (format) {
	case 'o': hmp_printf(o, "%#*" PRIo64, digits, v); break;
	case 'u': hmp_printf(o, "%*" PRIu64, digits, v); break;
	case 'd': hmp_printf(o, "%*" PRId64, digits, (int64_t)v); break;
	case 'c': print_char(o, (unsigned)v); break;
	default:  hmp_printf(o, "0x%0*" PRIx64, digits, v); break;
	}
}

void hmp_dump(struct hmp_out *o, uint64_t addr, const uint8_t *mem, size_t len,
	      const struct hmp_fmt *f)
{
	int wsize = f->size > 0 ? f->size : 4;
	size_t line = wsize == 1 ? 8 : 16;
	int digits;

	switch (f->format) {
	case 'o': digits = DIV_ROUND_UP(wsize * 8, 3); break;
	case 'u':
	case 'd': digits = DIV_ROUND_UP(wsize * 8 * 10, 33); break;
	case 'c': digits = 1; wsize = 1; break;
	default:  digits = wsize * 2; break;
	}
	for (size_t off = 0; off < len; off += line) {
		size_t l = MIN(line, len - off);

		hmp_printf(o, "%016" PRIx64 ":", addr + off);
		for (size_t i = 0; i + (size_t)wsize <= l; i += (size_t)wsize)
			dump_unit(o, load_le(mem + off + i, wsize), f->format, digits);
		hmp_printf(o, "\n");
	}
}

/* x and xp without a round trip: possible when the session can read
 * guest memory (vm-run); otherwise they travel as human-monitor-command. */
static int hmp_local_dump(struct hmp_session *s, const struct hmp_args *a,
			  struct hmp_out *o, bool phys)
{
	uint64_t addr;
	size_t len;
	uint8_t *buf;
	int r;

	if (!s->mach || !s->mach->read_mem)
		return -ENOTSUP;
	if (a->fmt.format == 'i')
		return err_set(-ENOTSUP, "%s: format 'i' (disassembly) is not supported", a->name);
	if ((r = hmp_eval(s, hmp_arg(a, "addr"), &addr)) < 0)
		return r;
	len = (size_t)a->fmt.count * (size_t)(a->fmt.size > 0 ? a->fmt.size : 4);
	if (len > (1u << 20))
		return err_set(-EINVAL, "%s: at most 1 MiB at a time", a->name);
	buf = xmalloc(len);
	r = s->mach->read_mem(s->machine, addr, buf, len, phys);
	if (r < 0)
		err_set(r, "Cannot access memory");
	else
		hmp_dump(o, addr, buf, len, &a->fmt);
	free(buf);
	return r;
}

int hmp_local_x(struct hmp_session *s, const struct hmp_args *a, struct hmp_out *o)
{
	return hmp_local_dump(s, a, o, false);
}

int hmp_local_xp(struct hmp_session *s, const struct hmp_args *a, struct hmp_out *o)
{
	return hmp_local_dump(s, a, o, true);
}

/* print: arithmetic is done here; a $register needs the machine, so
 * without machine ops such an expression goes to the server. */
int hmp_local_print(struct hmp_session *s, const struct hmp_args *a, struct hmp_out *o)
{
	uint64_t v;
	int r;

	if ((r = hmp_eval(s, hmp_arg(a, "expr"), &v)) < 0)
		return r;
	hmp_print_value(o, v, a->fmt.format);
	return 0;
}
