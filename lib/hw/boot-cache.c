/*
 * The unpacked-kernel cache.
 *
 * Inflating a Debian kernel's xz payload on the host (boot-unpack.c) takes
 * about a second, the same every boot.  People boot the same kernel over
 * and over (scripts, test suites), so the inflated payload is kept,
 * compressed with zstd level 1 (14 MB for Debian's 66 MB vmlinux, 60 ms to
 * read back), under
 *
 *     $XDG_CACHE_HOME/vm-run/kernels/   (default ~/.cache/vm-run/kernels)
 *
 * named by the BLAKE2b-256 hash of the compressed payload, which alone
 * decides what it inflates to.  `-machine kernel-cache=off` neither reads
 * nor writes it.
 *
 * Nothing here can change what the guest runs:
 *  - an entry is one zstd frame with its content size and content
 *    checksum; a short, corrupt or foreign file fails the frame's checks
 *    (or, well-formed, does not load as a kernel: boot-unpack.c) and the
 *    payload is inflated as if there were no entry (and the entry
 *    written again);
 *  - entries are written by a background thread at the lowest priority
 *    while the guest boots, to a temporary name in the folder, then
 *    renamed: a reader sees a whole entry or none, also with several
 *    vm-runs at once; the folder is the user's own (0700);
 *  - no cache folder (no HOME, read-only home, full disk) only costs
 *    the inflating: a failed write is a debug line (-d boot), never an
 *    error.
 * The folder keeps the KEEP entries used last (their mtimes are touched
 * on each use); older ones are removed when an entry is written.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "common/common.h"
#include "hw/internal.h"

#define KEEP 8
#define ZLEVEL 1
#define MAX_ENTRY (512u << 20)

struct kcache_job {
	char dir[4096];
	char name[80];
	uint8_t *data;
	size_t len;
};

/* The cache folder, created on demand; false when there is none. */
static bool cache_dir(char *buf, size_t size, bool create)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char base[4096];
	int n;

	if (xdg && *xdg == '/')
		n = snprintf(base, sizeof(base), "%s/vm-run", xdg);
	else if (home && *home == '/')
		n = snprintf(base, sizeof(base), "%s/.cache/vm-run", home);
	else
		return false;
	if (n < 0 || (size_t)n >= sizeof(base) || (size_t)snprintf(buf, size, "%s/kernels", base) >= size)
		return false;
	if (create) {
		char parent[4096];

		snprintf(parent, sizeof(parent), "%.*s", (int)(strrchr(base, '/') - base), base);
		mkdir(parent, 0700);	/* ~/.cache: may exist already */
		mkdir(base, 0700);
		mkdir(buf, 0700);
	}
	return true;
}

