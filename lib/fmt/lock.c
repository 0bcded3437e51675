/*
 * Image locking compatible with QEMU's file-posix driver: open file
 * description (OFD) shared locks on single bytes.  Byte 100 + bit says "I
 * hold permission bit"; byte 200 + bit says "I do not let others have it".
 * A process wanting a permission tests for a lock on the matching "unshare"
 * byte, and one refusing to share tests for the "have" byte.  Bits:
 * consistent read 0, write 1, write unchanged 2, resize 3.  Locks taken by
 * our own descriptor never conflict with us (OFD semantics).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "common/common.h"
#include "internal.h"

#define LOCK_BASE_PERM 100
#define LOCK_BASE_SHARED 200
#define LOCK_NBITS 4

static const char *const lock_perm_names[LOCK_NBITS] = {
	"consistent read", "write", "write unchanged", "resize",
};

static int lock_byte(int fd, int cmd, short type, off_t byte, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_whence = SEEK_SET;
	fl->l_start = byte;
	fl->l_len = 1;
	fl->l_type = type;
	return fcntl(fd, cmd, fl) < 0 ? -errno : 0;
}

/* Is another open file description holding a lock on byte? */
static int lock_held_elsewhere(int fd, off_t byte)
{
	struct flock fl;
	int r = lock_byte(fd, F_OFD_GETLK, F_WRLCK, byte, &fl);

	if (r < 0)
		return r;
	return fl.l_type != F_UNLCK;
}

void fmt_lock_perms(unsigned flags, unsigned *perm, unsigned *shared)
{
	if (flags & FMT_O_SHARE) {
		*perm = (flags & FMT_O_RDWR) ? FMT_PERM_WRITE | FMT_PERM_RESIZE : 0;
		*shared = FMT_PERM_ALL;
	} else if (flags & FMT_O_RDWR) {
		*perm = FMT_PERM_CONSISTENT_READ | FMT_PERM_WRITE |
			FMT_PERM_WRITE_UNCHANGED | FMT_PERM_RESIZE;
		*shared = FMT_PERM_CONSISTENT_READ | FMT_PERM_WRITE_UNCHANGED;
	} else {
		*perm = FMT_PERM_CONSISTENT_READ;
		*shared = FMT_PERM_ALL & ~(FMT_PERM_WRITE | FMT_PERM_RESIZE);
	}
}

static int lock_take(int fd, const char *path, unsigned perm, unsigned shared)
{
	struct flock fl;
	int i, r;

	for (i = 0; i < LOCK_NBITS; i++) {
		short t = (perm & (1u << i)) ? F_RDLCK : F_UNLCK;

		r = lock_byte(fd, F_OFD_SETLK, t, LOCK_BASE_PERM + i, &fl);
		if (r == 0) {
			t = (shared & (1u << i)) ? F_UNLCK : F_RDLCK;
			r = lock_byte(fd, F_OFD_SETLK, t, LOCK_BASE_SHARED + i, &fl);
		}
		if (r == -EAGAIN || r == -EACCES)
			return err_set(-EAGAIN, "Failed to get \"%s\" lock on '%s'",
				       lock_perm_names[i], path);
		if (r < 0)
			return r;   /* EINVAL/ENOLCK: filesystem without locks */
	}
	return 0;
}

int fmt_lock_apply(int fd, const char *path, unsigned perm, unsigned shared)
{
	int i, r;

	r = lock_take(fd, path, perm, shared);
	if (r == -EAGAIN)
		return r;
	if (r < 0)
		return 0;           /* no lock support: go on, as QEMU does */
	for (i = 0; i < LOCK_NBITS; i++) {
		unsigned bit = 1u << i;

		if ((perm & bit) && lock_held_elsewhere(fd, LOCK_BASE_SHARED + i) > 0)
			return err_set(-EAGAIN, "Failed to get shared \"%s\" lock on '%s'"
				       ": Is another process using the image?",
				       lock_perm_names[i], path);
		if (!(shared & bit) && lock_held_elsewhere(fd, LOCK_BASE_PERM + i) > 0)
			return err_set(-EAGAIN, "Failed to get \"%s\" lock on '%s'"
				       ": Is another process using the image?",
				       lock_perm_names[i], path);
	}
	return 0;
}
