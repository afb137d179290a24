/* The handshake protocol's datagrams (SPEC §5), pure: no sockets, no clock.
 *
 * One UDP datagram per message, at most HS_WIRE_MAX (1200) bytes:
 *
 *   offset size  field (integers big-endian)            authenticated  encrypted
 *   0      4     magic "CMPH"                            yes            no
 *   4      1     version (HS_WIRE_VERSION)               yes            no
 *   5      1     type (enum hs_msg_type)                 yes            no
 *   6      2     sender node id (index in cluster.conf)  yes            no
 *   8      2     destination node id                     yes            no
 *   10     2     reserved, 0                             yes            no
 *   12     16    sender boot id (random per boot)        yes            no
 *   28     8     sender's per-boot counter (from 1)      yes            no
 *   36     n     payload                                 yes            yes
 *   36+n   16    Poly1305 tag
 *
 * The AEAD is XChaCha20-Poly1305 (IETF); its 24-byte nonce is boot id || counter, unique
 * because a sender never reuses a counter within a boot and boot ids are 128 random bits.
 * The header (36 bytes) is the associated data. The destination id stops a datagram sent
 * to one node from being replayed to another. Node ids are indexes into the node list of
 * cluster.conf: every node of a cluster runs with the same file.
 *
 * The key is derived from the 32-byte cluster key and the cluster name: a subkey from
 * crypto_kdf_derive_from_key (subkey id 1, context "cmpt-hs1") keys a BLAKE2b-256 of the
 * cluster name, so two clusters sharing a key do not accept each other's datagrams. The
 * key file holds the cluster key either as 64 hex characters (optionally followed by white
 * space / a newline) or as exactly 32 raw bytes; or, during a rotation, two keys as hex
 * separated by white space: the first seals, both are accepted. Make one with:
 * `head -c 32 /dev/urandom | xxd -p -c 64 > cluster.key`. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HS_WIRE_MAX 1200
#define HS_WIRE_HDR 36
#define HS_WIRE_TAG 16
#define HS_WIRE_MAX_PAYLOAD (HS_WIRE_MAX - HS_WIRE_HDR - HS_WIRE_TAG)
/* 2: HELLO and HEARTBEAT carry the configuration's BLAKE2b-256 hash beside its version.
 * A version-1 datagram is dropped as HS_DROP_VERSION before it is opened. */
#define HS_WIRE_VERSION 2
#define HS_CONFIG_HASH_BYTES 32
#define HS_KEY_BYTES 32
#define HS_BOOT_ID_BYTES 16
/* QUERY / QUERY_REPLY payloads are opaque to this layer: at most this many bytes. */
#define HS_BLOB_MAX HS_WIRE_MAX_PAYLOAD

enum hs_msg_type {
	HS_MSG_HELLO,
	HS_MSG_HELLO_ACK,
	HS_MSG_HEARTBEAT,
	HS_MSG_HEARTBEAT_ACK,
	HS_MSG_QUERY,
	HS_MSG_QUERY_REPLY,
	HS_MSG_CONFIG_GET, /* configuration transfer (cfgsync.h): opaque payloads */
	HS_MSG_CONFIG_DATA,
	HS_MSG_SWIM, /* membership after the boot decision (swim.h): opaque payload */
	_HS_MSG_MAX
};

/* Why a datagram was dropped; every one is counted per reason. */
enum hs_drop {
	HS_DROP_NONE,
	HS_DROP_TRUNCATED,	 /* shorter than header + tag */
	HS_DROP_OVERSIZE,	 /* longer than HS_WIRE_MAX */
	HS_DROP_BAD_MAGIC,	 /* not our protocol */
	HS_DROP_VERSION,	 /* unknown protocol version */
	HS_DROP_TYPE,		 /* unknown message type */
	HS_DROP_UNKNOWN_SENDER,	 /* sender id not a node of the config, or ourselves */
	HS_DROP_MISDIRECTED,	 /* destination is another node */
	HS_DROP_BAD_TAG,	 /* authentication failed: forged, corrupted or wrong key */
	HS_DROP_MALFORMED,	 /* authentic, but the payload does not parse */
	HS_DROP_REPLAY,		 /* counter already seen (or too old for the window) */
	HS_DROP_OLD_BOOT,	 /* from a boot of that node that was replaced by a newer one */
	HS_DROP_UNVERIFIED_BOOT, /* a boot id not yet proven fresh by a HELLO_ACK */
	HS_DROP_HELLO_RATE,	 /* a HELLO from an unverified boot beyond the per-sender rate */
	_HS_DROP_MAX
};
const char *hs_drop_to_str(enum hs_drop d);

struct hs_hello {
	uint64_t challenge; /* echoed by the HELLO_ACK; proves the answer is fresh */
	bool external;	    /* sent to the node's external address */
	bool mgmt_running;  /* the sender runs a management system */
	uint8_t profile;    /* sender's profile (enum rules_profile), 0xff: none yet */
	uint64_t config_version;
	uint8_t config_hash[HS_CONFIG_HASH_BYTES]; /* BLAKE2b-256 of its cluster.conf */
};

