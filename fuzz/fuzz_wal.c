/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The write-ahead log's reader (src/wal.c), on what a crash, a disk or
 * a recycled segment can leave: torn, truncated, bit-flipped and
 * replayed records.  The input is a generation (4 bytes) and the
 * records' region of a 64 KiB segment; its head and checkpoint blocks
 * are parsed from the input as well.  Every record the reader accepts
 * must lie within the segment, follow the one before it, name a valid
 * event_id and carry the checksum the writer computes.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "wal.h"
#include "common.h"

#define SEG_SIZE	WAL_SIZE_MIN

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char	 seg[SEG_SIZE];
	struct wal_rec		 r;
	uint64_t		 off, hsize, ckpt;
	uint32_t		 gen, hgen, crc;
	int64_t			 ms;

	if (size < 4)
		return 0;
	memcpy(&gen, data, 4);
	/* The blocks' parsers, on the input itself. */
	if (wal_head_parse(data, size, &hgen, &hsize) == 0 &&
	    (hgen == 0 || hsize % WAL_BLOCK != 0))
		abort();
	if (wal_ckpt_parse(data, size, gen, SEG_SIZE, &ckpt, &ms) == 0 &&
	    (ckpt < WAL_DATA || ckpt > SEG_SIZE || ckpt % WAL_ALIGN != 0))
		abort();
	memset(seg, 0, sizeof(seg));
	size -= 4;
	if (size > SEG_SIZE - WAL_DATA)
		size = SEG_SIZE - WAL_DATA;
	memcpy(seg + WAL_DATA, data + 4, size);
	for (off = WAL_DATA; wal_rec_parse(seg, SEG_SIZE, gen, off, &r);
	    off += r.len) {
		if (r.off != off || r.len < WAL_REC_HEAD ||
		    r.len % WAL_ALIGN != 0 || r.len > SEG_SIZE - off ||
		    !event_id_valid(r.id, r.id_len) ||
		    r.id != (const char *)seg + off + WAL_REC_HEAD ||
		    r.body + r.body_len > (const char *)seg + off + r.len)
			abort();
		crc = crc32c(0, seg + off, 28);
		crc = crc32c(crc, r.id, r.id_len + r.meta_len + r.body_len);
		if (memcmp(&crc, seg + off + 28, 4) != 0)
			abort();
	}
	return 0;
}
