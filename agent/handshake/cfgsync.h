/* Configuration transfer over the handshake channel (SPEC §2a): a node that hears a peer
 * announce a newer configuration version (HELLO / HEARTBEAT, hs_set_config_fn) fetches
 * that file from it, chunk by chunk, and hands the bytes to the wiring once their
 * BLAKE2b-256 matches the announced hash. The wiring validates and applies them.
 *
 * Messages (payloads of HS_MSG_CONFIG_GET / HS_MSG_CONFIG_DATA, inside the sealed,
 * authenticated, replay-checked datagrams; integers big-endian):
 *   GET   version u64, hash [32], offset u32                          (44 bytes)
 *   DATA  version u64, hash [32], total u32, offset u32, bytes…      (48 + n ≤ HS_BLOB_MAX)
 * A node answers a GET only for the configuration it runs (version and hash equal), from
 * its file re-read and re-hashed; else it stays silent. The fetcher asks for one chunk
 * at a time (stop and wait, retried every handshake_timeout, 5 times), accepts only the
 * chunk at the offset it asked for from the node it asked, and refuses a total above
 * CFG_MAX_TEXT (1 MiB) or bytes whose hash is not the announced one. */
#pragma once

#include "config.h"
#include "hs.h"
#include "loop.h"
#include "node_env.h"

#define CFGSYNC_GET_LEN 44
#define CFGSYNC_DATA_HDR 48
#define CFGSYNC_CHUNK (HS_BLOB_MAX - CFGSYNC_DATA_HDR)
#define CFGSYNC_RETRIES 5

struct cfgsync_get {
	uint64_t version;
	uint8_t hash[32];
	uint32_t offset;
};
struct cfgsync_data {
	uint64_t version;
	uint8_t hash[32];
	uint32_t total, offset;
	const uint8_t *bytes;
	size_t len;
};

/* ---- pure ---- */
size_t cfgsync_get_encode(const struct cfgsync_get *g, uint8_t out[CFGSYNC_GET_LEN]);
int cfgsync_get_decode(const uint8_t *p, size_t n, struct cfgsync_get *ret); /* -EBADMSG */
size_t cfgsync_data_encode(const struct cfgsync_data *d, uint8_t *out);	     /* HS_BLOB_MAX room */
int cfgsync_data_decode(const uint8_t *p, size_t n, struct cfgsync_data *ret);

/* One transfer being received. */
struct cfgsync_rx {
	uint64_t version;
	uint8_t hash[32];
	uint8_t *buf; /* total bytes, malloc'd at the first chunk */
	uint32_t total, got;
	bool has_total;
};
enum cfgsync_rx_result {
	CFGSYNC_MORE,	   /* accepted; ask for offset rx->got */
	CFGSYNC_DONE,	   /* complete and the hash matches: rx->buf holds the file */
	CFGSYNC_IGNORED,   /* not the transfer, or not the chunk asked for */
	CFGSYNC_TOO_LARGE, /* the total is above CFG_MAX_TEXT or changed */
	CFGSYNC_BAD_HASH,  /* complete, but not the announced file */
};
const char *cfgsync_rx_result_to_str(enum cfgsync_rx_result r);
void cfgsync_rx_start(struct cfgsync_rx *rx, uint64_t version, const uint8_t hash[32]);
enum cfgsync_rx_result cfgsync_rx_feed(struct cfgsync_rx *rx, const struct cfgsync_data *d);
void cfgsync_rx_clear(struct cfgsync_rx *rx);

/* ---- the driver ---- */
struct cfgsync;
/* A fetched file: hash-verified, not yet validated. */
typedef void (*cfgsync_got_fn)(const char *text, size_t len, uint64_t version,
			       const uint8_t hash[32], int from, void *ud);
/* env->cfg is replaced in place on reload; env->config_fetching is set while a fetch
 * runs. Subscribes to hs. -ENOMEM, or hs's. */
int cfgsync_new(struct node_env *env, struct hs *hs, cfgsync_got_fn fn, void *ud,
		struct cfgsync **ret);
struct cfgsync *cfgsync_free(struct cfgsync *s);
/* The version this node serves instead of the running one (hs_set_offer): the file
 * written over the running one that waits for a restart. version 0: the running one. */
void cfgsync_set_offer(struct cfgsync *s, uint64_t version, const uint8_t hash[32]);
/* Datagram bytes (header and tag included) this node sent for transfers: asking, serving. */
void cfgsync_bytes_sent(const struct cfgsync *s, uint64_t *asked, uint64_t *served);
/* Whether (version, hash) must not be fetched (it failed on this node, SPEC §2a): the
 * latest-version check skips it, saying so once (`event=config action=skip version=N
 * from=P reason=failed-here`). */
typedef bool (*cfgsync_skip_fn)(uint64_t version, const uint8_t hash[32], void *ud);
void cfgsync_set_skip(struct cfgsync *s, cfgsync_skip_fn fn);
/* (version, hash) must not be fetched again in this run (refused by validation). */
void cfgsync_refuse(struct cfgsync *s, uint64_t version, const uint8_t hash[32]);
