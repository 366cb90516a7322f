/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * Shared by the libFuzzer harnesses: one fixed configuration, and the
 * libFuzzer entry points' prototypes (kept here so -Wmissing-prototypes
 * stays quiet).
 */
#ifndef NSPS_FUZZ_COMMON_H
#define NSPS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

struct config;

#define FUZZ_TOKEN	"fuzz-token-0123456789"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	 LLVMFuzzerInitialize(int *, char ***);

const struct config *fuzz_config(void);

#endif /* NSPS_FUZZ_COMMON_H */
