/* The normalized configuration: what the agent will act on, defaults filled in,
 * in a stable order that golden tests compare. Parsing it again gives the same cfg. */
#include "config.h"

#include <inttypes.h>
#include <sodium.h>
#include <string.h>

static void put_duration(struct strbuf *out, const char *key, uint64_t v)
{
	char b[32];
	format_duration(v, b, sizeof(b));
	sb_printf(out, "%s = %s\n", key, b);
}

static void put_size(struct strbuf *out, const char *key, const struct cfg_size *s)
{
	char b[32];
	if (s->pct)
		snprintf(b, sizeof(b), "%u%%", s->pct);
	else
		format_size(s->bytes, b, sizeof(b));
	sb_printf(out, "%s = %s\n", key, b);
}

static void print_storage_keys(const struct cfg *c, const struct cfg_storage *s, bool quorum,
			       struct strbuf *out)
{
	sb_printf(out, "target = %s\nlun = %ld\n", s->target, s->lun);
	for (int i = 0; i < s->n_portals; i++) {
		const struct cfg_portal *po = &s->portals[i];
		bool v6 = strchr(po->host, ':') != NULL;
		sb_printf(out, "portal = %s %s%s%s:%u\n", c->compartments[po->compartment].name,
			  v6 ? "[" : "", po->host, v6 ? "]" : "", po->port);
	}
	if (s->designator[0])
		sb_printf(out, "designator = %s\n", s->designator);
	if (s->chap_user[0])
		sb_printf(out, "chap_user = %s\nchap_secret_file = %s\n", s->chap_user,
			  s->chap_secret_file);
	if (!quorum)
		sb_printf(out, "path_selector = %s\nroot = %s\n",
			  cfg_path_selector_to_str(s->selector), s->root ? "yes" : "no");
}

static void print_compartment(const struct cfg *c, const struct cfg_compartment *co,
			      struct strbuf *out)
{
	sb_printf(out, "\n[compartment %s]\nzone = %s\npair = %s\n", co->name,
		  cfg_zone_to_str(co->zone), c->pairs[co->pair].name);
	for (int i = 0; i < co->n_infra_initiators; i++)
		sb_printf(out, "infra_initiator = %s\n", co->infra_initiators[i]);
	if (co->guest_chap_user[0])
		sb_printf(out, "guest_chap_user = %s\nguest_chap_secret_file = %s\n",
			  co->guest_chap_user, co->guest_chap_secret_file);
	if (co->guest_chap_mutual_user[0])
		sb_printf(out, "guest_chap_mutual_user = %s\nguest_chap_mutual_secret_file = %s\n",
			  co->guest_chap_mutual_user, co->guest_chap_mutual_secret_file);
}

static void print_node(const struct cfg *c, const struct cfg_node *n, struct strbuf *out)
{
	char a[80];
	sb_printf(out, "\n[node %s]\ncompartment = %s\npriority = %ld\nmgmt_capable = %s\n",
		  n->name, c->compartments[n->compartment].name, n->priority,
		  n->mgmt_capable ? "yes" : "no");
	for (int i = 0; i < n->n_macs; i++) {
		format_mac(n->macs[i], a);
		sb_printf(out, "mac = %s\n", a);
	}
	cfg_addr_format(&n->handshake, a, sizeof(a));
	sb_printf(out, "handshake = %s\n", a);
	if (n->has_external) {
		cfg_addr_format(&n->external, a, sizeof(a));
		sb_printf(out, "external = %s\n", a);
	}
	cfg_addr_format(&n->storage, a, sizeof(a));
	sb_printf(out, "storage = %s\n", a);
	if (n->disks_auto) {
		sb_puts(out, "disks = auto\n");
	} else {
		sb_puts(out, "disks =");
		for (int i = 0; i < n->n_disks; i++)
			sb_printf(out, " %s", n->disks[i]);
		sb_putc(out, '\n');
	}
	for (int i = 0; i < n->n_nets; i++) {
		const struct cfg_net *ne = &n->nets[i];
		sb_printf(out, "net = %s ", ne->match);
		if (ne->dhcp) {
			sb_puts(out, "dhcp");
		} else {
			cfg_prefix_format(&ne->addr, true, a, sizeof(a));
			sb_puts(out, a);
		}
		if (ne->vlan)
			sb_printf(out, " vlan=%u", ne->vlan);
		if (ne->has_gateway) {
			cfg_prefix_format(&ne->gateway, false, a, sizeof(a));
			sb_printf(out, " gateway=%s", a);
		}
		sb_putc(out, '\n');
	}
	for (int i = 0; i < n->n_routes; i++) {
		char g[64];
		cfg_prefix_format(&n->routes[i].dest, true, a, sizeof(a));
		cfg_prefix_format(&n->routes[i].via, false, g, sizeof(g));
		sb_printf(out, "route = %s via %s\n", a, g);
	}
}

