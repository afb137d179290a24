/* The handshake driver (SPEC §5): UDP sockets on this node's handshake (and external)
 * address, HELLO probes to every node, heartbeats to the own pair, per-peer state and
 * per-reason drop counters. The datagram format is in hs_wire.h.
 *
 * Probing: every `handshake_timeout` a HELLO with a fresh random challenge goes to every
 * other node's handshake address, and to the external address of every node that is not
 * contacted. A node becomes *contacted* when it answers (HELLO_ACK echoing the challenge)
 * within handshake_timeout; the round trip is recorded. It is *lost* after 3 HELLOs in a
 * row went unanswered. A node's external interface is alive (1) when it answered the last
 * external HELLO in time, dead (0) when it did not, unknown (-1) before the first answer
 * was due or when the node has no external address.
 *
 * Heartbeats: every `heartbeat_interval` one HEARTBEAT, one sequence number, to each other
 * node of the own pair. Its content comes from the heartbeat provider (the election fills
 * epochs and roles); hs fills seq, profile, mgmt_running, config_version and config_hash
 * first.
 *
 * Configuration: HELLOs and heartbeats carry the sender's configuration version and
 * BLAKE2b-256 hash; hs_peer_config() gives the last one heard. A peer announcing this
 * node's version with another hash (two different files, one number) is a conflict:
 * `event=config conflict=same-version version=N node=SELF hash=H peer=P peer_hash=H2`,
 * once per peer and hash. */
#pragma once

#include "config.h"
#include "console.h"
#include "hs_wire.h"
#include "loop.h"

struct hs;

/* Delivers a decoded, authenticated, not replayed HEARTBEAT, HEARTBEAT_ACK, QUERY or
 * QUERY_REPLY from node `from_node` (index in cfg->nodes). Blob data is valid only
 * during the call. */
typedef void (*hs_recv_fn)(const struct hs_msg *msg, int from_node, void *ud);
/* Called when a node becomes contacted or is lost, and when its external interface is
 * judged alive or dead (`contacted` is its current state). */
typedef void (*hs_contact_fn)(int node, bool contacted, void *ud);
typedef void (*hs_heartbeat_fill_fn)(struct hs_heartbeat *hb, void *ud);
/* Quorum-device freshness of a node's slot: 1 alive, 0 dead, -1 unknown. */
typedef int (*hs_qdev_alive_fn)(int node, void *ud);

/* `key` is the 32-byte cluster key (hs_key_load()); hs keeps only the derived protocol key
 * in sodium_malloc memory. The cfg must outlive hs (a config reload replaces its values in
 * place and refuses node or address changes). Binds the sockets and starts probing and
 * heartbeats at once. Returns a negative errno (and a log line) on failure. */
int hs_new(struct loop *l, const struct cfg *cfg, int self, const uint8_t boot_id[HS_BOOT_ID_BYTES],
	   const uint8_t key[HS_KEY_BYTES], struct hs **ret);
struct hs *hs_free(struct hs *hs);
/* Whether this node's handshake (and external) address can be bound now, without
 * logging: 0, or -errno with "cannot bind ADDR: reason" appended to why. The wiring waits
 * with it for an address that is not assigned yet or still taken (SPEC §11). */
int hs_bind_check(const struct cfg *cfg, int self, struct strbuf *why);
/* Re-reads cfg->key_file (SIGHUP): its first key seals from now on, both are accepted.
 * On any error the keys in use stay, and the error is logged. */
int hs_reload_keys(struct hs *hs);

/* Reads the key file (hs_wire.h: 64 hex characters or 32 raw bytes; during a rotation two
 * hex keys, the first sealing) into sodium_malloc memory: the current key comes first;
 * free it with hs_key_free(). The file must be a regular file owned by root with no
 * access for group or others (else -EPERM). Errors are logged naming the file. */
int hs_key_load(const char *path, const char *cluster, uint8_t **ret_key);
/* A key file that starts with "only-cluster NAME" (images built with RIG_KEY=1) is
 * refused by hs_key_load for any cluster but NAME (-EPERM, logged). */
#define HS_ONLY_CLUSTER_MAX 64
/* Whether the key file exists at all (an image built without a key has none). */
bool hs_key_file_exists(const char *path);
/* A key typed on the serial console: 64 hex characters or base64 of 32 bytes. -EINVAL. */
int hs_key_parse_typed(const char *text, uint8_t key[HS_KEY_BYTES]);
void hs_key_free(uint8_t *key);
/* All the key file's keys (HS_KEYS_MAX slots of HS_KEY_BYTES, sodium_malloc'd; free with
 * hs_key_free()): returns how many (1 or 2), or a negative errno, logged naming the file
 * unless quiet. */
