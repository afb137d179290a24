/* cluster.conf (SPEC §2): INI sections and `key = value`, parsed into one plain
 * struct with every default filled in. Errors name `file:line: key: what is wrong`
 * and a config with any error is refused whole. */
#pragma once

#include "util.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define CFG_NAME_MAX 32
#define CFG_PATH_MAX 256
/* Pairs, compartments and nodes are tables sized from the file; these caps only refuse
 * absurd files (with the line of the first section past them). */
#define CFG_LIMIT_NODES 4096
#define CFG_LIMIT_PAIRS 2048
#define CFG_LIMIT_COMPARTMENTS (2 * CFG_LIMIT_PAIRS)
/* Nodes of one pair taking part in one election (infra or admin): the election's
 * per-pair tables and the quorum LU's slot area (QDEV_MAX_SLOTS blocks) hold this many. */
#define CFG_MAX_PAIR_NODES 8
#define CFG_MAX_MACS 4
#define CFG_MAX_DISKS 8
#define CFG_MAX_NETS 4
#define CFG_MAX_ROUTES 4
#define CFG_MAX_STORAGE 4
#define CFG_MAX_PORTALS 4
#define CFG_MAX_PROFILES 8
#define CFG_MAX_HOOKS 8
#define CFG_MAX_WIPES 16
#define CFG_IQN_MAX 224
#define CFG_MAX_INITIATORS 8
#define CFG_GUEST_PORT 3260
#define CFG_DEFAULT_PORT 7460
#define CFG_MAX_TEXT (1U << 20)

enum cfg_zone { CFG_ZONE_MZ, CFG_ZONE_DMZ, _CFG_ZONE_MAX };
enum cfg_path_selector { CFG_PS_ROUND_ROBIN, CFG_PS_FAILOVER, _CFG_PS_MAX };
enum cfg_kind { CFG_KIND_INFRA, CFG_KIND_ADMIN, _CFG_KIND_MAX }; /* instance kinds */

const char *cfg_zone_to_str(enum cfg_zone z);
const char *cfg_path_selector_to_str(enum cfg_path_selector p);
const char *cfg_kind_to_str(enum cfg_kind k);

/* An address with port, as given ("10.0.0.1:7460", "[fd00::1]:7460", or without port). */
struct cfg_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};
void cfg_addr_format(const struct cfg_addr *a, char *out, size_t n); /* "ip:port" / "[ip6]:port" */
int cfg_addr_parse(const char *s, uint16_t default_port, struct cfg_addr *ret);
bool cfg_addr_equal(const struct cfg_addr *a, const struct cfg_addr *b); /* address and port */

/* An IP prefix for interface configuration. */
struct cfg_prefix {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint8_t len;
};
int cfg_prefix_parse(const char *s, bool need_len, struct cfg_prefix *ret);
void cfg_prefix_format(const struct cfg_prefix *p, bool with_len, char *out, size_t n);

/* `net = <ifname|mac> <addr/len|dhcp> [vlan=N] [gateway=IP]` */
struct cfg_net {
	char match[CFG_NAME_MAX]; /* interface name, or a MAC address */
	bool by_mac;
	uint8_t mac[6];
	uint16_t vlan; /* 0: none */
	bool dhcp;
	struct cfg_prefix addr;
	bool has_gateway;
	struct cfg_prefix gateway;
};

/* `route = <dest/len> via <gateway>` */
struct cfg_route {
	struct cfg_prefix dest;
	struct cfg_prefix via;
};

struct cfg_pair {
	char name[CFG_NAME_MAX];
};

struct cfg_compartment {
	char name[CFG_NAME_MAX];
	enum cfg_zone zone;
	int pair; /* index into cfg.pairs */
	/* The guest storage network (SPEC §3a): the initiator names of the compartment's
	 * infrastructural instances, the only ones its nodes' guest targets admit, and the
	 * optional CHAP credentials (initiator → target; mutual: target → initiator). */
	char infra_initiators[CFG_MAX_INITIATORS][CFG_IQN_MAX];
	int n_infra_initiators;
	char guest_chap_user[64];
	char guest_chap_secret_file[CFG_PATH_MAX];
	char guest_chap_mutual_user[64];
	char guest_chap_mutual_secret_file[CFG_PATH_MAX];
};

