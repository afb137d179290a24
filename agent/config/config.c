#include "config_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>

static const char *const zone_str[_CFG_ZONE_MAX] = {[CFG_ZONE_MZ] = "mz", [CFG_ZONE_DMZ] = "dmz"};
static const char *const selector_str[_CFG_PS_MAX] = {
    [CFG_PS_ROUND_ROBIN] = "round-robin", [CFG_PS_FAILOVER] = "failover"};
static const char *const kind_str[_CFG_KIND_MAX] = {
    [CFG_KIND_INFRA] = "infra", [CFG_KIND_ADMIN] = "admin"};

const char *cfg_zone_to_str(enum cfg_zone z)
{
	return z < _CFG_ZONE_MAX ? zone_str[z] : NULL;
}

const char *cfg_path_selector_to_str(enum cfg_path_selector p)
{
	return p < _CFG_PS_MAX ? selector_str[p] : NULL;
}

const char *cfg_kind_to_str(enum cfg_kind k)
{
	return k < _CFG_KIND_MAX ? kind_str[k] : NULL;
}

static int lookup_str(const char *const *table, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (table[i] && strcmp(table[i], s) == 0)
			return (int)i;
	return -EINVAL;
}

/* ---- the parser ---- */

static void perr(struct parse_ctx *p, const char *key, const char *fmt, ...) _printf_(3, 4);
static void perr(struct parse_ctx *p, const char *key, const char *fmt, ...)
{
	p->n_errors++;
	if (!p->errors)
		return;
	if (p->override)
		sb_printf(p->errors, "override %s.%s: ", p->sec_name, key ? key : "");
	else if (key)
		sb_printf(p->errors, "%s:%d: %s: ", p->path, p->line, key);
	else
		sb_printf(p->errors, "%s:%d: ", p->path, p->line);
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(p->errors, fmt, ap);
	va_end(ap);
	sb_putc(p->errors, '\n');
}

typedef int (*set_fn)(struct parse_ctx *p, const char *key, char *val);

struct key_def {
	const char *name;
	set_fn set;
	bool multi;
};

static int copy_str(struct parse_ctx *p, const char *key, const char *val, char *dst, size_t n)
{
	if (!*val) {
		perr(p, key, "empty value");
		return -EINVAL;
	}
	if (strlen(val) >= n) {
		perr(p, key, "value longer than %zu characters", n - 1);
		return -EINVAL;
	}
	for (const unsigned char *c = (const unsigned char *)val; *c; c++) {
		if (*c < ' ' || *c == 0x7f) {
			perr(p, key, "control character in value");
			return -EINVAL;
		}
	}
	memcpy(dst, val, strlen(val) + 1);
	return 0;
}