int hs_key_file_read(const char *path, uint8_t **ret, bool quiet);

/* Every configuration a peer announces (authentic HELLO, HELLO_ACK, HEARTBEAT). */
typedef void (*hs_config_fn)(int node, uint64_t version, const uint8_t hash[HS_CONFIG_HASH_BYTES],
			     void *ud);
void hs_set_config_fn(struct hs *hs, hs_config_fn fn, void *ud);

/* Several subscribers per type are allowed (up to 4). Only HEARTBEAT, HEARTBEAT_ACK,
 * QUERY and QUERY_REPLY are delivered; HELLOs are handled inside. Returns 0, -EINVAL,
 * -ENOSPC. */
int hs_subscribe(struct hs *hs, enum hs_msg_type type, hs_recv_fn fn, void *ud);
int hs_set_contact_fn(struct hs *hs, hs_contact_fn fn, void *ud);
/* A second subscriber, for the peers' health components (hs_attach): called on the same
 * changes as the contact callback, and when a round trip crosses t_max. */
void hs_set_peer_fn(struct hs *hs, hs_contact_fn fn, void *ud);
void hs_set_heartbeat_fn(struct hs *hs, hs_heartbeat_fill_fn fill, void *ud);
void hs_set_qdev_alive_fn(struct hs *hs, hs_qdev_alive_fn fn, void *ud);

/* What this node advertises in HELLOs and heartbeats (decision sets it).
 * profile: enum rules_profile, or 0xff for none yet. */
void hs_set_local(struct hs *hs, uint8_t profile, bool mgmt_running);

int hs_send_heartbeat_ack(struct hs *hs, int node, uint64_t seq);
/* Monotonic µs at which the heartbeat with this sequence number was sent; 0 when it is
 * not one of the last 64. */
uint64_t hs_heartbeat_sent_at(const struct hs *hs, uint64_t seq);
/* QUERY / QUERY_REPLY / CONFIG_GET / CONFIG_DATA with an opaque payload of at most
 * HS_BLOB_MAX bytes. Returns 0, -EINVAL, -EMSGSIZE, or the send error. */
int hs_send(struct hs *hs, int node, enum hs_msg_type type, const void *payload, size_t len);

/* The configuration announced instead of the running one: a newer version written over
 * the file that waits for a restart (a change of topology), so that the others fetch it
 * too. version 0: the running one again. */
void hs_set_offer(struct hs *hs, uint64_t version, const uint8_t hash[HS_CONFIG_HASH_BYTES]);

/* Peer state; node is an index into cfg->nodes (self answers "not contacted"). */
bool hs_peer_contacted(const struct hs *hs, int node);
/* The configuration the node announced last (authentic datagrams only); false before. */
bool hs_peer_config(const struct hs *hs, int node, uint64_t *version,
		    uint8_t hash[HS_CONFIG_HASH_BYTES]);
uint64_t hs_peer_last_heard(const struct hs *hs, int node); /* monotonic µs, 0: never */
uint64_t hs_peer_rtt(const struct hs *hs, int node);	    /* µs, UINT64_MAX: unknown */
int hs_peer_external_alive(const struct hs *hs, int node);  /* 1, 0, -1 unknown */
int hs_peer_qdev_alive(const struct hs *hs, int node);	    /* provider's answer, -1 without */
bool hs_peer_mgmt_running(const struct hs *hs, int node);   /* as the node last reported */
uint8_t hs_peer_profile(const struct hs *hs, int node);	    /* 0xff: not known */
/* The last heartbeat received from node, and when (monotonic µs); NULL when none. */
const struct hs_heartbeat *hs_peer_heartbeat(const struct hs *hs, int node, uint64_t *ret_at);
int hs_contacted_count(const struct hs *hs);

/* Drop counters: all datagrams, and those attributable to a node (a valid sender id). */
uint64_t hs_drops(const struct hs *hs, enum hs_drop reason);
uint64_t hs_peer_drops(const struct hs *hs, int node);

/* The console's `peers` command. */
int hs_console_register(struct hs *hs, struct console *c);

/* Attaches the handshake to the running node (hs_attach.c): the console's `peers`, one
 * health component `peer:<name>` per other node (contacted, round trip within t_max), and
 * the transport of the query engine's cluster queries (q may be NULL). */
struct node_env;
struct query_engine;
int hs_attach(struct hs *hs, const struct node_env *env, struct query_engine *q);
void hs_detach(struct hs *hs, const struct node_env *env);