/* Heartbeat content. The election fills epochs and roles for both instance kinds
 * (index enum cfg_kind: 0 infra, 1 admin); role values are the election's enum, opaque here. */
#define HS_KINDS 2
struct hs_heartbeat {
	uint64_t seq; /* set by hs */
	uint64_t epoch[HS_KINDS];
	uint8_t role[HS_KINDS];
	uint8_t profile;	/* enum rules_profile, 0xff: none yet */
	uint8_t health;		/* health summary: 0 ok, 1 degraded, 2 failed, 0xff unknown */
	uint16_t health_failed; /* number of failed components */
	uint64_t config_version;
	uint8_t config_hash[HS_CONFIG_HASH_BYTES];
	bool mgmt_running;
};

struct hs_blob {
	const uint8_t *data; /* points into the decoder's buffer */
	size_t len;
};

struct hs_msg {
	enum hs_msg_type type;
	union {
		struct hs_hello hello;	/* HELLO and HELLO_ACK */
		struct hs_heartbeat hb; /* HEARTBEAT */
		uint64_t ack_seq;	/* HEARTBEAT_ACK */
		struct hs_blob blob;	/* QUERY, QUERY_REPLY, CONFIG_GET, CONFIG_DATA, SWIM */
	};
};

struct hs_wire_hdr {
	uint8_t version;
	uint8_t type;
	uint16_t sender;
	uint16_t dest;
	uint8_t boot_id[HS_BOOT_ID_BYTES];
	uint64_t counter;
};

/* The cluster key from a key file's bytes: 64 hex characters (trailing white space
 * allowed) or exactly 32 raw bytes. Returns 0 or -EINVAL; ret untouched on failure. */
int hs_key_parse(const uint8_t *buf, size_t len, uint8_t ret[HS_KEY_BYTES]);
/* The key file's keys: one (hex or raw) or two (hex, separated by white space). Fills
 * ret[0] (and ret[1]) and returns how many, or -EINVAL; ret untouched on failure. */
#define HS_KEYS_MAX 2
int hs_keys_parse(const uint8_t *buf, size_t len, uint8_t ret[HS_KEYS_MAX][HS_KEY_BYTES]);
/* The protocol key from the cluster key and the cluster name. */
int hs_key_derive(const uint8_t cluster_key[HS_KEY_BYTES], const char *cluster_name,
		  uint8_t ret[HS_KEY_BYTES]);
/* A cluster key's public id: 8 bytes of a BLAKE2b keyed with it, shown as 16 hex
 * characters (`keys` on the console); it reveals nothing of the key. */
#define HS_KEY_ID_BYTES 8
void hs_key_id(const uint8_t cluster_key[HS_KEY_BYTES], uint8_t ret[HS_KEY_ID_BYTES]);

/* Encodes and seals one message into out (HS_WIRE_MAX bytes). Returns the datagram's
 * length, or -EMSGSIZE (payload too large), -EINVAL (bad type). */
int hs_wire_seal(const uint8_t key[HS_KEY_BYTES], const struct hs_wire_hdr *h,
		 const struct hs_msg *m, uint8_t *out, size_t out_size);

/* Parses the header only (bounds, magic, version, type). */
enum hs_drop hs_wire_parse_hdr(const uint8_t *buf, size_t len, struct hs_wire_hdr *ret);

/* Authenticates and decodes a datagram whose header hs_wire_parse_hdr() accepted.
 * `plain` (HS_WIRE_MAX bytes) receives the decrypted payload; blobs in ret point into
 * it. Returns HS_DROP_NONE, HS_DROP_BAD_TAG or HS_DROP_MALFORMED. */
enum hs_drop hs_wire_open(const uint8_t key[HS_KEY_BYTES], const uint8_t *buf, size_t len,
			  const struct hs_wire_hdr *h, uint8_t *plain, struct hs_msg *ret);

/* Replay protection for one peer: the boot id in use, a 128-counter sliding window that
 * tolerates reordering, and the boot ids it replaced. */
#define HS_OLD_BOOTS 4
struct hs_replay {
	bool has_boot;
	uint8_t boot[HS_BOOT_ID_BYTES];
	uint64_t top;	  /* highest counter accepted */
	uint64_t bits[2]; /* bit i: counter top - i was seen */
	uint8_t old[HS_OLD_BOOTS][HS_BOOT_ID_BYTES];
	int n_old;
};

/* Checks an authentic datagram's boot id and counter and, when accepted, records it.
 * `fresh` says the datagram proved it is fresh (a HELLO_ACK echoing our outstanding
 * challenge): only such a datagram may introduce a new boot id; its counter becomes the
 * window's floor, so datagrams of that boot sent before it (captured before a restart of
 * the receiver, say) are never back-filled. A HELLO from an unknown boot is answered
 * without being recorded: pass `probe` for HELLOs, which are accepted from any
 * not-replaced boot and recorded only against the current one (the caller rate-limits). */
enum hs_drop hs_replay_check(struct hs_replay *r, const uint8_t boot[HS_BOOT_ID_BYTES],
			     uint64_t counter, bool fresh, bool probe);
