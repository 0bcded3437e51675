/*
 * vm-img subcommands not built yet: each says so in one line and exits 1.
 */
#include "common/common.h"
#include "img.h"

static int img_not_yet(const char *name)
{
	report("%s: not implemented yet", name);
	return 1;
}

int cmd_amend(int argc, char **argv) { return img_not_yet("amend"); }
int cmd_bench(int argc, char **argv) { return img_not_yet("bench"); }
int cmd_commit(int argc, char **argv) { return img_not_yet("commit"); }
int cmd_dd(int argc, char **argv) { return img_not_yet("dd"); }
int cmd_measure(int argc, char **argv) { return img_not_yet("measure"); }
int cmd_rebase(int argc, char **argv) { return img_not_yet("rebase"); }
int cmd_resize(int argc, char **argv) { return img_not_yet("resize"); }
int cmd_snapshot(int argc, char **argv) { return img_not_yet("snapshot"); }
