/* The cluster key kept on the node's cmpt-state (SPEC §5): typed once on the serial console
 * (`key install`) when the netboot image carries no key file, read back on later boots.
 *
 * Layout: one 4 KiB region at 512 KiB into every cmpt-state, after the journal's two
 * 256 KiB slots and before the configuration copies at 1 MiB (config_store.h): a 64-byte
 * header — magic CMPTKEY1, u32 format 1, u32 header size 64, u32 key length (32), u32 zero,
 * the 8-byte key id, BLAKE2b-256 of header bytes 0..31 and the key (integrity) — then the
 * key. A torn or corrupt region fails the hash and is ignored; the other devices' copies
 * still count. The key is stored as the key file holds it: readable by whoever reads the
 * disk, as the key file is by whoever reads the image. */
#pragma once

#include "journal.h"

#define KEY_STORE_OFFSET (512ULL << 10)
#define KEY_STORE_SIZE 4096
#define KEY_STORE_MAGIC "CMPTKEY1"
#define KEY_STORE_KEY_BYTES 32
#define KEY_STORE_ID_BYTES 8

/* Writes key (with its id) to every device. 0 when every device took it, else the last
 * error (-ENODEV without devices); ret_ok (may be NULL) counts the devices that did. */
int key_store_save(const struct journal_dev *devs, int n, const uint8_t key[KEY_STORE_KEY_BYTES],
		   const uint8_t id[KEY_STORE_ID_BYTES], int *ret_ok);
/* The first intact stored key whose id is `id` (any id when id is NULL) into key, its id
 * into ret_id (may be NULL). -ENOENT when none; -EKEYREJECTED when a key is stored but
 * under another id. */
int key_store_load(const struct journal_dev *devs, int n, const uint8_t *id,
		   uint8_t key[KEY_STORE_KEY_BYTES], uint8_t *ret_id);
/* Overwrites the region of every device with zeros (tests, `key forget`). */
int key_store_erase(const struct journal_dev *devs, int n);
