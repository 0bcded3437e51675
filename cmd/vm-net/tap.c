/*
 * The tap back-end: a host tap device (the kernel's TUN/TAP driver,
 * Documentation/networking/tuntap.rst) as the LAN's local member, like
 * QEMU's -netdev tap.  Each read(2) of the device gives one Ethernet frame
 * the host sent, each write(2) hands one frame to the host; IFF_NO_PI
 * leaves out the packet information header.
 *
 * Keys (QEMU's): ifname= (default: the kernel picks tapN), script= and
 * downscript= ("no", the default here, or a program run as
 * `PROGRAM IFNAME` after creation and before closing), id=.  Creating a
 * tap device needs /dev/net/tun and CAP_NET_ADMIN (or a persistent device
 * owned by the user).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net.h"

struct tap {
	struct lan *lan;
	int fd;
	char ifname[IFNAMSIZ];
	char *downscript;
	uint8_t buf[FRAME_MAX];
	uint64_t write_drops;
};

static const char *const tap_keys[] = { "id", "ifname", "script", "downscript", NULL };

/* Run `prog ifname` and wait for it; 0 when it exits 0. */
static int tap_script(const char *prog, const char *ifname)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return err_set_errno(errno, "fork");
	if (pid == 0) {
		execl(prog, prog, ifname, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return err_set_errno(errno, "waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_set(-EIO, "%s %s failed (status %d)", prog, ifname,
			       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}

static bool tap_script_on(const char *s)
{
	return s && *s && strcmp(s, "no");
}

static void tap_on_read(struct loop *l, int fd, unsigned events, void *opaque)
{
	struct tap *t = opaque;

	for (int i = 0; i < 64; i++) {
		ssize_t n = read(fd, t->buf, sizeof(t->buf));

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("%s: read: %s", t->ifname, strerror(errno));
			return;
		}
		if (n >= FRAME_MIN)
			lan_input(t->lan, NULL, t->buf, (size_t)n);
	}
}

static int tap_create(struct tap *t, const char *ifname)
{
	struct ifreq ifr = { 0 };

	t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0)
		return err_set_errno(errno, "/dev/net/tun");
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ifname && strlen(ifname) >= IFNAMSIZ)
		return err_set(-EINVAL, "ifname=%s: longer than %d characters", ifname,
			       IFNAMSIZ - 1);
	if (ifname)
		strcpy(ifr.ifr_name, ifname);
	if (ioctl(t->fd, TUNSETIFF, &ifr) < 0)
		return err_set_errno(errno, "%s: cannot create the tap device",
				     ifname ? ifname : "tap");
	memcpy(t->ifname, ifr.ifr_name, IFNAMSIZ);
	t->ifname[IFNAMSIZ - 1] = 0;
	return 0;
}

static void tap_close(void *state)
{
	struct tap *t = state;

	if (!t)
		return;
	if (t->fd >= 0) {
		loop_del(t->lan->loop, t->fd);
		close(t->fd);
		if (t->downscript && tap_script(t->downscript, t->ifname) < 0)
			log_warn("%s", err_msg());
	}
	free(t->downscript);
	free(t);
}

static int tap_open(struct lan *lan, const struct kvlist *opts, void **state)
{
	struct tap *t = xzalloc(sizeof(*t));
	const char *script = kv_get(opts, "script");
	const char *down = kv_get(opts, "downscript");
	int r;

	t->lan = lan;
	t->fd = -1;
	if ((r = tap_create(t, kv_get(opts, "ifname"))) < 0)
		goto fail;
	if (tap_script_on(script) && (r = tap_script(script, t->ifname)) < 0)
		goto fail;
	if (tap_script_on(down))
		t->downscript = xstrdup(down);
	if ((r = loop_add(lan->loop, t->fd, LOOP_IN, tap_on_read, t)) < 0)
		goto fail;
	LOG(LOG_NET, "tap: %s", t->ifname);
	*state = t;
	return 0;
fail:
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	tap_close(t);
	return r;
}

static void tap_receive(void *state, const uint8_t *frame, size_t len)
{
	struct tap *t = state;

	if (write(t->fd, frame, len) < 0) {
		if (errno != EAGAIN && errno != EIO)
			log_warn("%s: write: %s", t->ifname, strerror(errno));
		t->write_drops++;
	}
}

static void tap_info(void *state, FILE *out)
{
	struct tap *t = state;

	fprintf(out, "tap %s write-drops %llu\n", t->ifname,
		(unsigned long long)t->write_drops);
}

const struct net_backend tap_backend = {
	.name = "tap",
	.summary = "a host tap device: ifname=, script=no, downscript=no",
	.keys = tap_keys,
	.open = tap_open,
	.receive = tap_receive,
	.info = tap_info,
	.close = tap_close,
};
