#!/usr/bin/env bats
# The hardening configure chose must be visible in the binary's ELF
# headers: PIE, full RELRO, a non-executable stack, the stack protector
# and fortified libc calls.  NSPS_HARDEN holds the flags configure
# settled on, so a build without a flag (--disable-hardening, no
# optimisation for fortify) says so instead of failing.

load helper

setup() {
	command -v readelf >/dev/null ||
	    fail_with "readelf (binutils) is needed to read the binary"
	FLAGS=" ${NSPS_HARDEN-} "
	[ "$FLAGS" != "  " ] ||
	    skip "built with --disable-hardening: no hardening flags to check"
}

# has_flag FLAG: configure put FLAG into the build.
has_flag() {
	[[ $FLAGS == *" $1 "* ]]
}

@test "hardening: the binary is a position-independent executable" {
	has_flag -pie || skip "the compiler did not take -pie"
	run readelf -hW "$CONNECTOR"
	[[ $output == *"Type:"*"DYN"* ]] || fail_with "ELF type is not DYN"
	run readelf -dW "$CONNECTOR"
	[[ $output == *"FLAGS_1"*"PIE"* ]] || fail_with "no PIE in FLAGS_1"
}

@test "hardening: full RELRO (GNU_RELRO segment and BIND_NOW)" {
	has_flag -Wl,-z,relro,-z,now || skip "the linker did not take -z relro -z now"
	run readelf -lW "$CONNECTOR"
	[[ $output == *GNU_RELRO* ]] || fail_with "no GNU_RELRO segment"
	run readelf -dW "$CONNECTOR"
	grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW' <<<"$output" ||
	    fail_with "no BIND_NOW: RELRO is only partial"
}

@test "hardening: the stack is not executable" {
	run readelf -lW "$CONNECTOR"
	local stack
	stack=$(grep GNU_STACK <<<"$output") || fail_with "no GNU_STACK header"
	[[ $stack == *" RW "* ]] || fail_with "stack flags are not RW: $stack"
}

@test "hardening: the stack protector is compiled in" {
	has_flag -fstack-protector-strong || skip "the compiler did not take -fstack-protector-strong"
	run readelf --dyn-syms -W "$CONNECTOR"
	[[ $output == *__stack_chk_fail* ]] || fail_with "no __stack_chk_fail"
}

@test "hardening: libc calls are fortified" {
	has_flag -D_FORTIFY_SOURCE=2 ||
	    skip "_FORTIFY_SOURCE is off here (no optimisation, sanitizers, or set by CPPFLAGS)"
	run readelf --dyn-syms -W "$CONNECTOR"
	grep -Eq '__[a-z_]+_chk@' <<<"$output" || fail_with "no fortified _chk symbols"
	[[ $output == *__snprintf_chk* ]] || fail_with "snprintf is not fortified"
}
