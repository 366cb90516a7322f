dnl Copyright (c) 2026 The nsps-connector authors
dnl SPDX-License-Identifier: ISC (see LICENSE)
# Build options of nsps-connector: hardening (on by default),
# sanitizers and libFuzzer harnesses.  Each flag is tried on the
# compiler at hand, so an older gcc or clang simply goes without it.

# NSPS_TRY_CFLAG(FLAG, VAR): appends FLAG to VAR when the compiler
# accepts it without a warning.
AC_DEFUN([NSPS_TRY_CFLAG], [
	AC_MSG_CHECKING([whether $CC accepts $1])
	nsps_save_CFLAGS=$CFLAGS
	CFLAGS="$CFLAGS -Werror $1"
	AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <string.h>]],
	    [[char b[64]; return (int)strlen(strcpy(b, "x"));]])],
	    [AC_MSG_RESULT([yes]); $2="$$2 $1"], [AC_MSG_RESULT([no])])
	CFLAGS=$nsps_save_CFLAGS
])

# NSPS_TRY_LDFLAG(FLAG, VAR): appends FLAG to VAR when a program links
# with it.
AC_DEFUN([NSPS_TRY_LDFLAG], [
	AC_MSG_CHECKING([whether $CC links with $1])
	nsps_save_LDFLAGS=$LDFLAGS
	LDFLAGS="$LDFLAGS -Werror $1"
	AC_LINK_IFELSE([AC_LANG_PROGRAM([[]], [[return 0;]])],
	    [AC_MSG_RESULT([yes]); $2="$$2 $1"], [AC_MSG_RESULT([no])])
	LDFLAGS=$nsps_save_LDFLAGS
])

# NSPS_BUILD_OPTIONS: --disable-hardening, --enable-sanitizers and
# --enable-fuzzing.  Sets HARDEN_CPPFLAGS, HARDEN_CFLAGS, HARDEN_LDFLAGS
# (the connector's own flags, sanitizers included) and FUZZ_CFLAGS, and
# the FUZZING conditional.
AC_DEFUN([NSPS_BUILD_OPTIONS], [
	AC_ARG_ENABLE([hardening],
	    [AS_HELP_STRING([--disable-hardening],
	    [build without the hardening flags (fortify, stack protector, PIE, full RELRO)])],
	    [], [enable_hardening=yes])
	AC_ARG_ENABLE([sanitizers],
	    [AS_HELP_STRING([--enable-sanitizers],
	    [build with AddressSanitizer and UndefinedBehaviorSanitizer, no recovery])],
	    [], [enable_sanitizers=no])
	AC_ARG_ENABLE([fuzzing],
	    [AS_HELP_STRING([--enable-fuzzing],
	    [also build the libFuzzer harnesses in fuzz/ (needs clang)])],
	    [], [enable_fuzzing=no])

	HARDEN_CPPFLAGS=
	HARDEN_CFLAGS=
	HARDEN_LDFLAGS=
	AS_IF([test "x$enable_hardening" != xno], [
		# Fortify needs optimisation to do anything (glibc warns
		# without it), fights the sanitizers' own interceptors, and
		# is left alone when the caller's CPPFLAGS already set it
		# (dpkg-buildflags does).
		AC_MSG_CHECKING([whether to define _FORTIFY_SOURCE])
		AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[]], [[
#if !defined(__OPTIMIZE__) || defined(_FORTIFY_SOURCE)
#error no fortify here
#endif
		]])], [nsps_fortify=yes], [nsps_fortify=no])
		AS_IF([test "x$enable_sanitizers" = xyes ||
		    test "x$enable_fuzzing" = xyes], [nsps_fortify=no])
		AC_MSG_RESULT([$nsps_fortify])
		AS_IF([test "x$nsps_fortify" = xyes],
		    [HARDEN_CPPFLAGS="-D_FORTIFY_SOURCE=2"])
		NSPS_TRY_CFLAG([-fstack-protector-strong], [HARDEN_CFLAGS])
		NSPS_TRY_CFLAG([-fstack-clash-protection], [HARDEN_CFLAGS])
		NSPS_TRY_CFLAG([-fcf-protection], [HARDEN_CFLAGS])
		NSPS_TRY_CFLAG([-fPIE], [HARDEN_CFLAGS])
		NSPS_TRY_LDFLAG([-pie], [HARDEN_LDFLAGS])
		NSPS_TRY_LDFLAG([-Wl,-z,relro,-z,now], [HARDEN_LDFLAGS])
		NSPS_TRY_LDFLAG([-Wl,-z,noexecstack], [HARDEN_LDFLAGS])
	])

	nsps_san="-fsanitize=address,undefined -fno-sanitize-recover=all"
	AS_IF([test "x$enable_sanitizers" = xyes], [
		nsps_san_ok=
		NSPS_TRY_LDFLAG([$nsps_san], [nsps_san_ok])
		AS_IF([test -z "$nsps_san_ok"],
		    [AC_MSG_ERROR([$CC cannot build with $nsps_san])])
		HARDEN_CFLAGS="$HARDEN_CFLAGS $nsps_san -fno-omit-frame-pointer -g"
		HARDEN_LDFLAGS="$HARDEN_LDFLAGS $nsps_san"
	])

	FUZZ_CFLAGS=
	AS_IF([test "x$enable_fuzzing" = xyes], [
		# libFuzzer brings main() and wants the entry point.
		AC_MSG_CHECKING([whether $CC builds libFuzzer targets])
		nsps_save_CFLAGS=$CFLAGS
		CFLAGS="$CFLAGS -fsanitize=fuzzer,address,undefined"
		AC_LINK_IFELSE([AC_LANG_SOURCE([[
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return d[0] == n; }
		]])], [nsps_fuzz_ok=yes], [nsps_fuzz_ok=no])
		CFLAGS=$nsps_save_CFLAGS
		AC_MSG_RESULT([$nsps_fuzz_ok])
		AS_IF([test "x$nsps_fuzz_ok" != xyes],
		    [AC_MSG_ERROR([--enable-fuzzing needs clang with libFuzzer (CC=clang, package libclang-rt-dev)])])
		FUZZ_CFLAGS="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
		# The harnesses link libnsps.a: its code is instrumented for
		# coverage and sanitized like theirs.
		HARDEN_CFLAGS="$HARDEN_CFLAGS -fsanitize=fuzzer-no-link"
		AS_IF([test "x$enable_sanitizers" != xyes], [
			HARDEN_CFLAGS="$HARDEN_CFLAGS $nsps_san -fno-omit-frame-pointer -g"
			HARDEN_LDFLAGS="$HARDEN_LDFLAGS $nsps_san"])
	])
	AM_CONDITIONAL([FUZZING], [test "x$enable_fuzzing" = xyes])

	AC_SUBST([HARDEN_CPPFLAGS])
	AC_SUBST([HARDEN_CFLAGS])
	AC_SUBST([HARDEN_LDFLAGS])
	AC_SUBST([FUZZ_CFLAGS])
])
