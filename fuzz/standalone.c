/*
 * A main() for the fuzz harnesses when they are built without libFuzzer:
 * feed every file named on the command line (or in fuzz/corpus/NAME/ when
 * none is) to LLVMFuzzerTestOneInput once, printing TAP, so the ordinary
 * build and its sanitizers replay the seed corpus in `make check`.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay(const char *path, int n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	if (!f) {
		printf("not ok %d - cannot open %s\n", n, path);
		return 1;
	}
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc(len > 0 ? (size_t)len : 1);
	if (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len)
		len = 0;
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	printf("ok %d - replay %s\n", n, path);
	return 0;
}

int main(int argc, char **argv)
{
	char dir[512], path[1024];
	const char *name = strrchr(argv[0], '/');
	struct dirent *e;
	int n = 0, bad = 0;
	DIR *d;

	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			bad |= replay(argv[i], ++n);
		printf("1..%d\n", n);
		return bad;
	}
	name = name ? name + 1 : argv[0];
	if (!strncmp(name, "fuzz-", 5))
		name += 5;
	snprintf(dir, sizeof(dir), "%s/fuzz/corpus/%s", getenv("VM_TOP") ? getenv("VM_TOP") : ".", name);
	d = opendir(dir);
	if (!d) {
		printf("not ok 1 - no corpus at %s\n1..1\n", dir);
		return 1;
	}
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			bad |= replay(path, ++n);
		}
	closedir(d);
	printf("1..%d\n", n);
	return bad;
}
