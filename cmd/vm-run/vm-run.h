/*
 * vm-run: the pieces of the command, around lib/hw.  main.c parses the
 * command line into struct vmrun (then acts); chardev.c holds the serial
 * back-ends and the stdio console with its Ctrl-a escapes; disk.c the
 * block back-ends (NBD clients, vm-nbd children); net.c the NIC cable.
 */
#ifndef VM_RUN_H
#define VM_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/hw.h"

struct machine;

struct vmrun_drive {
	char *file;
	const char *format;
	enum hw_disk_if iface;
	bool readonly, cdrom, snapshot;
	const char *cache;
	int index;
	const char *id;	/* -drive id=, or NULL */
	/* -drive rerror=/werror= (report, ignore, stop, enospc), or NULL
	 * for QEMU's defaults (report; enospc) */
	const char *rerror, *werror;
};

struct vmrun {
	struct hw_config hw;
	const char *serial[HW_MAX_SERIAL];
	int nserial;
	struct vmrun_drive drives[HW_MAX_DISKS];
	int ndrives;
	const char *nics[HW_MAX_NICS];	/* -nic specs, or -device specs */
	bool nic_device[HW_MAX_NICS];	/* nics[i] is a -device NIC */
	int nnics;
	const char *netdevs[HW_MAX_NICS];	/* -netdev specs */
	int nnetdevs;
	bool nographic, nodefaults, snapshot, daemonize, accel_auto, watchdog, perfmap;
	const char *name, *pidfile, *virtcon;
	const char *loadvm;	/* -loadvm TAG, or NULL */
	const char *vm_nbd;	/* path of vm-nbd for -drive file=IMAGE */
	const char *qmp[4], *monitors[4];	/* -qmp, -monitor */
	int nqmp, nmonitors;
	struct vmrun_mon *mon;
};

/* chardev.c */
struct vmrun_io;
struct vmrun_io *io_new(void);
/* Open serial back-end spec ("stdio", "file:P", "unix:P[,server]", "pty",
 * "none") for serial port idx (-1: the virtio console) into *be. */
int chardev_open(struct vmrun_io *io, const char *spec, int idx, struct hw_char_backend *be);
int net_open(struct vmrun_io *io, const char *spec, int idx, struct hw_nic *nic);
/* Start the I/O thread that feeds input to m, and the watchdog that
 * stops m when the accelerator shows no progress for `secs` (0: none). */
int io_start(struct vmrun_io *io, struct machine *m, int watchdog_secs);
void io_stop(struct vmrun_io *io);
bool io_watchdog_fired(struct vmrun_io *io);
void io_restore_tty(struct vmrun_io *io);
void io_free(struct vmrun_io *io);

/* net.c: -netdev and -device NICs (net_add_device: 1 if spec is no NIC),
 * and opening NIC idx's back-end (a vm-net child for user). */
int net_add_netdev(struct vmrun *o, const char *spec);
int net_add_device(struct vmrun *o, const char *spec);
int net_nic_open(const struct vmrun *o, struct vmrun_io *io, int idx, struct hw_nic *nic);
/* The control socket of NIC idx's vm-net child (hostfwd_add, set_link
 * lines), or -1. */
int net_ctl_fd(int idx);
/* Send one control line to NIC idx's vm-net child; output lines in *out;
 * 0, or -EIO with vm-net's "ERROR:" message. */
int net_ctl(int idx, const char *cmd, char **out);
/* set_link: the guest NIC's link state, forwarded to a vm-net child. */
int net_set_link(struct machine *m, int idx, bool up);
int net_parse_mac(const char *s, uint8_t *mac);
char *net_describe(const struct vmrun *o, int idx);

/* monitor.c: -qmp and -monitor on a loop thread of their own; attach
 * the machine while it runs; detach raises SHUTDOWN when `final`. */
struct vmrun_mon;
int mon_open(struct vmrun *o, struct vmrun_mon **out);
void mon_attach(struct vmrun_mon *mon, struct machine *m);
void mon_detach(struct vmrun_mon *mon, enum hw_stop why, bool final);
void mon_free(struct vmrun_mon *mon);
/* Ctrl-a c on the stdio console (called from the I/O thread). */
void mon_console_enter(struct vmrun_mon *mon);
void mon_console_input(struct vmrun_mon *mon, uint8_t b);
void io_set_monitor(struct vmrun_io *io, struct vmrun_mon *mon);