/* "v1-<hash of the payload>.zst" */
static void entry_name(const uint8_t *payload, size_t len, char *name, size_t size)
{
	uint8_t h[32];
	char hex[65];

	crypto_generichash(h, sizeof(h), payload, len, NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	snprintf(name, size, "v1-%s.zst", hex);
}

int boot_cache_get(struct machine *m, const uint8_t *payload, size_t len, uint8_t **out,
		   size_t *outlen)
{
	char dir[4096], name[80], path[4200];
	unsigned long long n;
	uint8_t *file = NULL, *buf;
	size_t flen, got;

	if (m->cfg.no_kernel_cache || sodium_init() < 0 || !cache_dir(dir, sizeof(dir), false))
		return -ENOENT;
	entry_name(payload, len, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (hw_read_file(path, &file, &flen) < 0) {
		err_clear();
		return -ENOENT;
	}
	n = ZSTD_getFrameContentSize(file, flen);
	if (n == ZSTD_CONTENTSIZE_UNKNOWN || n == ZSTD_CONTENTSIZE_ERROR || n == 0 || n > MAX_ENTRY ||
	    !(buf = malloc(n))) {
		LOG(LOG_BOOT, "%s: not a good cache entry (no frame of a known size): inflating "
		    "the kernel again", path);
		free(file);
		return -ENOENT;
	}
	got = ZSTD_decompress(buf, n, file, flen);	/* checks the content checksum */
	free(file);
	if (ZSTD_isError(got) || got != n) {
		LOG(LOG_BOOT, "%s: not a good cache entry (%s): inflating the kernel again",
		    path, ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short");
		free(buf);
		return -ENOENT;
	}
	utimensat(AT_FDCWD, path, NULL, 0);	/* used now: kept longest */
	LOG(LOG_BOOT, "kernel payload read from the cache %s", path);
	*out = buf;
	*outlen = got;
	return 0;
}

static int by_mtime(const void *a, const void *b)
{
	const struct timespec *x = a, *y = b;

	if (x->tv_sec != y->tv_sec)
		return x->tv_sec < y->tv_sec ? 1 : -1;
	return x->tv_nsec < y->tv_nsec ? 1 : x->tv_nsec > y->tv_nsec ? -1 : 0;
}

/* Removes all but the KEEP newest entries, and temporary files an hour
 * old (left by a vm-run killed while writing). */
static void prune(const char *dir)
{
	struct timespec t[256];
	struct dirent *e;
	struct stat st;
	int n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (fstatat(dirfd(d), e->d_name, &st, 0) < 0)
			continue;
		if (!strncmp(e->d_name, ".tmp-", 5) && st.st_mtime < time(NULL) - 3600)
			unlinkat(dirfd(d), e->d_name, 0);
		else if (!strncmp(e->d_name, "v1-", 3) && n < 256)
			t[n++] = st.st_mtim;
	}
	if (n > KEEP) {
		qsort(t, n, sizeof(t[0]), by_mtime);
		rewinddir(d);
		while ((e = readdir(d)))
			if (!strncmp(e->d_name, "v1-", 3) && fstatat(dirfd(d), e->d_name, &st, 0) == 0 &&
			    by_mtime(&st.st_mtim, &t[KEEP - 1]) > 0)
				unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

static int write_entry(const struct kcache_job *j)
{
	char tmp[4300], path[4200];
	size_t cap = ZSTD_compressBound(j->len), n;
	uint8_t *z = malloc(cap);
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	int fd, r = -ENOMEM;

	if (!z || !cc)
		goto out;
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, ZLEVEL);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
	n = ZSTD_compress2(cc, z, cap, j->data, j->len);
	r = -EIO;
	if (ZSTD_isError(n))
		goto out;
	snprintf(path, sizeof(path), "%s/%s", j->dir, j->name);
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%ld-%s", j->dir, (long)getpid(), j->name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = write_full(fd, z, n);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	fd = -1;
	if (r == 0)
		r = rename(tmp, path) < 0 ? -errno : 0;
	if (r < 0)
		unlink(tmp);
	else
		prune(j->dir);
out:
	ZSTD_freeCCtx(cc);
	free(z);
	return r;
}

static void *writer(void *arg)
{
	struct kcache_job *j = arg;
	int r;

	setpriority(PRIO_PROCESS, (id_t)gettid(), 19);	/* the vCPUs come first */
	r = write_entry(j);

	if (r < 0)
		LOG(LOG_BOOT, "kernel cache %s/%s not written: %s", j->dir, j->name, strerror(-r));
	free(j->data);
	free(j);
	return NULL;
}

void boot_cache_put(struct machine *m, const uint8_t *payload, size_t len, uint8_t *data,
		    size_t dlen)
{
	struct kcache_job *j;

	if (m->cfg.no_kernel_cache || m->kcache_busy || sodium_init() < 0 ||
	    !(j = calloc(1, sizeof(*j))))
		goto drop;
	if (!cache_dir(j->dir, sizeof(j->dir), true)) {
		free(j);
		goto drop;
	}
	entry_name(payload, len, j->name, sizeof(j->name));
	j->data = data;
	j->len = dlen;
	if (pthread_create(&m->kcache_thread, NULL, writer, j) != 0) {
		free(j);
		goto drop;
	}
	m->kcache_busy = true;
	return;
drop:
	free(data);
}

void boot_cache_wait(struct machine *m)
{
	if (m->kcache_busy)
		pthread_join(m->kcache_thread, NULL);
	m->kcache_busy = false;
}
