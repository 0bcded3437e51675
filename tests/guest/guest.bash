# Shared by the bats tests that boot the test guest: `guest_require`
# builds it (once; the .debs are cached in $VM_CACHE) or skips the test
# with the reason, and sets GUEST_KERNEL and GUEST_INITRD.
VM_CACHE=${VM_CACHE:-$VM_TOP/.cache/guest}

guest_require() {
	local out
	if [ ! -s "$VM_CACHE/vmlinuz" ] || [ ! -s "$VM_CACHE/initramfs.cpio.gz" ]; then
		mkdir -p "$VM_CACHE"
		out=$(flock "$VM_CACHE/.lock" "$VM_TOP/tests/guest/build-guest.sh" "$VM_CACHE" 2>&1)
		case $? in
		0) ;;
		2) skip "test guest unavailable: ${out##*: }" ;;
		*) echo "$out"; return 1 ;;
		esac
	fi
	GUEST_KERNEL=$VM_CACHE/vmlinuz
	GUEST_INITRD=$VM_CACHE/initramfs.cpio.gz
}
