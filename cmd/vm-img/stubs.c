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

int cmd_bench(int argc, char **argv) { return img_not_yet("bench"); }
int cmd_commit(int argc, char **argv) { return img_not_yet("commit"); }
int cmd_dd(int argc, char **argv) { return img_not_yet("dd"); }
int cmd_rebase(int argc, char **argv) { return img_not_yet("rebase"); }