static bool valid_name(const char *s)
{
	if (!*s || strlen(s) >= CFG_NAME_MAX || !isalnum((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

static int set_duration(struct parse_ctx *p, const char *key, const char *val, uint64_t *dst)
{
	uint64_t v;
	if (parse_duration(val, &v) < 0 || v == 0 || v > 24 * 3600 * USEC_PER_SEC) {
		perr(p, key, "'%s' is not a duration (e.g. 500ms, 3s; more than 0, at most 24h)",
		     val);
		return -EINVAL;
	}
	*dst = v;
	return 0;
}

static int set_cfg_size(struct parse_ctx *p, const char *key, const char *val, struct cfg_size *dst)
{
	size_t n = strlen(val);
	if (n > 1 && val[n - 1] == '%') {
		char num[8];
		long pct;
		if (n - 1 >= sizeof(num))
			goto bad;
		memcpy(num, val, n - 1);
		num[n - 1] = '\0';
		if (parse_int(num, 1, 100, &pct) < 0)
			goto bad;
		*dst = (struct cfg_size){.pct = (unsigned)pct};
		return 0;
	}
	uint64_t b;
	if (parse_size(val, &b) < 0 || b == 0 || b % (1 << 20) != 0)
		goto bad;
	*dst = (struct cfg_size){.bytes = b};
	return 0;
bad:
	perr(p, key, "'%s' is not a size (whole MiB, e.g. 512MiB, 4GiB, or 1..100%%)", val);
	return -EINVAL;
}

/* [cluster] */
static int k_cluster_name(struct parse_ctx *p, const char *key, char *val)
{
	if (!valid_name(val)) {
		perr(p, key, "'%s' is not a valid name (letters, digits, - _ .; at most %d)", val,
		     CFG_NAME_MAX - 1);
		return -EINVAL;
	}
	return copy_str(p, key, val, p->cfg->name, sizeof(p->cfg->name));
}
static int k_cluster_key_file(struct parse_ctx *p, const char *key, char *val)
{
	if (val[0] != '/') {
		perr(p, key, "'%s' is not an absolute path", val);
		return -EINVAL;
	}
	return copy_str(p, key, val, p->cfg->key_file, sizeof(p->cfg->key_file));
}
static int k_cluster_key_id(struct parse_ctx *p, const char *key, char *val)
{
	size_t n = 0;
	if (strlen(val) != 2 * CFG_KEY_ID_BYTES ||
	    sodium_hex2bin(p->cfg->key_id, CFG_KEY_ID_BYTES, val, strlen(val), NULL, &n, NULL) <
		0 ||
	    n != CFG_KEY_ID_BYTES) {
		perr(p, key, "'%s' is not a key id (%d hex characters, as `keys` shows it)", val,
		     2 * CFG_KEY_ID_BYTES);
		return -EINVAL;
	}
	p->cfg->has_key_id = true;
	return 0;
}
static int k_cluster_rules(struct parse_ctx *p, const char *key, char *val)
{
	if (val[0] != '/') {
		perr(p, key, "'%s' is not an absolute path", val);
		return -EINVAL;
	}
	return copy_str(p, key, val, p->cfg->rules_file, sizeof(p->cfg->rules_file));
}
static int k_cluster_port(struct parse_ctx *p, const char *key, char *val)
{
	long v;
	if (parse_int(val, 1, 65535, &v) < 0) {
		perr(p, key, "'%s' is not a port (1..65535)", val);
		return -EINVAL;
	}
	p->cfg->port = (uint16_t)v;
	return 0;
}
static int k_cluster_version(struct parse_ctx *p, const char *key, char *val)
{
	if (parse_u64(val, &p->cfg->version) < 0) {
		perr(p, key, "'%s' is not a version number", val);
		return -EINVAL;
	}
	return 0;
}

/* [compartment X] */
static int k_comp_zone(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_compartment *c = p->obj;
	int z = lookup_str(zone_str, _CFG_ZONE_MAX, val);
	if (z < 0) {
		perr(p, key, "'%s' is not a zone (mz or dmz)", val);
		return -EINVAL;
	}
	c->zone = (enum cfg_zone)z;
	p->comp_meta[c - p->cfg->compartments].has_zone = true;
	return 0;
}
static int k_comp_pair(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_compartment *c = p->obj;
	return copy_str(p, key, val, p->comp_meta[c - p->cfg->compartments].pair_name,
			CFG_NAME_MAX);
}
static int set_iqn(struct parse_ctx *p, const char *key, const char *val, char *dst)
{
	if (strncmp(val, "iqn.", 4) != 0 && strncmp(val, "eui.", 4) != 0 &&
	    strncmp(val, "naa.", 4) != 0) {
		perr(p, key, "'%s' is not an iSCSI name (iqn., eui. or naa.)", val);
		return -EINVAL;
	}
	for (const char *c = val; *c; c++)
		if (*c <= ' ' || *c == '/' || (unsigned char)*c >= 0x7f) {
			perr(p, key,
			     "'%s': an iSCSI name has no spaces, slashes or control characters",
			     val);
			return -EINVAL;
		}
	return copy_str(p, key, val, dst, CFG_IQN_MAX);
}
static int k_comp_infra_initiator(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_compartment *c = p->obj;
	if (c->n_infra_initiators == CFG_MAX_INITIATORS) {
		perr(p, key, "more than %d initiators", CFG_MAX_INITIATORS);
		return -EINVAL;
	}
	for (int i = 0; i < c->n_infra_initiators; i++)
		if (strcasecmp(c->infra_initiators[i], val) == 0) {
			perr(p, key, "'%s' is listed twice", val);
			return -EINVAL;
		}
	if (set_iqn(p, key, val, c->infra_initiators[c->n_infra_initiators]) < 0)
		return -EINVAL;
	c->n_infra_initiators++;
	return 0;
}
static int set_abs_path(struct parse_ctx *p, const char *key, const char *val, char *dst)
{
	if (val[0] != '/') {
		perr(p, key, "'%s' is not an absolute path", val);
		return -EINVAL;
	}
	return copy_str(p, key, val, dst, CFG_PATH_MAX);
}
static int k_comp_chap_user(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_compartment *c = p->obj;
	return copy_str(p, key, val, c->guest_chap_user, sizeof(c->guest_chap_user));
}
static int k_comp_chap_secret_file(struct parse_ctx *p, const char *key, char *val)
{
	return set_abs_path(p, key, val,
			    ((struct cfg_compartment *)p->obj)->guest_chap_secret_file);
}
static int k_comp_chap_mutual_user(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_compartment *c = p->obj;
	return copy_str(p, key, val, c->guest_chap_mutual_user, sizeof(c->guest_chap_mutual_user));
}
static int k_comp_chap_mutual_secret_file(struct parse_ctx *p, const char *key, char *val)
{
	return set_abs_path(p, key, val,
			    ((struct cfg_compartment *)p->obj)->guest_chap_mutual_secret_file);
}

/* [node X] */
static int k_node_compartment(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_node *n = p->obj;
	return copy_str(p, key, val, p->node_meta[n - p->cfg->nodes].comp_name, CFG_NAME_MAX);
}
static int k_node_priority(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_node *n = p->obj;
	if (parse_int(val, 0, 65535, &n->priority) < 0) {
		perr(p, key, "'%s' is not a priority (0..65535)", val);
		return -EINVAL;
	}
	return 0;
}
static int k_node_mgmt_capable(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_node *n = p->obj;
	if (parse_bool(val, &n->mgmt_capable) < 0) {
		perr(p, key, "'%s' is not yes or no", val);
		return -EINVAL;
	}
	return 0;
}
static int k_node_mac(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_node *n = p->obj;
	if (n->n_macs == CFG_MAX_MACS) {
		perr(p, key, "more than %d MAC addresses", CFG_MAX_MACS);
		return -EINVAL;
	}
	if (parse_mac(val, n->macs[n->n_macs]) < 0) {
		perr(p, key, "'%s' is not a MAC address", val);
		return -EINVAL;
	}
	n->n_macs++;
	return 0;
}
static int k_node_handshake(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_node *n = p->obj;
	if (cfg_addr_parse(val, 0, &n->handshake) < 0) {
		perr(p, key, "'%s' is not an IP address with optional :port", val);
		return -EINVAL;
	}
	return 0;
}
static int k_node_external(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_node *n = p->obj;
	if (cfg_addr_parse(val, 0, &n->external) < 0) {
		perr(p, key, "'%s' is not an IP address with optional :port", val);
		return -EINVAL;
	}
	n->has_external = true;
	return 0;
}
static int k_node_storage(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_node *n = p->obj;
	if (cfg_addr_parse(val, CFG_GUEST_PORT, &n->storage) < 0) {
		perr(p, key, "'%s' is not an IP address with optional :port", val);
		return -EINVAL;
	}
	n->has_storage = true;
	return 0;
}
static int k_node_disks(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_node *n = p->obj;
	n->n_disks = 0;
	n->disks_auto = false;
	if (strcmp(val, "auto") == 0) {
		n->disks_auto = true;
		return 0;
	}
	char *save = NULL;
	for (char *t = strtok_r(val, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		if (t[0] != '/') {
			perr(p, key, "'%s' is not an absolute device path (or say 'auto')", t);
			return -EINVAL;
		}
		if (n->n_disks == CFG_MAX_DISKS) {
			perr(p, key, "more than %d disks", CFG_MAX_DISKS);
			return -EINVAL;
		}
		if (copy_str(p, key, t, n->disks[n->n_disks], CFG_PATH_MAX) < 0)
			return -EINVAL;
		n->n_disks++;
	}
	if (n->n_disks == 0) {
		perr(p, key, "no disks given (list device paths or say 'auto')");
		return -EINVAL;
	}
	return 0;
}
static int k_node_net(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_node *n = p->obj;
	if (n->n_nets == CFG_MAX_NETS) {
		perr(p, key, "more than %d interfaces", CFG_MAX_NETS);
		return -EINVAL;
	}
	struct cfg_net net = {0};
	char *save = NULL;
	char *match = strtok_r(val, " \t", &save);
	char *addr = strtok_r(NULL, " \t", &save);
	if (!match || !addr) {
		perr(p, key, "expected '<ifname|mac> <addr/len|dhcp> [vlan=N] [gateway=IP]'");
		return -EINVAL;
	}
	if (parse_mac(match, net.mac) == 0)
		net.by_mac = true;
	else if (!valid_name(match) || strlen(match) >= 16) {
		perr(p, key, "'%s' is neither a MAC address nor an interface name", match);
		return -EINVAL;
	}
	snprintf(net.match, sizeof(net.match), "%s", match);
	if (strcmp(addr, "dhcp") == 0)
		net.dhcp = true;
	else if (cfg_prefix_parse(addr, true, &net.addr) < 0) {
		perr(p, key, "'%s' is not an address with prefix length (e.g. 10.0.0.5/24) or dhcp",
		     addr);
		return -EINVAL;
	}
	for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		long v;
		if (strncmp(t, "vlan=", 5) == 0 && parse_int(t + 5, 1, 4094, &v) == 0)
			net.vlan = (uint16_t)v;
		else if (strncmp(t, "gateway=", 8) == 0 &&
			 cfg_prefix_parse(t + 8, false, &net.gateway) == 0)
			net.has_gateway = true;
		else {
			perr(p, key, "'%s' is not vlan=1..4094 or gateway=<address>", t);
			return -EINVAL;
		}
	}
	n->nets[n->n_nets++] = net;
	return 0;
}
static int k_node_route(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_node *n = p->obj;
	if (n->n_routes == CFG_MAX_ROUTES) {
		perr(p, key, "more than %d routes", CFG_MAX_ROUTES);
		return -EINVAL;
	}
	char *save = NULL;
	char *dest = strtok_r(val, " \t", &save);
	char *via = strtok_r(NULL, " \t", &save);
	char *gw = strtok_r(NULL, " \t", &save);
	struct cfg_route r;
	if (!dest || !via || !gw || strcmp(via, "via") != 0 || strtok_r(NULL, " \t", &save) ||
	    cfg_prefix_parse(dest, true, &r.dest) < 0 || cfg_prefix_parse(gw, false, &r.via) < 0 ||
	    r.dest.family != r.via.family) {
		perr(p, key, "expected '<dest/len> via <gateway>' of one address family");
		return -EINVAL;
	}
	n->routes[n->n_routes++] = r;
	return 0;
}

/* [storage X] and [quorum] */
static int k_st_target(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_storage *s = p->obj;
	if (strncmp(val, "iqn.", 4) != 0 && strncmp(val, "eui.", 4) != 0 &&
	    strncmp(val, "naa.", 4) != 0) {
		perr(p, key, "'%s' is not an iSCSI name (iqn., eui. or naa.)", val);
		return -EINVAL;
	}
	return copy_str(p, key, val, s->target, sizeof(s->target));
}
static int k_st_lun(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_storage *s = p->obj;
	if (parse_int(val, 0, 16383, &s->lun) < 0) {
		perr(p, key, "'%s' is not a LUN (0..16383)", val);
		return -EINVAL;
	}
	return 0;
}
static int k_st_portal(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_storage *s = p->obj;
	int si = p->sec == SEC_QUORUM ? CFG_MAX_STORAGE : (int)(s - p->cfg->storage);
	if (s->n_portals == CFG_MAX_PORTALS) {
		perr(p, key, "more than %d portals", CFG_MAX_PORTALS);
		return -EINVAL;
	}
	char *save = NULL;
	char *comp = strtok_r(val, " \t", &save);
	char *addr = strtok_r(NULL, " \t", &save);
	struct cfg_addr a;
	if (!comp || !addr || strtok_r(NULL, " \t", &save)) {
		perr(p, key, "expected '<compartment> <address[:port]>'");
		return -EINVAL;
	}
	if (cfg_addr_parse(addr, 3260, &a) < 0) {
		perr(p, key, "'%s' is not an IP address with optional :port", addr);
		return -EINVAL;
	}
	struct cfg_portal *po = &s->portals[s->n_portals];
	char text[80];
	cfg_addr_format(&a, text, sizeof(text));
	char *colon = strrchr(text, ':');
	*colon = '\0';
	snprintf(po->host, sizeof(po->host), "%s", text);
	po->port = (uint16_t)atoi(colon + 1);
	snprintf(p->portal_comp_name[si][s->n_portals], CFG_NAME_MAX, "%s", comp);
	p->portal_line[si][s->n_portals] = p->line;
	s->n_portals++;
	return 0;
}
static int k_st_designator(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_storage *s = p->obj;
	return copy_str(p, key, val, s->designator, sizeof(s->designator));
}
static int k_st_chap_user(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_storage *s = p->obj;
	return copy_str(p, key, val, s->chap_user, sizeof(s->chap_user));
}
static int k_st_chap_secret_file(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_storage *s = p->obj;
	if (val[0] != '/') {
		perr(p, key, "'%s' is not an absolute path", val);
		return -EINVAL;
	}
	return copy_str(p, key, val, s->chap_secret_file, sizeof(s->chap_secret_file));
}
static int k_st_selector(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_storage *s = p->obj;
	int v = lookup_str(selector_str, _CFG_PS_MAX, val);
	if (v < 0) {
		perr(p, key, "'%s' is not a path selector (round-robin or failover)", val);
		return -EINVAL;
	}
	s->selector = (enum cfg_path_selector)v;
	return 0;
}
static int k_st_root(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_storage *s = p->obj;
	if (parse_bool(val, &s->root) < 0) {
		perr(p, key, "'%s' is not yes or no", val);
		return -EINVAL;
	}
	return 0;
}
static int k_quorum_mode(struct parse_ctx *p, const char *key, char *val)
{
	if (strcmp(val, "none") == 0)
		p->quorum_none = true;
	else if (strcmp(val, "device") == 0)
		p->quorum_none = false;
	else {
		perr(p, key, "'%s' is not a quorum mode (device or none)", val);
		return -EINVAL;
	}
	return 0;
}

/* [layout] */
#define LAYOUT_SIZE_KEY(field)                                                                     \
	static int k_layout_##field(struct parse_ctx *p, const char *key, char *val)               \
	{                                                                                          \
		return set_cfg_size(p, key, val, &p->cfg->layout.field);                           \
	}
LAYOUT_SIZE_KEY(boot)
LAYOUT_SIZE_KEY(state)
LAYOUT_SIZE_KEY(infra)
LAYOUT_SIZE_KEY(admin)

static int set_bytes(struct parse_ctx *p, const char *key, const char *val, uint64_t *dst)
{
	if (parse_size(val, dst) < 0) {
		perr(p, key, "'%s' is not a size (e.g. 8GiB)", val);
		return -EINVAL;
	}
	return 0;
}
static int k_layout_min_disk(struct parse_ctx *p, const char *key, char *val)
{
	return set_bytes(p, key, val, &p->cfg->layout.min_disk);
}
static int k_layout_min_guest(struct parse_ctx *p, const char *key, char *val)
{
	return set_bytes(p, key, val, &p->cfg->layout.min_guest);
}
static int k_layout_wipe(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_layout *l = &p->cfg->layout;
	if (l->n_wipes == CFG_MAX_WIPES) {
		perr(p, key, "more than %d wipe authorizations", CFG_MAX_WIPES);
		return -EINVAL;
	}
	if (strpbrk(val, " \t")) {
		perr(p, key, "'%s': a serial or WWN has no spaces", val);
		return -EINVAL;
	}
	if (copy_str(p, key, val, l->wipes[l->n_wipes], sizeof(l->wipes[0])) < 0)
		return -EINVAL;
	l->n_wipes++;
	return 0;
}

/* [timeouts] */
#define TIMEOUT_KEY(field)                                                                         \
	static int k_to_##field(struct parse_ctx *p, const char *key, char *val)                   \
	{                                                                                          \
		return set_duration(p, key, val, &p->cfg->timeouts.field);                         \
	}
TIMEOUT_KEY(handshake_timeout)
TIMEOUT_KEY(handshake_window)
TIMEOUT_KEY(heartbeat_interval)
TIMEOUT_KEY(disk_heartbeat_interval)
TIMEOUT_KEY(path_check_interval)
TIMEOUT_KEY(path_timeout)
TIMEOUT_KEY(no_path_timeout)
TIMEOUT_KEY(hook_timeout)
TIMEOUT_KEY(t_max)
TIMEOUT_KEY(query_timeout)
TIMEOUT_KEY(health_interval)
TIMEOUT_KEY(config_probation)
static int k_to_lease(struct parse_ctx *p, const char *key, char *val)
{
	p->lease_set = true;
	return set_duration(p, key, val, &p->cfg->timeouts.lease);
}

/* [fencing] */
static int k_fence_watchdog(struct parse_ctx *p, const char *key, char *val)
{
	if (strcmp(val, "none") != 0 && val[0] != '/') {
		perr(p, key, "'%s' is neither an absolute device path nor none", val);
		return -EINVAL;
	}
	return copy_str(p, key, val, p->cfg->fencing.watchdog, sizeof(p->cfg->fencing.watchdog));
}
static int k_fence_watchdog_timeout(struct parse_ctx *p, const char *key, char *val)
{
	return set_duration(p, key, val, &p->cfg->fencing.watchdog_timeout);
}
static int k_fence_pet_window(struct parse_ctx *p, const char *key, char *val)
{
	return set_duration(p, key, val, &p->cfg->fencing.pet_window);
}

/* [profile X], [role X] */
static int k_profile_run(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_profile *pr = p->obj;
	if (pr->n_run == CFG_MAX_HOOKS) {
		perr(p, key, "more than %d hooks", CFG_MAX_HOOKS);
		return -EINVAL;
	}
	if (val[0] != '/') {
		perr(p, key, "'%s': a hook command starts with an absolute path", val);
		return -EINVAL;
	}
	if (copy_str(p, key, val, pr->run[pr->n_run], CFG_PATH_MAX) < 0)
		return -EINVAL;
	pr->n_run++;
	return 0;
}
static int k_profile_stop(struct parse_ctx *p, const char *key, char *val)
{
	struct cfg_profile *pr = p->obj;
	if (pr->n_stop == CFG_MAX_HOOKS) {
		perr(p, key, "more than %d hooks", CFG_MAX_HOOKS);
		return -EINVAL;
	}
	if (val[0] != '/') {
		perr(p, key, "'%s': a hook command starts with an absolute path", val);
		return -EINVAL;
	}
	if (copy_str(p, key, val, pr->stop[pr->n_stop], CFG_PATH_MAX) < 0)
		return -EINVAL;
	pr->n_stop++;
	return 0;
}
static int set_hook(struct parse_ctx *p, const char *key, const char *val, char *dst)
{
	if (val[0] != '/') {
		perr(p, key, "'%s': a hook command starts with an absolute path", val);
		return -EINVAL;
	}
	return copy_str(p, key, val, dst, CFG_PATH_MAX);
}
static int k_role_promote(struct parse_ctx *p, const char *key, char *val)
{
	return set_hook(p, key, val, ((struct cfg_role_hooks *)p->obj)->promote);
}
static int k_role_demote(struct parse_ctx *p, const char *key, char *val)
{
	return set_hook(p, key, val, ((struct cfg_role_hooks *)p->obj)->demote);
}

/* A crypto_pwhash_str hash: "$argon2id$..." or "$argon2i$...", printable, fits. */
static int k_console_password(struct parse_ctx *p, const char *key, char *val)
{
	bool printable = true;
	for (const char *c = val; *c; c++)
		printable &= *c > ' ' && *c < 0x7f;
	if ((strncmp(val, "$argon2id$", 10) && strncmp(val, "$argon2i$", 9)) || !printable) {
		perr(p, key, "not a crypto_pwhash_str hash ($argon2id$…)");
		return -EINVAL;
	}
	return copy_str(p, key, val, p->cfg->console_password, sizeof(p->cfg->console_password));
}

static const struct key_def keys_cluster[] = {{"name", k_cluster_name, false},
					      {"key_file", k_cluster_key_file, false},
					      {"key_id", k_cluster_key_id, false},
					      {"rules", k_cluster_rules, false},
					      {"port", k_cluster_port, false},
					      {"version", k_cluster_version, false},
					      {NULL, NULL, false}};
static const struct key_def keys_pair[] = {{NULL, NULL, false}};
static const struct key_def keys_compartment[] = {
    {"zone", k_comp_zone, false},
    {"pair", k_comp_pair, false},
    {"infra_initiator", k_comp_infra_initiator, true},
    {"guest_chap_user", k_comp_chap_user, false},
    {"guest_chap_secret_file", k_comp_chap_secret_file, false},
    {"guest_chap_mutual_user", k_comp_chap_mutual_user, false},
    {"guest_chap_mutual_secret_file", k_comp_chap_mutual_secret_file, false},
    {NULL, NULL, false}};
static const struct key_def keys_node[] = {{"compartment", k_node_compartment, false},
					   {"priority", k_node_priority, false},
					   {"mgmt_capable", k_node_mgmt_capable, false},
					   {"mac", k_node_mac, true},
					   {"handshake", k_node_handshake, false},
					   {"external", k_node_external, false},
					   {"storage", k_node_storage, false},
					   {"disks", k_node_disks, false},
					   {"net", k_node_net, true},
					   {"route", k_node_route, true},
					   {NULL, NULL, false}};
static const struct key_def keys_storage[] = {{"target", k_st_target, false},
					      {"lun", k_st_lun, false},
					      {"portal", k_st_portal, true},
					      {"designator", k_st_designator, false},
					      {"chap_user", k_st_chap_user, false},
					      {"chap_secret_file", k_st_chap_secret_file, false},
					      {"path_selector", k_st_selector, false},
					      {"root", k_st_root, false},
					      {NULL, NULL, false}};
static const struct key_def keys_quorum[] = {{"mode", k_quorum_mode, false},
					     {"target", k_st_target, false},
					     {"lun", k_st_lun, false},
					     {"portal", k_st_portal, true},
					     {"designator", k_st_designator, false},
					     {"chap_user", k_st_chap_user, false},
					     {"chap_secret_file", k_st_chap_secret_file, false},
					     {NULL, NULL, false}};
static const struct key_def keys_layout[] = {
    {"boot", k_layout_boot, false},	    {"state", k_layout_state, false},
    {"infra", k_layout_infra, false},	    {"admin", k_layout_admin, false},
    {"min_disk", k_layout_min_disk, false}, {"min_guest", k_layout_min_guest, false},
    {"wipe", k_layout_wipe, true},	    {NULL, NULL, false}};
static const struct key_def keys_timeouts[] = {
    {"handshake_timeout", k_to_handshake_timeout, false},
    {"handshake_window", k_to_handshake_window, false},
    {"heartbeat_interval", k_to_heartbeat_interval, false},
    {"disk_heartbeat_interval", k_to_disk_heartbeat_interval, false},
    {"lease", k_to_lease, false},
    {"path_check_interval", k_to_path_check_interval, false},
    {"path_timeout", k_to_path_timeout, false},
    {"no_path_timeout", k_to_no_path_timeout, false},
    {"hook_timeout", k_to_hook_timeout, false},
    {"t_max", k_to_t_max, false},
    {"query_timeout", k_to_query_timeout, false},
    {"health_interval", k_to_health_interval, false},
    {"config_probation", k_to_config_probation, false},
    {NULL, NULL, false}};
static const struct key_def keys_profile[] = {
    {"run", k_profile_run, true}, {"stop", k_profile_stop, true}, {NULL, NULL, false}};
static const struct key_def keys_console[] = {{"password", k_console_password, false},
					      {NULL, NULL, false}};
static const struct key_def keys_fencing[] = {{"watchdog", k_fence_watchdog, false},
					      {"watchdog_timeout", k_fence_watchdog_timeout, false},
					      {"pet_window", k_fence_pet_window, false},
					      {NULL, NULL, false}};
static const struct key_def keys_role[] = {
    {"promote", k_role_promote, false}, {"demote", k_role_demote, false}, {NULL, NULL, false}};

static const struct {
	const char *name;
	bool named; /* [kind name] rather than [kind] */
	const struct key_def *keys;
} sections[_SEC_MAX] = {
    [SEC_NONE] = {NULL, false, NULL},
    [SEC_CLUSTER] = {"cluster", false, keys_cluster},
    [SEC_PAIR] = {"pair", true, keys_pair},
    [SEC_COMPARTMENT] = {"compartment", true, keys_compartment},
    [SEC_NODE] = {"node", true, keys_node},
    [SEC_STORAGE] = {"storage", true, keys_storage},
    [SEC_QUORUM] = {"quorum", false, keys_quorum},
    [SEC_LAYOUT] = {"layout", false, keys_layout},
    [SEC_TIMEOUTS] = {"timeouts", false, keys_timeouts},
    [SEC_PROFILE] = {"profile", true, keys_profile},
    [SEC_ROLE] = {"role", true, keys_role},
    [SEC_CONSOLE] = {"console", false, keys_console},
    [SEC_FENCING] = {"fencing", false, keys_fencing},
};

void cfg_set_defaults(struct cfg *c)
{
	c->port = CFG_DEFAULT_PORT;
	c->version = 1;
	snprintf(c->rules_file, sizeof(c->rules_file), "/etc/compartd/rules/boot.rules");
	c->layout = (struct cfg_layout){
	    .boot = {.bytes = 512ULL << 20},
	    .state = {.bytes = 16ULL << 20},
	    .infra = {.bytes = 4ULL << 30},
	    .admin = {.bytes = 2ULL << 30},
	    .min_disk = 8ULL << 30,
	    .min_guest = 1ULL << 30,
	};
	c->timeouts = (struct cfg_timeouts){
	    .handshake_timeout = 500 * USEC_PER_MSEC,
	    .handshake_window = 3 * USEC_PER_SEC,
	    .heartbeat_interval = 200 * USEC_PER_MSEC,
	    .disk_heartbeat_interval = 250 * USEC_PER_MSEC,
	    .path_check_interval = 1 * USEC_PER_SEC,
	    .path_timeout = 2 * USEC_PER_SEC,
	    .no_path_timeout = 30 * USEC_PER_SEC,
	    .hook_timeout = 60 * USEC_PER_SEC,
	    .t_max = 100 * USEC_PER_MSEC,
	    .query_timeout = 1 * USEC_PER_SEC,
	    .health_interval = 5 * USEC_PER_SEC,
	    .config_probation = 30 * USEC_PER_SEC,
	};
	snprintf(c->fencing.watchdog, sizeof(c->fencing.watchdog), "/dev/watchdog");
	c->fencing.watchdog_timeout = 1 * USEC_PER_SEC;
}

static int find_named(const char *base, size_t stride, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(base + (size_t)i * stride, name) == 0)
			return i;
	return -ENOENT;
}

int cfg_find_node(const struct cfg *c, const char *name)
{
	return c->nodes ? find_named(c->nodes[0].name, sizeof(c->nodes[0]), c->n_nodes, name)
			: -ENOENT;
}
int cfg_find_compartment(const struct cfg *c, const char *name)
{
	return c->compartments ? find_named(c->compartments[0].name, sizeof(c->compartments[0]),
					    c->n_compartments, name)
			       : -ENOENT;
}
int cfg_find_pair(const struct cfg *c, const char *name)
{
	return c->pairs ? find_named(c->pairs[0].name, sizeof(c->pairs[0]), c->n_pairs, name)
			: -ENOENT;
}
int cfg_find_storage(const struct cfg *c, const char *name)
{
	return find_named(c->storage[0].name, sizeof(c->storage[0]), c->n_storage, name);
}
const struct cfg_profile *cfg_find_profile(const struct cfg *c, const char *name)
{
	int i = find_named(c->profiles[0].name, sizeof(c->profiles[0]), c->n_profiles, name);
	return i < 0 ? NULL : &c->profiles[i];
}

int cfg_node_pair(const struct cfg *c, int node)
{
	if (node < 0 || node >= c->n_nodes)
		return -1;
	return c->compartments[c->nodes[node].compartment].pair;
}

/* Room for entry `n` of a table of `size`-byte entries holding *cap (doubled as needed,
 * the new entries zeroed). */
static int grow(void **arr, int *cap, int n, size_t size)
{
	if (n < *cap)
		return 0;
	int nc = *cap ? 2 * *cap : 16;
	void *a = reallocarray(*arr, (size_t)nc, size);
	if (!a)
		return -ENOMEM;
	memset((char *)a + (size_t)*cap * size, 0, (size_t)(nc - *cap) * size);
	*arr = a;
	*cap = nc;
	return 0;
}

/* A new entry of a table grown from the file, with its parse-time record (meta: NULL or
 * an array of meta_size entries grown with it). NULL after reporting an error. */
static void *new_entry(struct parse_ctx *p, const char *kind, const char *name, void **arr, int *n,
		       int *cap, size_t size, int limit, void **meta, size_t meta_size)
{
	if (*n == limit) {
		perr(p, NULL, "[%s %s]: more than %d %s sections (the parser's limit)", kind, name,
		     limit, kind);
		return NULL;
	}
	int mcap = *cap;
	if (grow(arr, cap, *n, size) < 0 || (meta && grow(meta, &mcap, *n, meta_size) < 0)) {
		p->oom = true;
		perr(p, NULL, "[%s %s]: out of memory", kind, name);
		return NULL;
	}
	char *e = (char *)*arr + (size_t)(*n)++ * size;
	snprintf(e, CFG_NAME_MAX, "%s", name); /* every such entry starts with its name */
	return e;
}

static struct name_index *names_of(const struct parse_ctx *p, enum section_kind k)
{
	int i = k == SEC_PAIR ? 0 : k == SEC_COMPARTMENT ? 1 : 2;
	return (struct name_index *)&p->names[i];
}

static const char *name_at(const struct cfg *c, enum section_kind k, int i)
{
	return k == SEC_PAIR	      ? c->pairs[i].name
	       : k == SEC_COMPARTMENT ? c->compartments[i].name
				      : c->nodes[i].name;
}

static unsigned name_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

int cfg_parse_find(const struct parse_ctx *p, enum section_kind k, const char *name)
{
	const struct name_index *x = names_of(p, k);
	if (!x->cap)
		return -ENOENT;
	for (unsigned h = name_hash(name) & (x->cap - 1);; h = (h + 1) & (x->cap - 1)) {
		int i = x->slot[h] - 1;
		if (i < 0)
			return -ENOENT;
		if (!strcmp(name_at(p->cfg, k, i), name))
			return i;
	}
}

static void name_put(struct name_index *x, const struct cfg *c, enum section_kind k, int i)
{
	unsigned h = name_hash(name_at(c, k, i)) & (x->cap - 1);
	while (x->slot[h])
		h = (h + 1) & (x->cap - 1);
	x->slot[h] = i + 1;
}

/* Records entry i (just added) of table k; the table doubles at half full. */
static int name_add(struct parse_ctx *p, enum section_kind k, int i)
{
	struct name_index *x = names_of(p, k);
	if (2 * ((unsigned)x->n + 1) > x->cap) {
		unsigned cap = x->cap ? 2 * x->cap : 64;
		int *slot = calloc(cap, sizeof(*slot)), *old = x->slot;
		if (!slot)
			return -ENOMEM;
		unsigned ocap = x->cap;
		x->slot = slot;
		x->cap = cap;
		for (unsigned j = 0; j < ocap; j++)
			if (old[j])
				name_put(x, p->cfg, k, old[j] - 1);
		free(old);
	}
	name_put(x, p->cfg, k, i);
	x->n++;
	return 0;
}

void cfg_parse_names_free(struct parse_ctx *p)
{
	for (size_t i = 0; i < sizeof(p->names) / sizeof(p->names[0]); i++)
		free(p->names[i].slot);
}

static void *new_named_entry(struct parse_ctx *p, enum section_kind k, const char *kind,
			     const char *name);

/* A new pair, compartment or node, recorded in its name index. */
static void *new_named(struct parse_ctx *p, enum section_kind k, const char *kind, const char *name)
{
	void *e = new_named_entry(p, k, kind, name);
	int n = k == SEC_PAIR	       ? p->cfg->n_pairs
		: k == SEC_COMPARTMENT ? p->cfg->n_compartments
				       : p->cfg->n_nodes;
	if (e && name_add(p, k, n - 1) < 0) {
		p->oom = true;
		perr(p, NULL, "[%s %s]: out of memory", kind, name);
	}
	return e;
}

static void *new_named_entry(struct parse_ctx *p, enum section_kind k, const char *kind,
			     const char *name)
{
	struct cfg *c = p->cfg;
	void *e = NULL;
	switch (k) {
	case SEC_PAIR:
		return new_entry(p, kind, name, (void **)&c->pairs, &c->n_pairs, &p->cap_pairs,
				 sizeof(*c->pairs), CFG_LIMIT_PAIRS, NULL, 0);
	case SEC_COMPARTMENT:
		e = new_entry(p, kind, name, (void **)&c->compartments, &c->n_compartments,
			      &p->cap_compartments, sizeof(*c->compartments),
			      CFG_LIMIT_COMPARTMENTS, (void **)&p->comp_meta,
			      sizeof(*p->comp_meta));
		if (e)
			p->comp_meta[c->n_compartments - 1].line = p->line;
		return e;
	case SEC_NODE:
		e = new_entry(p, kind, name, (void **)&c->nodes, &c->n_nodes, &p->cap_nodes,
			      sizeof(*c->nodes), CFG_LIMIT_NODES, (void **)&p->node_meta,
			      sizeof(*p->node_meta));
		if (e)
			p->node_meta[c->n_nodes - 1].line = p->line;
		return e;
	case SEC_NONE:
	case SEC_CLUSTER:
	case SEC_STORAGE:
	case SEC_QUORUM:
	case SEC_LAYOUT:
	case SEC_TIMEOUTS:
	case SEC_PROFILE:
	case SEC_ROLE:
	case SEC_CONSOLE:
	case SEC_FENCING:
	case _SEC_MAX:
		break;
	}
	return NULL;
}

/* Opens a section; returns the object it fills or NULL after reporting an error. */
static void *open_section(struct parse_ctx *p, enum section_kind k, const char *name)
{
	struct cfg *c = p->cfg;
	const char *kind = sections[k].name;
	if (sections[k].named && !valid_name(name)) {
		perr(p, NULL, "[%s %s]: '%s' is not a valid name (letters, digits, - _ .)", kind,
		     name, name);
		return NULL;
	}
#define NEW_NAMED(arr, n, max, find, lines)                                                        \
	do {                                                                                       \
		if (find(c, name) >= 0) {                                                          \
			perr(p, NULL, "[%s %s] is defined twice", kind, name);                     \
			return NULL;                                                               \
		}                                                                                  \
		if (c->n == max) {                                                                 \
			perr(p, NULL, "more than %d %s sections", max, kind);                      \
			return NULL;                                                               \
		}                                                                                  \
		snprintf(c->arr[c->n].name, CFG_NAME_MAX, "%s", name);                             \
		if (lines)                                                                         \
			((int *)lines)[c->n] = p->line;                                            \
		return &c->arr[c->n++];                                                            \
	} while (0)
	switch (k) {
	case SEC_CLUSTER:
		p->cluster_line = p->line;
		return c;
	case SEC_LAYOUT:
	case SEC_TIMEOUTS:
	case SEC_CONSOLE:
	case SEC_FENCING:
		return c;
	case SEC_QUORUM:
		c->has_quorum = true;
		return &c->quorum;
	case SEC_PAIR:
	case SEC_COMPARTMENT:
	case SEC_NODE:
		if (cfg_parse_find(p, k, name) >= 0) {
			perr(p, NULL, "[%s %s] is defined twice", kind, name);
			return NULL;
		}
		return new_named(p, k, kind, name);
	case SEC_STORAGE:
		NEW_NAMED(storage, n_storage, CFG_MAX_STORAGE, cfg_find_storage, p->storage_line);
	case SEC_PROFILE:
		if (strcmp(name, "wait-operator") && strcmp(name, "infra-only") &&
		    strcmp(name, "infra-and-mgmt")) {
			perr(p, NULL,
			     "[profile %s]: unknown profile (wait-operator, infra-only, "
			     "infra-and-mgmt)",
			     name);
			return NULL;
		}
		if (cfg_find_profile(c, name)) {
			perr(p, NULL, "[%s %s] is defined twice", kind, name);
			return NULL;
		}
		snprintf(c->profiles[c->n_profiles].name, CFG_NAME_MAX, "%s", name);
		return &c->profiles[c->n_profiles++];
	case SEC_ROLE: {
		int r = lookup_str(kind_str, _CFG_KIND_MAX, name);
		if (r < 0) {
			perr(p, NULL, "[role %s]: unknown instance kind (infra or admin)", name);
			return NULL;
		}
		return &c->roles[r];
	}
	case SEC_NONE:
	case _SEC_MAX:
		break;
	}
#undef NEW_NAMED
	return NULL;
}

static void parse_header(struct parse_ctx *p, char *line)
{
	char *end = strchr(line, ']');
	p->sec = SEC_NONE;
	p->obj = NULL;
	p->seen = 0;
	if (!end || *strstrip(end + 1)) {
		perr(p, NULL, "malformed section header (expected [kind] or [kind name])");
		return;
	}
	*end = '\0';
	char *inner = strstrip(line + 1);
	char *name = strpbrk(inner, " \t");
	if (name) {
		*name++ = '\0';
		name = strstrip(name);
	}
	int k;
	for (k = SEC_CLUSTER; k < _SEC_MAX; k++)
		if (strcmp(sections[k].name, inner) == 0)
			break;
	if (k == _SEC_MAX) {
		perr(p, NULL, "unknown section [%s]", inner);
		return;
	}
	if (sections[k].named != (name != NULL)) {
		perr(p, NULL,
		     sections[k].named ? "[%s] needs a name: [%s NAME]" : "[%s] takes no name",
		     inner, inner);
		return;
	}
	snprintf(p->sec_name, sizeof(p->sec_name), "%s%s%s", inner, name ? " " : "",
		 name ? name : "");
	p->obj = open_section(p, (enum section_kind)k, name ? name : "");
	if (p->obj)
		p->sec = (enum section_kind)k;
}

static void parse_keyval(struct parse_ctx *p, char *line)
{
	char *eq = strchr(line, '=');
	if (!eq) {
		perr(p, NULL, "expected 'key = value' or a [section] header");
		return;
	}
	*eq = '\0';
	char *key = strstrip(line);
	char *val = strstrip(eq + 1);
	if (p->sec == SEC_NONE)
		return; /* the section header was already reported */
	const struct key_def *keys = sections[p->sec].keys;
	size_t i;
	for (i = 0; keys[i].name; i++)
		if (strcmp(keys[i].name, key) == 0)
			break;
	if (!keys[i].name) {
		perr(p, key, "unknown key in [%s]", p->sec_name);
		return;
	}
	if (!keys[i].multi && (p->seen & (1ULL << i)) && !p->override) {
		perr(p, key, "given twice in [%s]", p->sec_name);
		return;
	}
	p->seen |= 1ULL << i;
	keys[i].set(p, key, val);
}

void cfg_parse_text(struct parse_ctx *p, const char *text, size_t len)
{
	size_t pos = 0;
	bool seen_single[_SEC_MAX] = {0};
	while (pos < len) {
		size_t eol = pos;
		while (eol < len && text[eol] != '\n')
			eol++;
		p->line++;
		char buf[1024];
		size_t n = eol - pos;
		if (n >= sizeof(buf)) {
			perr(p, NULL, "line longer than %zu characters", sizeof(buf) - 1);
			pos = eol + 1;
			continue;
		}
		memcpy(buf, text + pos, n);
		buf[n] = '\0';
		pos = eol + 1;
		if (memchr(buf, '\0', n)) {
			perr(p, NULL, "NUL byte in line");
			continue;
		}
		char *hash = strstr(buf, " #");
		if (hash)
			*hash = '\0';
		char *line = strstrip(buf);
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (*line == '[') {
			parse_header(p, line);
			p->in_bad_section = p->sec == SEC_NONE;
			if (p->sec != SEC_NONE && !sections[p->sec].named) {
				if (seen_single[p->sec]) {
					perr(p, NULL, "[%s] appears twice", sections[p->sec].name);
					p->sec = SEC_NONE;
					p->obj = NULL;
				}
				seen_single[p->sec] = true;
			}
		} else if (p->sec == SEC_NONE && !p->in_bad_section) {
			perr(p, NULL, "'key = value' before any [section]");
		} else {
			parse_keyval(p, line);
		}
	}
}

void cfg_apply_override(struct parse_ctx *p, const struct cfg_override *o)
{
	char sec[2 * CFG_NAME_MAX];
	snprintf(sec, sizeof(sec), "%s", o->section);
	char *dot = strchr(sec, '.');
	char *name = NULL;
	if (dot) {
		*dot = '\0';
		name = dot + 1;
	}
	p->override = true;
	p->seen = 0;
	snprintf(p->sec_name, sizeof(p->sec_name), "%s", o->section);
	int k;
	for (k = SEC_CLUSTER; k < _SEC_MAX; k++)
		if (strcmp(sections[k].name, sec) == 0)
			break;
	p->sec = SEC_NONE;
	p->obj = NULL;
	if (k == _SEC_MAX || k == SEC_PAIR || k == SEC_COMPARTMENT || k == SEC_PROFILE ||
	    sections[k].named != (name != NULL)) {
		perr(p, o->key, "unknown section");
		return;
	}
	struct cfg *c = p->cfg;
	if (k == SEC_NODE) {
		int i = cfg_find_node(c, name);
		if (i < 0) {
			perr(p, o->key, "no node '%s' in the configuration", name);
			return;
		}
		p->obj = &c->nodes[i];
	} else if (k == SEC_STORAGE) {
		int i = cfg_find_storage(c, name);
		if (i < 0) {
			perr(p, o->key, "no storage '%s' in the configuration", name);
			return;
		}
		p->obj = &c->storage[i];
	} else if (k == SEC_QUORUM) {
		c->has_quorum = true;
		p->obj = &c->quorum;
	} else if (k == SEC_ROLE) {
		int r = lookup_str(kind_str, _CFG_KIND_MAX, name);
		if (r < 0) {
			perr(p, o->key, "unknown instance kind");
			return;
		}
		p->obj = &c->roles[r];
	} else {
		p->obj = c;
	}
	p->sec = (enum section_kind)k;
	char line[CFG_PATH_MAX + CFG_NAME_MAX + 4];
	snprintf(line, sizeof(line), "%s=%s", o->key, o->value);
	parse_keyval(p, line);
}
