#include "cmdline.h"

#include <arpa/inet.h>
#include <string.h>

/* Splits the next word off `*p`, honouring double quotes as the kernel does. */
static bool next_word(const char **p, char *out, size_t n)
{
	const char *s = *p;
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	if (!*s)
		return false;
	size_t o = 0;
	bool quoted = false;
	for (; *s && (quoted || (*s != ' ' && *s != '\t' && *s != '\n')); s++) {
		if (*s == '"') {
			quoted = !quoted;
			continue;
		}
		if (o + 1 < n)
			out[o++] = *s;
	}
	out[o] = '\0';
	*p = s;
	return true;
}

static int netmask_len(const struct cfg_prefix *m)
{
	int len = 0, bytes = m->family == AF_INET ? 4 : 16;
	bool ended = false;
	for (int i = 0; i < bytes; i++) {
		for (int b = 7; b >= 0; b--) {
			bool set = m->addr[i] & (1 << b);
			if (set && ended)
				return -EINVAL;
			if (set)
				len++;
			else
				ended = true;
		}
	}
	return len;
}

static int ip_field(const char *f, struct cfg_prefix *ret, bool *has)
{
	if (!*f)
		return 0;
	if (cfg_prefix_parse(f, false, ret) < 0)
		return -EINVAL;
	*has = true;
	return 0;
}

int kip_parse(const char *val, struct kip *ret)
{
	static const char *const dhcp[] = {"dhcp", "on", "any", "bootp", "both", "dhcp6", "rarp"};
	struct kip k = {0};
	for (size_t i = 0; i < ARRAY_SIZE(dhcp); i++)
		if (strcmp(val, dhcp[i]) == 0) {
			k.mode = KIP_DHCP;
			*ret = k;
			return 0;
		}
	if (strcmp(val, "off") == 0 || strcmp(val, "none") == 0) {
		k.mode = KIP_OFF;
		*ret = k;
		return 0;
	}
	/* Fields may be IPv6 in brackets; split on ':' outside brackets. */
	char fields[10][64] = {{0}};
	int nf = 0;
	size_t o = 0;
	bool br = false;
	for (const char *s = val;; s++) {
		if (*s == '[' && o == 0) {
			br = true;
			continue;
		}
		if (*s == ']' && br) {
			br = false;
			continue;
		}
		if (!*s || (*s == ':' && !br)) {
			if (nf == 10)
				return -EINVAL;
			fields[nf++][o] = '\0';
			o = 0;
			if (!*s)
				break;
			continue;
		}
		if (nf == 10 || o + 1 >= sizeof(fields[0]))
			return -EINVAL;
		fields[nf][o++] = *s;
	}
	bool has_server = false, has_dns0 = false, has_dns1 = false;
	struct cfg_prefix mask;
	if (ip_field(fields[0], &k.client, &k.has_client) < 0 ||
	    ip_field(fields[1], &k.server, &has_server) < 0 ||
	    ip_field(fields[2], &k.gateway, &k.has_gateway) < 0 ||
	    ip_field(fields[3], &mask, &k.has_netmask) < 0 ||
	    ip_field(fields[7], &k.dns[0], &has_dns0) < 0 ||
	    ip_field(fields[8], &k.dns[1], &has_dns1) < 0)
		return -EINVAL;
	k.n_dns = has_dns0 + has_dns1;
	if (strlen(fields[4]) >= sizeof(k.hostname) || strlen(fields[5]) >= sizeof(k.device))
		return -EINVAL;
	strcpy(k.hostname, fields[4]);
	strcpy(k.device, fields[5]);
	const char *ac = fields[6];
	if (!*ac || !strcmp(ac, "off") || !strcmp(ac, "none"))
		k.mode = k.has_client ? KIP_STATIC : KIP_OFF;
	else if (!strcmp(ac, "dhcp") || !strcmp(ac, "on") || !strcmp(ac, "any") ||
		 !strcmp(ac, "dhcp6") || !strcmp(ac, "bootp") || !strcmp(ac, "both"))
		k.mode = KIP_DHCP;
	else
		return -EINVAL;
	if (k.mode == KIP_STATIC && k.has_netmask) {
		if (mask.family != k.client.family)
			return -EINVAL;
		int len = netmask_len(&mask);
		if (len < 0)
			return -EINVAL;
		k.client.len = (uint8_t)len;
	}
	*ret = k;
	return 0;
}

static int set_text(char *dst, size_t n, const char *val)
{
	if (!*val || strlen(val) >= n)
		return -EINVAL;
	strcpy(dst, val);
	return 0;
}

const char *kcmdline_override_refused(const char *section, const char *key)
{
	static const char *const node_net[] = {"handshake", "external", "net", "route"};
	if (!strcmp(section, "timeouts"))
		return NULL;
	if (!strncmp(section, "node.", 5)) {
		for (size_t i = 0; i < ARRAY_SIZE(node_net); i++)
			if (!strcmp(key, node_net[i]))
				return NULL;
		return "only a node's network keys (handshake, external, net, route) may be "
		       "overridden";
	}
	if (!strncmp(section, "storage.", 8))
		return strcmp(key, "root") ? "only a storage's root key may be overridden" : NULL;
	if (!strcmp(section, "layout"))
		return "the disk layout (it can destroy data) comes from cluster.conf only";
	if (!strncmp(section, "profile.", 8) || !strncmp(section, "role.", 5))
		return "hooks (they run code) come from cluster.conf only";
	if (!strcmp(section, "cluster") && !strcmp(key, "key_file"))
		return "the cluster key file comes from cluster.conf only";
	if (!strcmp(section, "cluster") && !strcmp(key, "key_id"))
		return "the cluster key id comes from cluster.conf only";
	if (!strcmp(section, "console"))
		return "the console password comes from cluster.conf only";
	return "not overridable on the kernel command line";
}

