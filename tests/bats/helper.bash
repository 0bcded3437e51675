# Shared set-up for the bats tests: the tools under test come first on
bats_require_minimum_version 1.5.0
# PATH ($VM_BUILD/bin, set by tests/run-all; o/rel by default), each test
# has its own scratch folder $T, and a missing peer skips with a reason.
top=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
VM_BUILD=${VM_BUILD:-$top/o/rel}
export PATH="$VM_BUILD/bin:$PATH"
export VM_TOP="$top"
# vm-run's unpacked-kernel cache: one for the whole suite, in the tree's
# .cache, not the user's ~/.cache (tests of the cache itself set their own)
export XDG_CACHE_HOME="$top/.cache/xdg"

if [ -d /usr/lib/bats/bats-support ]; then
	load /usr/lib/bats/bats-support/load
	load /usr/lib/bats/bats-assert/load
	load /usr/lib/bats/bats-file/load
fi

setup() {
	T=$BATS_TEST_TMPDIR
}

# require CMD...: skip this test unless every command is installed.
require() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
	done
}

# The first line of stderr+stdout of the last `run`, for one-line error checks.
one_line_error() {
	[ "${#lines[@]}" -eq 1 ] || { echo "expected one line, got:"; printf '%s\n' "${lines[@]}"; return 1; }
}

# wait_text FILE PATTERN [SECONDS]: until a line of FILE matches the grep
# PATTERN (up to SECONDS, 30 by default); else show FILE and fail.
wait_text() {
	local i
	for i in $(seq $((${3:-30} * 10))); do
		grep -aq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "no '$2' in $1:"; cat "$1"
	return 1
}

# stop_pid PID: end a background child of this test and reap it.  SIGTERM
# first; a peer that loses it (qemu-nbd drops a SIGTERM that arrives while it
# is still starting up and then serves forever) gets SIGKILL after 5 s, so a
# test never waits on it without end.
stop_pid() {
	local i
	kill "$1" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
