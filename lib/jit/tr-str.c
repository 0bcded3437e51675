/*
 * The translator's string instructions (MOVS, CMPS, STOS, LODS, SCAS,
 * with or without REP): for now every form goes through its interpreter
 * handler (string.c) from translated code, which is what TR_NO asks of
 * tr-x86.c.
 */
#include "jit/internal.h"

int jit_tr_string(struct jit_tr *t, const struct jit_insn *in)
{
	(void)t;
	(void)in;
	return TR_NO;
}
