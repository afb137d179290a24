/* Test helper: writes md superblocks (0.90, 1.0, 1.1, 1.2) into an image file, byte for
 * byte as mdadm lays them out, since the host has no md driver to run mdadm --create.
 * libblkid and `mdadm --examine` read them like real ones. */
#pragma once

#include <endian.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define MD_MAGIC 0xa92b4efcU

static inline void md_put32(uint8_t *b, size_t off, uint32_t v)
{
	v = htole32(v);
	memcpy(b + off, &v, 4);
}
static inline void md_put64(uint8_t *b, size_t off, uint64_t v)
{
	v = htole64(v);
	memcpy(b + off, &v, 8);
}

/* Superblock 1.x: 256 bytes + 2 bytes per device role, checksummed. */
static inline int md_write_v1(int fd, uint64_t dev_size, const char *ver, const char *name,
			      uint8_t uuid_byte, uint64_t events)
{
	uint8_t sb[512] = {0};
	uint64_t off = !strcmp(ver, "1.1")   ? 0
		       : !strcmp(ver, "1.2") ? 4096
					     : (dev_size & ~0xfffULL) - 0x2000;
	uint32_t max_dev = 2;
	md_put32(sb, 0, MD_MAGIC);
	md_put32(sb, 4, 1);		/* major */
	memset(sb + 16, uuid_byte, 16); /* set uuid */
	snprintf((char *)sb + 32, 32, "%s", name);
	md_put64(sb, 64, 1700000000);			   /* ctime */
	md_put32(sb, 72, 1);				   /* level */
	md_put64(sb, 80, 2048);				   /* size (sectors) */
	md_put32(sb, 92, 2);				   /* raid_disks */
	md_put64(sb, 128, !strcmp(ver, "1.0") ? 0 : 2048); /* data_offset */
	md_put64(sb, 136, 2048);			   /* data_size */
	md_put64(sb, 144, off >> 9);			   /* super_offset */
	md_put64(sb, 152, UINT64_MAX);			   /* recovery done */
	md_put32(sb, 160, 0);				   /* dev_number */
	memset(sb + 168, uuid_byte ^ 0x5a, 16);		   /* device uuid */
	md_put64(sb, 192, 1700000000);			   /* utime */
	md_put64(sb, 200, events);
	md_put64(sb, 208, UINT64_MAX); /* resync done */
	md_put32(sb, 220, max_dev);
	sb[256] = 0;
	sb[257] = 0; /* role of dev 0: slot 0 */
	sb[258] = 0xff;
	sb[259] = 0xff; /* dev 1: spare/none */
	uint64_t sum = 0;
	size_t len = 256 + 2 * max_dev;
	for (size_t i = 0; i + 4 <= len; i += 4) {
		uint32_t w;
		memcpy(&w, sb + i, 4);
		sum += le32toh(w);
	}
	md_put32(sb, 216, (uint32_t)((sum & 0xffffffff) + (sum >> 32)));
	return pwrite(fd, sb, sizeof(sb), (off_t)off) == sizeof(sb) ? 0 : -1;
}

/* Superblock 0.90: 4 KiB at the last 64 KiB-aligned block but one, native (LE) words. */
static inline int md_write_v090(int fd, uint64_t dev_size, uint8_t uuid_byte)
{
	uint8_t sb[4096] = {0};
	uint64_t off = (dev_size & ~0xffffULL) - 0x10000;
	uint32_t w[] = {
	    MD_MAGIC,	0,	     90,	  0,	      0, 0x01010101U * uuid_byte,
	    1700000000, 1,	     1024,	  2,	      2, 0,
	    0,		0x02020202U, 0x03030303U, 0x04040404U};
	for (size_t i = 0; i < sizeof(w) / 4; i++)
		md_put32(sb, i * 4, w[i]);
	return pwrite(fd, sb, sizeof(sb), (off_t)off) == sizeof(sb) ? 0 : -1;
}
