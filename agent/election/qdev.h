/* The quorum device (SPEC §7): one logical unit reached with libiscsi through the first
 * portal that answers, driven by the agent's loop (async API, the fd and events re-read
 * before every wait, iscsi_service at least once a second).
 *
 * Layout (512-byte blocks): slot i at LBA QDEV_SLOT_LBA + i, one per member of the pair
 * taking part in this LU's election (i: its rank among them in config order; at most
 * QDEV_MAX_SLOTS, the config allows CFG_MAX_PAIR_NODES). A slot: magic "CMPTQSL1",
 * node index in the config, boot id, sequence,
 * epoch, role, and a keyed BLAKE2b-256 of those bytes (key derived from the cluster key).
 *
 * The master token is a SCSI-3 persistent reservation of type Write Exclusive –
 * Registrants Only held under a key derived from cluster, node and instance kind.
 * Commands run one at a time, in order; each gets an answer (ok, reservation conflict or
 * error) within io_timeout, after which the session is torn down and re-established,
 * possibly through another portal. UNIT ATTENTION is retried. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

#define QDEV_MAX_SLOTS 64
#define QDEV_SLOT_LBA 8 /* 4 KiB in */
#define QDEV_BLOCK 512
#define QDEV_MAX_PORTALS 4
#define QDEV_MAX_KEYS 32
#define QDEV_MAC_KEY 32 /* bytes of the slot MAC key */

enum qdev_op {
	QDEV_OP_REGISTER, /* REGISTER AND IGNORE EXISTING KEY with our key */
	QDEV_OP_READ,	  /* all slots, READ RESERVATION, READ KEYS */
	QDEV_OP_WRITE,	  /* our slot */
	QDEV_OP_RESERVE,
	QDEV_OP_PREEMPT, /* the victim's key */
	QDEV_OP_RELEASE,
	_QDEV_OP_MAX
};
const char *qdev_op_to_str(enum qdev_op op);

enum qdev_status { QDEV_OK, QDEV_CONFLICT, QDEV_ERROR, _QDEV_STATUS_MAX };
const char *qdev_status_to_str(enum qdev_status s);

struct qdev_slot {
	bool valid;
	uint32_t node;
	uint8_t boot_id[16];
	uint64_t seq, epoch;
	uint8_t role;
};

struct qdev_view {
	struct qdev_slot slots[QDEV_MAX_SLOTS];
	int n_slots;
	bool reserved;
	uint64_t holder_key;
	uint8_t pr_type;
	uint64_t keys[QDEV_MAX_KEYS];
	int n_keys;
	bool registered; /* our key is among the keys */
};

struct qdev_config {
	char initiator[256];
	char target[224];
	int lun;
	char portals[QDEV_MAX_PORTALS][96]; /* "host:port" */
	int n_portals;
	uint64_t key;
	int n_slots;
	int self_slot;
	uint64_t io_timeout; /* µs */
	uint32_t isid; /* fixed per node and kind, so a new session is the same initiator port */
	uint8_t mac_key[QDEV_MAC_KEY]; /* seals and checks slots: qdev_mac_key_derive() */
};

struct qdev;
/* view is set for QDEV_OP_READ answered QDEV_OK, else NULL. */
typedef void (*qdev_done_fn)(struct qdev *q, enum qdev_op op, enum qdev_status st, uint64_t tag,
			     const struct qdev_view *view, void *ud);

int qdev_new(struct loop *l, const struct qdev_config *c, qdev_done_fn cb, void *ud,
	     struct qdev **ret);
struct qdev *qdev_free(struct qdev *q);
/* Queues one command; its answer comes through the callback, never from inside this call.
 * slot: for QDEV_OP_WRITE; victim: for QDEV_OP_PREEMPT. */
int qdev_submit(struct qdev *q, enum qdev_op op, uint64_t tag, const struct qdev_slot *slot,
		uint64_t victim);
bool qdev_connected(const struct qdev *q);
const char *qdev_portal(const struct qdev *q); /* the portal in use, or NULL */

/* A non-zero reservation key from cluster name, node name and instance kind. */
uint64_t qdev_key_derive(const char *cluster, const char *node, const char *kind);
/* The slot MAC key of one instance kind (0 infra, 1 admin) from the cluster key (the
 * handshake key, 32 bytes): crypto_kdf_derive_from_key(subkey id 1 + kind, context
 * "CMPTQSLT"). Returns 0 or -EIO. */
int qdev_mac_key_derive(const uint8_t cluster_key[32], unsigned kind, uint8_t ret[QDEV_MAC_KEY]);
/* Slots are sealed with a keyed BLAKE2b-256 (crypto_generichash with mac_key) over bytes
 * 0-55: whoever can write the LU but lacks the cluster key cannot forge one. */
void qdev_slot_encode(const uint8_t mac_key[QDEV_MAC_KEY], const struct qdev_slot *s,
		      uint8_t buf[QDEV_BLOCK]);
/* Returns 0, or -EBADMSG for a block that is not a valid slot sealed with mac_key
 * (ret->valid false). */
int qdev_slot_decode(const uint8_t mac_key[QDEV_MAC_KEY], const uint8_t *buf, size_t len,
		     struct qdev_slot *ret);
