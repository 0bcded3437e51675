/*
 * The host file under an image format: pread/pwrite that retry short
 * counts, O_DIRECT (cache=none) with aligned bounce buffers when the
 * caller's buffer, offset or length is not aligned, preallocation and
 * hole punching.  Every function is safe to call from several threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "internal.h"

int fmt_file_open(struct fmt_file *f, const char *path, unsigned flags)
{
	int oflags = (flags & FMT_O_RDWR) ? O_RDWR : O_RDONLY;
	unsigned perm, shared;
	struct stat st;
	int r;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->align = 1;
	if (flags & FMT_O_NOCACHE)
		oflags |= O_DIRECT;
	f->fd = open(path, oflags | O_CLOEXEC);
	if (f->fd < 0)
		return err_set_errno(errno, "Could not open '%s'", path);
	if (fstat(f->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(f->fd);
		f->fd = -1;
		return err_set(-EISDIR, "'%s' is a directory", path);
	}
	f->path = xstrdup(path);
	f->writable = flags & FMT_O_RDWR;
	f->direct = flags & FMT_O_NOCACHE;
	f->unsafe = flags & FMT_O_UNSAFE;
	if (f->direct)
		f->align = 4096;
	if (!(flags & FMT_O_NO_LOCK)) {
		fmt_lock_perms(flags, &perm, &shared);
		r = fmt_lock_apply(f->fd, path, perm, shared);
		if (r < 0) {
			fmt_file_close(f);
			return r;
		}
		f->perm = perm;
	}
	return 0;
}

void fmt_file_close(struct fmt_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	free(f->path);
	f->path = NULL;
}

static int file_pread_plain(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {            /* past end of file: zeros */
			memset(p, 0, len);
			return 0;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int file_pwrite_plain(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static bool file_aligned(const struct fmt_file *f, const void *buf, size_t len,
			 uint64_t off)
{
	return !f->direct || ((uintptr_t)buf % f->align == 0 &&
			      len % f->align == 0 && off % f->align == 0);
}

/* Aligned window covering [off, off+len) for O_DIRECT bounce I/O. */
static uint8_t *file_bounce(const struct fmt_file *f, uint64_t off, size_t len,
			    uint64_t *aoff, size_t *alen)
{
	void *p;

	*aoff = ALIGN_DOWN(off, f->align);
	*alen = ALIGN_UP(off + len, f->align) - *aoff;
	if (posix_memalign(&p, f->align, *alen))
		return NULL;
	return p;
}

int fmt_file_pread(struct fmt_file *f, void *buf, size_t len, uint64_t off)
{
	uint64_t aoff;
	size_t alen;
	uint8_t *b;
	int r;

	if (file_aligned(f, buf, len, off))
		r = file_pread_plain(f->fd, buf, len, off);
	else {
		b = file_bounce(f, off, len, &aoff, &alen);
		if (!b)
			return err_set(-ENOMEM, "out of memory");
		r = file_pread_plain(f->fd, b, alen, aoff);
		if (r == 0)
			memcpy(buf, b + (off - aoff), len);
		free(b);
	}
	if (r < 0)
		return err_set_errno(-r, "%s: read at %llu", f->path,
				     (unsigned long long)off);
	return 0;
}

int fmt_file_pwrite(struct fmt_file *f, const void *buf, size_t len, uint64_t off)
{
	uint64_t aoff;
	size_t alen;
	uint8_t *b;
	int r;

	if (file_aligned(f, buf, len, off))
		r = file_pwrite_plain(f->fd, buf, len, off);
	else {
		b = file_bounce(f, off, len, &aoff, &alen);
		if (!b)
			return err_set(-ENOMEM, "out of memory");
		r = file_pread_plain(f->fd, b, alen, aoff);
		if (r == 0) {
			memcpy(b + (off - aoff), buf, len);
			r = file_pwrite_plain(f->fd, b, alen, aoff);
		}
		free(b);
	}
	if (r < 0)
		return err_set_errno(-r, "%s: write at %llu", f->path,
				     (unsigned long long)off);
	return 0;
}

int64_t fmt_file_size(struct fmt_file *f)
{
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		return err_set_errno(errno, "%s", f->path);
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(f->fd, 0, SEEK_END);

		return end < 0 ? err_set_errno(errno, "%s", f->path) : end;
	}
	return st.st_size;
}

int fmt_file_truncate(struct fmt_file *f, uint64_t size)
{
	if (ftruncate(f->fd, (off_t)size) < 0)
		return err_set_errno(errno, "%s: cannot resize", f->path);
	return 0;
}

int fmt_file_flush(struct fmt_file *f)
{
	if (f->writable && !f->unsafe && fdatasync(f->fd) < 0 && errno != EINVAL)
		return err_set_errno(errno, "%s: flush", f->path);
	return 0;
}

int fmt_file_prealloc(struct fmt_file *f, uint64_t off, uint64_t len, bool full)
{
	const size_t chunk = 1 << 20;
	uint8_t *z;
	int r = 0;

	if (!len)
		return 0;
	if (!full) {
		if (fallocate(f->fd, 0, (off_t)off, (off_t)len) == 0)
			return 0;
		if (errno != EOPNOTSUPP)
			return err_set_errno(errno, "%s: cannot preallocate", f->path);
		if (posix_fallocate(f->fd, (off_t)off, (off_t)len) == 0)
			return 0;
	}
	if (posix_memalign((void **)&z, 4096, chunk))
		return err_set(-ENOMEM, "out of memory");
	memset(z, 0, chunk);
	while (len && r == 0) {
		size_t n = (size_t)MIN(len, chunk);

		r = fmt_file_pwrite(f, z, n, off);
		off += n;
		len -= n;
	}
	free(z);
	return r;
}

int fmt_file_punch(struct fmt_file *f, uint64_t off, uint64_t len)
{
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) < 0)
		return -errno;
	return 0;
}

int64_t fmt_file_allocated(struct fmt_file *f)
{
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		return err_set_errno(errno, "%s", f->path);
	return (int64_t)st.st_blocks * 512;
}