struct cfg_node {
	char name[CFG_NAME_MAX];
	int compartment; /* index into cfg.compartments */
	long priority;	 /* higher wins */
	bool mgmt_capable;
	uint8_t macs[CFG_MAX_MACS][6];
	int n_macs;
	struct cfg_addr handshake;
	bool has_external;
	struct cfg_addr external;
	/* The guest target's portal (SPEC §3a); default: the handshake address, port 3260. */
	bool has_storage;
	struct cfg_addr storage;
	bool disks_auto;
	char disks[CFG_MAX_DISKS][CFG_PATH_MAX];
	int n_disks;
	struct cfg_net nets[CFG_MAX_NETS];
	int n_nets;
	struct cfg_route routes[CFG_MAX_ROUTES];
	int n_routes;
};

struct cfg_portal {
	int compartment;
	char host[80]; /* numeric address */
	uint16_t port;
};

/* A logical unit reached through one portal per compartment: the mirrored storage,
 * or the quorum device. */
struct cfg_storage {
	char name[CFG_NAME_MAX];
	char target[CFG_IQN_MAX];
	long lun;
	struct cfg_portal portals[CFG_MAX_PORTALS];
	int n_portals;
	char designator[128]; /* pinned VPD 0x83 designator, "" when not pinned */
	char chap_user[64];
	char chap_secret_file[CFG_PATH_MAX];
	enum cfg_path_selector selector;
	/* The node's root file system lives on this storage: the agent keeps serving it
	 * through the hand-over to the real root (argv[0][0] == '@', SIGTERM ignored). */
	bool root;
};

/* A size given as bytes or as a percentage of the disk. */
struct cfg_size {
	uint64_t bytes;
	unsigned pct; /* 1..100 when a percentage, else 0 */
};
uint64_t cfg_size_resolve(const struct cfg_size *s, uint64_t disk_bytes);

struct cfg_layout {
	struct cfg_size boot, state, infra, admin;
	uint64_t min_disk;	       /* disks smaller than this are `too-small` */
	uint64_t min_guest;	       /* what must be left for cmpt-guest */
	char wipes[CFG_MAX_WIPES][64]; /* serials / WWNs authorized for wiping */
	int n_wipes;
};

struct cfg_timeouts {
	uint64_t handshake_timeout, handshake_window, heartbeat_interval, disk_heartbeat_interval,
	    lease, path_check_interval, path_timeout, no_path_timeout, hook_timeout, t_max,
	    query_timeout, health_interval;
	/* SPEC §2a: a fetched or pushed version that keeps this node eligible this long after
	 * it was applied becomes its last-known-good; 0: at once */
	uint64_t config_probation;
};

/* [fencing] (SPEC §7 Fencing): the watchdog device the election holds, or "none". */
struct cfg_fencing {
	char watchdog[CFG_PATH_MAX]; /* default /dev/watchdog */
	uint64_t watchdog_timeout;   /* µs, default 1 s; whole seconds for a real device */
	uint64_t pet_window; /* µs: a master pets only this long after a renewal's send; 0: one
			      * slot read interval (docs/election.md, Fencing) */
};

struct cfg_profile {
	char name[CFG_NAME_MAX];
	char run[CFG_MAX_HOOKS][CFG_PATH_MAX];
	int n_run;
	/* `stop =`: hooks that stop what the profile started (infra-and-mgmt: the management
	 * system, when rule 2 finds a second one after boot, SPEC §6) */
	char stop[CFG_MAX_HOOKS][CFG_PATH_MAX];
	int n_stop;
};

struct cfg_role_hooks {
	char promote[CFG_PATH_MAX];
	char demote[CFG_PATH_MAX];
};

