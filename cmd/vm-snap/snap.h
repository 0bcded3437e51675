/* vm-snap's subcommands, one file per group. */
#ifndef VM_SNAP_H
#define VM_SNAP_H

struct snap_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);   /* NULL: not implemented yet */
	const char *synopsis;
	const char *description;
};

/* offline.c: internal snapshots of an image not in use */
int snap_list(int argc, char **argv);
int snap_create(int argc, char **argv);
int snap_apply(int argc, char **argv);
int snap_delete(int argc, char **argv);

/* live.c: savevm/loadvm/delvm through a running machine's monitor */
int snap_save(int argc, char **argv);
int snap_load(int argc, char **argv);
int snap_del(int argc, char **argv);

/* chain.c: external overlays */
int snap_overlay(int argc, char **argv);
int snap_commit(int argc, char **argv);
int snap_stream(int argc, char **argv);

#endif