static int parse_compartd_key(struct kcmdline *k, const char *key, const char *val, bool has_val)
{
	if (!strcmp(key, "debug")) {
		bool b = true;
		if (has_val && parse_bool(val, &b) < 0)
			return -EINVAL;
		k->debug = b;
		return 0;
	}
	if (!has_val)
		return -EINVAL;
	if (!strcmp(key, "node")) {
		k->has_node = set_text(k->node, sizeof(k->node), val) == 0;
		return k->has_node ? 0 : -EINVAL;
	}
	if (!strcmp(key, "config")) {
		k->has_config = val[0] == '/' && set_text(k->config, sizeof(k->config), val) == 0;
		return k->has_config ? 0 : -EINVAL;
	}
	if (!strcmp(key, "identity_wait")) {
		k->has_identity_wait = parse_duration(val, &k->identity_wait_us) == 0;
		return k->has_identity_wait ? 0 : -EINVAL;
	}
	if (!strcmp(key, "console")) {
		k->has_console = set_text(k->console, sizeof(k->console), val) == 0;
		return k->has_console ? 0 : -EINVAL;
	}
	/* compartd.<section>[.<name>].<key>=value overrides one config value. */
	const char *dot = strrchr(key, '.');
	if (!dot || dot == key)
		return -EINVAL;
	if (k->n_ovr == KCMD_MAX_OVR)
		return -E2BIG;
	struct cfg_override *o = &k->ovr[k->n_ovr];
	size_t sl = (size_t)(dot - key);
	if (sl >= sizeof(o->section) || set_text(o->key, sizeof(o->key), dot + 1) < 0 ||
	    set_text(o->value, sizeof(o->value), val) < 0)
		return -EINVAL;
	memcpy(o->section, key, sl);
	o->section[sl] = '\0';
	if (kcmdline_override_refused(o->section, o->key))
		return -EPERM;
	k->n_ovr++;
	return 0;
}

static int parse_bootif(const char *val, uint8_t mac[6])
{
	/* BOOTIF=01-aa-bb-cc-dd-ee-ff: hardware type 01 (Ethernet), then the MAC. */
	if (strncmp(val, "01-", 3) != 0)
		return -EINVAL;
	return parse_mac(val + 3, mac);
}

/* The reason for a refused compartd.<section>.<key> (without "compartd."). */
static const char *kcmdline_override_refused_key(const char *key)
{
	char sec[2 * CFG_NAME_MAX];
	const char *dot = strrchr(key, '.');
	size_t sl = dot ? (size_t)(dot - key) : 0;
	if (!dot || sl >= sizeof(sec))
		return "not overridable on the kernel command line";
	memcpy(sec, key, sl);
	sec[sl] = '\0';
	const char *why = kcmdline_override_refused(sec, dot + 1);
	return why ? why : "not overridable on the kernel command line";
}

int kcmdline_parse(const char *text, struct kcmdline *ret, struct strbuf *errors)
{
	struct kcmdline k = {0};
	char word[1024];
	int bad = 0;
	const char *p = text;
	while (next_word(&p, word, sizeof(word))) {
		char *eq = strchr(word, '=');
		const char *val = eq ? eq + 1 : "";
		if (eq)
			*eq = '\0';
		int r = 0;
		if (!strncmp(word, "compartd.", 9)) {
			r = parse_compartd_key(&k, word + 9, val, eq != NULL);
		} else if (!strcmp(word, "ip") && eq) {
			if (k.n_ips == KCMD_MAX_IP || kip_parse(val, &k.ips[k.n_ips]) < 0)
				r = -EINVAL;
			else
				k.n_ips++;
		} else if (!strcmp(word, "console") && eq) {
			size_t n = strcspn(val, ",");
			if (n < sizeof(k.kernel_console)) {
				memcpy(k.kernel_console, val, n);
				k.kernel_console[n] = '\0';
			}
		} else if (!strcmp(word, "BOOTIF") && eq) {
			r = parse_bootif(val, k.bootif);
			k.has_bootif = r == 0;
		}
		if (r < 0) {
			bad++;
			if (errors && r == -EPERM)
				sb_printf(errors, "kernel command line: %s refused: %s (SPEC §2)\n",
					  word, kcmdline_override_refused_key(word + 9));
			else if (errors && r == -E2BIG)
				sb_printf(errors,
					  "kernel command line: %s%s%s: ignored, more than %d "
					  "compartd.<section>.<key> settings\n",
					  word, eq ? "=" : "", val, KCMD_MAX_OVR);
			else if (errors)
				sb_printf(errors, "kernel command line: %s%s%s: not understood\n",
					  word, eq ? "=" : "", val);
		}
	}
	*ret = k;
	return bad ? -EINVAL : 0;
}

int kcmdline_read(const char *path, struct kcmdline *ret, struct strbuf *errors)
{
	_cleanup_free_ char *text = NULL;
	int r = read_full_file(path, 64 * 1024, &text, NULL);
	if (r < 0) {
		if (errors)
			sb_printf(errors, "%s: cannot read: %s\n", path, strerror(-r));
		return r;
	}
	return kcmdline_parse(text, ret, errors);
}