#define CFG_PWHASH_MAX 128 /* crypto_pwhash_STRBYTES */
#define CFG_KEY_ID_BYTES 8 /* a cluster key id (HS_KEY_ID_BYTES) */

struct cfg {
	char path[CFG_PATH_MAX];
	uint8_t hash[32]; /* BLAKE2b-256 of the file's bytes */

	char name[CFG_NAME_MAX];
	char key_file[CFG_PATH_MAX];
	/* [cluster] key_id: the id of the cluster key (as `keys` shows it) a key typed on the
	 * serial console (`key install`) must have; has_key_id false when not set */
	uint8_t key_id[CFG_KEY_ID_BYTES];
	bool has_key_id;
	/* [console] password: a libsodium crypto_pwhash_str hash; "" when the serial console
	 * asks for no password */
	char console_password[CFG_PWHASH_MAX];
	char rules_file[CFG_PATH_MAX];
	uint16_t port;
	uint64_t version;

	/* malloc'd, n_X entries (cfg_free frees them) */
	struct cfg_pair *pairs;
	int n_pairs;
	struct cfg_compartment *compartments;
	int n_compartments;
	struct cfg_node *nodes;
	int n_nodes;
	struct cfg_storage storage[CFG_MAX_STORAGE];
	int n_storage;
	bool has_quorum;
	struct cfg_storage quorum; /* when has_quorum; else majority over handshakes */
	struct cfg_layout layout;
	struct cfg_timeouts timeouts;
	struct cfg_fencing fencing;
	struct cfg_profile profiles[CFG_MAX_PROFILES];
	int n_profiles;
	struct cfg_role_hooks roles[_CFG_KIND_MAX];
};

/* A single value given outside the file, e.g. `compartd.timeouts.path_timeout=3s` on the
 * kernel command line: section is "timeouts" (or "node.a1"), key "path_timeout". */
struct cfg_override {
	char section[2 * CFG_NAME_MAX];
	char key[CFG_NAME_MAX];
	char value[CFG_PATH_MAX];
};

/* Parses text (as read from `path`, used in messages). Errors, one per line, are appended
 * to `errors` when it is not NULL. Returns 0, -EINVAL on any config error, -ENOMEM. */
int cfg_parse(const char *path, const char *text, size_t len, const struct cfg_override *ovr,
	      size_t n_ovr, struct cfg **ret, struct strbuf *errors);
int cfg_load(const char *path, const struct cfg_override *ovr, size_t n_ovr, struct cfg **ret,
	     struct strbuf *errors);
struct cfg *cfg_free(struct cfg *c);
/* Moves `from`'s values into `into` and frees `from`. The topology must be the same
 * (cfg_topology_change(into, from) == NULL): `into`'s tables stay where they are, so
 * pointers into them stay valid, only their values change. */
void cfg_replace(struct cfg *into, struct cfg *from);
/* A deep copy (its own tables); -ENOMEM. */
int cfg_dup(const struct cfg *c, struct cfg **ret);

/* The normalized form: every section, every key, defaults filled in, stable order. */
void cfg_print(const struct cfg *c, struct strbuf *out);

int cfg_find_node(const struct cfg *c, const char *name);
int cfg_find_compartment(const struct cfg *c, const char *name);
int cfg_find_pair(const struct cfg *c, const char *name);
int cfg_find_storage(const struct cfg *c, const char *name);
const struct cfg_profile *cfg_find_profile(const struct cfg *c, const char *name);
/* The pair a node belongs to, and the other compartment of that pair (-1 when none). */
int cfg_node_pair(const struct cfg *c, int node);
void cfg_hash_hex(const struct cfg *c, char out[65]);
/* NULL when `b` keeps `a`'s pairs, compartments, nodes (names, order, compartment,
 * handshake address), storage and quorum presence; else what changed, as a phrase. */
const char *cfg_topology_change(const struct cfg *a, const struct cfg *b);