void cfg_print(const struct cfg *c, struct strbuf *out)
{
	char id[2 * CFG_KEY_ID_BYTES + 1];
	sodium_bin2hex(id, sizeof(id), c->key_id, CFG_KEY_ID_BYTES);
	sb_printf(
	    out,
	    "[cluster]\nname = %s\nkey_file = %s\n%s%s%srules = %s\nport = %u\nversion = %" PRIu64
	    "\n",
	    c->name, c->key_file, c->has_key_id ? "key_id = " : "", c->has_key_id ? id : "",
	    c->has_key_id ? "\n" : "", c->rules_file, c->port, c->version);
	for (int i = 0; i < c->n_pairs; i++)
		sb_printf(out, "\n[pair %s]\n", c->pairs[i].name);
	for (int i = 0; i < c->n_compartments; i++)
		print_compartment(c, &c->compartments[i], out);
	for (int i = 0; i < c->n_nodes; i++)
		print_node(c, &c->nodes[i], out);
	for (int i = 0; i < c->n_storage; i++) {
		sb_printf(out, "\n[storage %s]\n", c->storage[i].name);
		print_storage_keys(c, &c->storage[i], false, out);
	}
	sb_puts(out, "\n[quorum]\n");
	if (c->has_quorum) {
		sb_puts(out, "mode = device\n");
		print_storage_keys(c, &c->quorum, true, out);
	} else {
		sb_puts(out, "mode = none\n");
	}
	const struct cfg_layout *l = &c->layout;
	char b[32];
	sb_puts(out, "\n[layout]\n");
	put_size(out, "boot", &l->boot);
	put_size(out, "state", &l->state);
	put_size(out, "infra", &l->infra);
	put_size(out, "admin", &l->admin);
	format_size(l->min_disk, b, sizeof(b));
	sb_printf(out, "min_disk = %s\n", b);
	format_size(l->min_guest, b, sizeof(b));
	sb_printf(out, "min_guest = %s\n", b);
	for (int i = 0; i < l->n_wipes; i++)
		sb_printf(out, "wipe = %s\n", l->wipes[i]);
	const struct cfg_timeouts *t = &c->timeouts;
	sb_puts(out, "\n[timeouts]\n");
	put_duration(out, "handshake_timeout", t->handshake_timeout);
	put_duration(out, "handshake_window", t->handshake_window);
	put_duration(out, "heartbeat_interval", t->heartbeat_interval);
	put_duration(out, "disk_heartbeat_interval", t->disk_heartbeat_interval);
	put_duration(out, "lease", t->lease);
	put_duration(out, "path_check_interval", t->path_check_interval);
	put_duration(out, "path_timeout", t->path_timeout);
	put_duration(out, "no_path_timeout", t->no_path_timeout);
	put_duration(out, "hook_timeout", t->hook_timeout);
	put_duration(out, "t_max", t->t_max);
	put_duration(out, "query_timeout", t->query_timeout);
	put_duration(out, "health_interval", t->health_interval);
	put_duration(out, "config_probation", t->config_probation);
	sb_puts(out, "\n[fencing]\n");
	sb_printf(out, "watchdog = %s\n", c->fencing.watchdog);
	put_duration(out, "watchdog_timeout", c->fencing.watchdog_timeout);
	if (c->fencing.pet_window) /* (0: the default, one read interval) */
		put_duration(out, "pet_window", c->fencing.pet_window);
	for (int i = 0; i < c->n_profiles; i++) {
		sb_printf(out, "\n[profile %s]\n", c->profiles[i].name);
		for (int j = 0; j < c->profiles[i].n_run; j++)
			sb_printf(out, "run = %s\n", c->profiles[i].run[j]);
		for (int j = 0; j < c->profiles[i].n_stop; j++)
			sb_printf(out, "stop = %s\n", c->profiles[i].stop[j]);
	}
	for (int k = 0; k < _CFG_KIND_MAX; k++) {
		const struct cfg_role_hooks *r = &c->roles[k];
		if (!r->promote[0] && !r->demote[0])
			continue;
		sb_printf(out, "\n[role %s]\n", cfg_kind_to_str((enum cfg_kind)k));
		if (r->promote[0])
			sb_printf(out, "promote = %s\n", r->promote);
		if (r->demote[0])
			sb_printf(out, "demote = %s\n", r->demote);
	}
}
