/*
 * Errors and reporting.  Libraries record one message per failure in a
 * per-thread buffer (err_set) and return -errno; only a tool's main()
 * prints it, in the one form the suite uses: "vm-img: disk.qcow2: problem".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define ERR_LEN 1024

static __thread char err_buf[ERR_LEN];
static const char *progname = "vm";

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "%s: out of memory (%zu bytes)\n", progname, n);
		abort();
	}
	return p;
}

void *xzalloc(size_t n)
{
	void *p = xmalloc(n);

	memset(p, 0, n);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "%s: out of memory (%zu bytes)\n", progname, n);
		abort();
	}
	return p;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fprintf(stderr, "%s: out of memory\n", progname);
		abort();
	}
	return s;
}

int err_set(int neg_errno, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
	return neg_errno;
}

int err_set_errno(int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (errnum < 0)
		errnum = -errnum;
	va_start(ap, fmt);
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
	n = strlen(err_buf);
	snprintf(err_buf + n, sizeof(err_buf) - n, "%s%s",
		 n ? ": " : "", strerror(errnum));
	return -errnum;
}

void err_prefix(const char *fmt, ...)
{
	char old[ERR_LEN];
	va_list ap;
	size_t n;

	memcpy(old, err_buf, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
	n = strlen(err_buf);
	if (n + 2 < sizeof(err_buf)) {
		memcpy(err_buf + n, ": ", 3);
		strncat(err_buf + n + 2, old, sizeof(err_buf) - n - 3);
	}
}

const char *err_msg(void)
{
	return err_buf[0] ? err_buf : "unknown error";
}

void err_clear(void)
{
	err_buf[0] = 0;
}

void report_init(const char *name)
{
	const char *slash = strrchr(name, '/');

	progname = slash ? slash + 1 : name;
}

const char *report_progname(void)
{
	return progname;
}

void report(const char *fmt, ...)
{
	char line[ERR_LEN + 64];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "%s: ", progname);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	fflush(stdout);
	fprintf(stderr, "%s\n", line);
}

void report_err(void)
{
	report("%s", err_msg());
}

int report_close_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		report("error writing output: %s", strerror(errno ? errno : EIO));
		return -1;
	}
	return 0;
}
