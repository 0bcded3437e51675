/*
 * Numbers and sizes as QEMU's command lines write them: "64k", "1.5G",
 * "512b", with binary multiples, and QEMU's human form for printing
 * ("1 GiB", "0.999 KiB": three significant digits).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
		return err_set(-EINVAL, "'%s' is not a valid number", s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 0);
	if (*end)
		return err_set(-EINVAL, "'%s' is not a valid number", s);
	if (errno == ERANGE || v > max || v < min)
		return err_set(-ERANGE, "'%s' is out of range (%llu to %llu)", s,
			       (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

int parse_int(const char *s, int min, int max, int *out)
{
	long long v;
	char *end;

	if (!s || !*s || isspace((unsigned char)*s))
		return err_set(-EINVAL, "'%s' is not a valid number", s ? s : "");
	errno = 0;
	v = strtoll(s, &end, 0);
	if (*end)
		return err_set(-EINVAL, "'%s' is not a valid number", s);
	if (errno == ERANGE || v < min || v > max)
		return err_set(-ERANGE, "'%s' is out of range (%d to %d)", s, min, max);
	*out = (int)v;
	return 0;
}

/* log2 of the multiplier for a suffix letter, or -1. */
static int size_shift(char c)
{
	static const char units[] = "BKMGTPE";
	const char *p = strchr(units, toupper((unsigned char)c));

	return c && p ? (int)(p - units) * 10 : -1;
}

int size_parse(const char *s, char default_suffix, uint64_t *out)
{
	unsigned __int128 whole = 0, frac = 0, fdiv = 1, v;
	const char *p = s;
	int shift, digits = 0;

	if (!s || !*s)
		return err_set(-EINVAL, "empty size");
	for (; isdigit((unsigned char)*p); p++, digits++) {
		whole = whole * 10 + (unsigned)(*p - '0');
		if (whole > UINT64_MAX)
			return err_set(-ERANGE, "size '%s' is too large", s);
	}
	if (*p == '.') {
		if (!isdigit((unsigned char)p[1]))
			return err_set(-EINVAL, "'%s' is not a valid size", s);
		for (p++; isdigit((unsigned char)*p); p++, digits++)
			if (fdiv < (unsigned __int128)1 << 100) {
				frac = frac * 10 + (unsigned)(*p - '0');
				fdiv *= 10;
			}
	}
	if (!digits)
		return err_set(-EINVAL, "'%s' is not a valid size", s);
	if (*p) {
		shift = size_shift(*p++);
		if (*p == 'i' && shift > 0)
			p++;
		if ((*p == 'b' || *p == 'B') && shift > 0)
			p++;
	} else {
		shift = default_suffix ? size_shift(default_suffix) : 0;
	}
	if (shift < 0 || *p)
		return err_set(-EINVAL, "'%s' is not a valid size (suffixes: k, M, G, T, P, E)", s);
	if (frac && shift == 0)
		return err_set(-EINVAL, "'%s': a fraction of a byte is not a size", s);
	v = (whole << shift) + ((frac << shift) / fdiv);
	if ((whole << shift) >> shift != whole || v > UINT64_MAX)
		return err_set(-ERANGE, "size '%s' is too large", s);
	*out = (uint64_t)v;
	return 0;
}

char *size_to_str(uint64_t v, char *buf)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double limit = 1000.0;
	int i = 0;

	/* Switch to the next unit once the value reaches 1000 of this one. */
	while (i < 6 && (double)v >= limit) {
		i++;
		limit *= 1024.0;
	}
	snprintf(buf, SIZE_STR_LEN, "%0.3g %s", (double)v / (double)(1ULL << (10 * i)), units[i]);
	return buf;
}

int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "on", "yes", "true" };
	static const char *const no[] = { "off", "no", "false" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(yes); i++) {
		if (s && !strcmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (s && !strcmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return err_set(-EINVAL, "'%s' is not on or off", s ? s : "");
}
