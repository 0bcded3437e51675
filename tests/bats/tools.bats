#!/usr/bin/env bats
# Every tool of the suite: --help, --version, a one-line error and exit 1
# for a bad option, and a lint-clean man page that documents every option
# the tool lists in --help.

load helper

TOOLS="vm-img vm-nbd vm-run vm-net vm-mon vm-snap"

# Option tokens a tool prints in --help: -x, --long, and vm-run's -single.
help_options() {
	"$1" --help | grep -oE '(^|[[:space:],[|])--?[a-zA-Z][-a-zA-Z0-9_]*' |
		sed -E 's/^[[:space:],[|]//' | sort -u
}

@test "every tool answers --help on stdout with status 0" {
	for t in $TOOLS; do
		run "$t" --help
		[ "$status" -eq 0 ] || { echo "$t --help: status $status"; return 1; }
		[[ "$output" == *Usage* || "$output" == *usage* ]] || { echo "$t: no usage line"; return 1; }
	done
}

@test "every tool answers --version with its name and version" {
	for t in $TOOLS; do
		run "$t" --version
		[ "$status" -eq 0 ]
		[[ "${lines[0]}" =~ ^$t\ version\ [0-9]+\.[0-9]+\.[0-9]+ ]] || { echo "$t: ${lines[0]}"; return 1; }
	done
}

@test "a bad option to any tool gives one line on stderr and status 1" {
	for t in $TOOLS; do
		run --separate-stderr "$t" --no-such-option-xyz
		[ "$status" -eq 1 ] || { echo "$t: status $status"; return 1; }
		[ -z "$output" ] || { echo "$t printed on stdout: $output"; return 1; }
		[ "${#stderr_lines[@]}" -eq 1 ] || { echo "$t: ${#stderr_lines[@]} lines: $stderr"; return 1; }
		[[ "$stderr" == "$t: "* ]] || { echo "$t: $stderr"; return 1; }
		[[ "$stderr" == *no-such-option-xyz* ]] || { echo "$t does not name the option: $stderr"; return 1; }
	done
}

@test "every tool has a man page that mandoc lints clean" {
	require mandoc
	for t in $TOOLS; do
		[ -f "$VM_TOP/man/$t.1" ] || { echo "missing man/$t.1"; return 1; }
		run mandoc -T lint -W warning "$VM_TOP/man/$t.1"
		[ "$status" -eq 0 ] && [ -z "$output" ] || { echo "$t.1: $output"; return 1; }
	done
}

@test "every option in each tool's --help appears in its man page" {
	require mandoc
	for t in $TOOLS; do
		page=$(mandoc -T ascii "$VM_TOP/man/$t.1" | col -b)
		for opt in $(help_options "$t"); do
			grep -qwF -- "$opt" <<<"$page" || { echo "$t: $opt is not in man/$t.1"; return 1; }
		done
	done
}

@test "the man page check notices an undocumented option" {
	require mandoc
	page=$(mandoc -T ascii "$VM_TOP/man/vm-snap.1" | col -b)
	! grep -qwF -- "--frobnicate" <<<"$page"
}

@test "make install puts every tool and man page under DESTDIR/PREFIX" {
	case "$VM_BUILD" in */o/san) san=1 ;; *) san= ;; esac
	run make -C "$VM_TOP" --no-print-directory -s install SAN="$san" DESTDIR="$T/root" PREFIX=/usr
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	for t in $TOOLS; do
		[ -x "$T/root/usr/bin/$t" ] || { echo "missing bin/$t"; return 1; }
		[ -f "$T/root/usr/share/man/man1/$t.1" ] || { echo "missing man1/$t.1"; return 1; }
	done
	run "$T/root/usr/bin/vm-snap" --version
	[ "$status" -eq 0 ]
}