/* nbdctl.c: the control channel to drive i's vm-nbd child (vm-nbd
 * --control-fd; protocol in cmd/vm-nbd/control.c).  Drives opened from
 * an NBD URI have none.  Calls are serialised per drive; 0 or -errno
 * with vm-nbd's message recorded. */
void nbdctl_register(int drive, int fd);
bool nbdctl_has(int drive);
void nbdctl_close_all(void);
/* One request line (no newline) plus payload; the reply's payload in
 * *reply (malloc'd, NUL-terminated, may be NULL to ignore). */
int nbdctl_call(int drive, const char *line, const void *data, size_t len,
		uint8_t **reply, size_t *rlen);
/* block_resize: the image grows or shrinks to size bytes. */
int nbdctl_resize(int drive, uint64_t size);
/* The VM-state area of the image's current state, from offset 0. */
int nbdctl_vmstate_write(int drive, const uint8_t *buf, size_t len);
int nbdctl_vmstate_read(int drive, uint8_t *buf, size_t len);
/* The VM state of snapshot enc_name (percent-encoded) without reverting
 * the image; -errno where vm-nbd cannot (a -s overlay, --image-opts). */
int nbdctl_snapshot_vmstate_read(int drive, const char *enc_name, uint8_t *buf, size_t len);
/* Snapshot names on the channel are percent-encoded (spaces, '%'). */

/* savevm.c: VM snapshots in the writable drives' qcow2 images through
 * their vm-nbd children (savevm, loadvm, delvm, info snapshots,
 * -loadvm).  tag NULL or "" for savevm: QEMU's vm-YYYYMMDDHHMMSS.  A
 * running guest is paused around the operation and resumed; after a
 * failed loadvm it stays paused.  0 or -errno with QEMU's message. */
struct hmp_out;
void savevm_clock_start(void);
int savevm_save(const struct vmrun *o, struct machine *m, const char *tag);
int savevm_load(const struct vmrun *o, struct machine *m, const char *tag);
int savevm_delete(const struct vmrun *o, const char *tag);
int savevm_info(const struct vmrun *o, struct hmp_out *out);
/* The same on chosen drives (QMP snapshot-save/-load/-delete): idx[] are
 * drive indices, vm the one holding the VM state. */
int savevm_save_on(struct machine *m, const char *tag, const int *idx, int n, int vm);
int savevm_load_on(struct machine *m, const char *tag, const int *idx, int n, int vm);
int savevm_delete_on(const struct vmrun *o, const char *tag, const int *idx, int n);
/* Drive i's name as the monitor shows it (ide0-hd0, virtio0, id=). */
/* Can drive i hold internal snapshots (a writable qcow2 in vm-nbd)? */
bool savevm_drive_can(int i);
/* Who hears of the guest stopping and resuming around the work ("STOP",
 * "RESUME"); fn NULL: nobody. */
void savevm_set_run_events(void (*fn)(void *opaque, const char *name), void *opaque);

/* disk.c */
int disk_open(const struct vmrun *o, const struct vmrun_drive *d, struct hw_disk *out);
void disk_close_all(void);
/* The monitor's change: open file (format, or probed when NULL) as a
 * read-only medium the way -drive opens images, and close one that was
 * taken out (any thread).  0 or -errno with QEMU's message. */
int disk_open_medium(const struct vmrun *o, const char *file, const char *format,
		     struct hw_disk *out);
void disk_close_medium(const struct hw_disk *d);
/* block_resize: grow or shrink drive idx's image through its back-end, and
 * check the drive's requests against the new size;
 * 0 or -errno (-ENOTSUP when the back-end cannot). */
int disk_resize(const struct vmrun *o, int idx, uint64_t size);
/* QEMU's default drive names (ide0-hd0, ide1-cd0, virtio0) unless
 * -drive id= names it; malloc'd. */
char *disk_drive_name(const struct vmrun *o, int i);

#endif
