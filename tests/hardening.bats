#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The hardening configure chose must be visible in the ELF headers of
# both programs (nsps-connector, nsps-deliver): PIE, full RELRO, a
# non-executable stack, the stack protector and fortified libc calls.  NSPS_HARDEN holds the flags configure
# settled on, so a build without a flag (--disable-hardening, no
# optimisation for fortify) says so instead of failing.

load helper

setup() {
	command -v readelf >/dev/null ||
	    fail_with "readelf (binutils) is needed to read the binary"
	FLAGS=" ${NSPS_HARDEN-} "
	[ "$FLAGS" != "  " ] ||
	    skip "built with --disable-hardening: no hardening flags to check"
	BINS=("$CONNECTOR")
	[ -z "${NSPS_DELIVER:-}" ] || BINS+=("$NSPS_DELIVER")
}

# has_flag FLAG: configure put FLAG into the build.
has_flag() {
	[[ $FLAGS == *" $1 "* ]]
}

@test "hardening: the programs are position-independent executables" {
	has_flag -pie || skip "the compiler did not take -pie"
	local b
	for b in "${BINS[@]}"; do
		run readelf -hW "$b"
		[[ $output == *"Type:"*"DYN"* ]] || fail_with "$b: ELF type is not DYN"
		run readelf -dW "$b"
		[[ $output == *"FLAGS_1"*"PIE"* ]] || fail_with "$b: no PIE in FLAGS_1"
	done
}

@test "hardening: full RELRO (GNU_RELRO segment and BIND_NOW)" {
	has_flag -Wl,-z,relro,-z,now || skip "the linker did not take -z relro -z now"
	local b
	for b in "${BINS[@]}"; do
		run readelf -lW "$b"
		[[ $output == *GNU_RELRO* ]] || fail_with "$b: no GNU_RELRO segment"
		run readelf -dW "$b"
		grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW' <<<"$output" ||
		    fail_with "$b: no BIND_NOW: RELRO is only partial"
	done
}

@test "hardening: the stack is not executable" {
	local b stack
	for b in "${BINS[@]}"; do
		run readelf -lW "$b"
		stack=$(grep GNU_STACK <<<"$output") || fail_with "$b: no GNU_STACK header"
		[[ $stack == *" RW "* ]] || fail_with "$b: stack flags are not RW: $stack"
	done
}

@test "hardening: the stack protector is compiled in" {
	has_flag -fstack-protector-strong || skip "the compiler did not take -fstack-protector-strong"
	local b
	for b in "${BINS[@]}"; do
		run readelf --dyn-syms -W "$b"
		[[ $output == *__stack_chk_fail* ]] || fail_with "$b: no __stack_chk_fail"
	done
}

@test "hardening: libc calls are fortified" {
	has_flag -D_FORTIFY_SOURCE=2 ||
	    skip "_FORTIFY_SOURCE is off here (no optimisation, sanitizers, or set by CPPFLAGS)"
	local b
	for b in "${BINS[@]}"; do
		run readelf --dyn-syms -W "$b"
		grep -Eq '__[a-z_]+_chk@' <<<"$output" || fail_with "$b: no fortified _chk symbols"
		[[ $output == *__snprintf_chk* ]] || fail_with "$b: snprintf is not fortified"
	done
}
