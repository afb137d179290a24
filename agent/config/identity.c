#include "identity.h"

#include <dirent.h>
#include <string.h>

int identity_local_macs(const char *sysfs_net, uint8_t (*out)[6], size_t max)
{
	DIR *d = opendir(sysfs_net);
	if (!d)
		return -errno;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "lo"))
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/%s/address", sysfs_net, de->d_name);
		_cleanup_free_ char *text = NULL;
		if (read_full_file(path, 64, &text, NULL) < 0)
			continue;
		uint8_t mac[6];
		static const uint8_t zero[6];
		if (parse_mac(strstrip(text), mac) < 0 || !memcmp(mac, zero, 6))
			continue;
		bool dup = false;
		for (size_t i = 0; i < n; i++)
			dup |= !memcmp(out[i], mac, 6);
		if (!dup)
			memcpy(out[n++], mac, 6);
	}
	closedir(d);
	return (int)n;
}

void identity_format_macs(const uint8_t (*macs)[6], size_t n_macs, struct strbuf *out)
{
	if (!n_macs)
		sb_puts(out, "none found");
	for (size_t k = 0; k < n_macs; k++) {
		char m[18];
		format_mac(macs[k], m);
		sb_printf(out, "%s%s", k ? " " : "", m);
	}
}

/* Returns the number of nodes owning any of the MACs; the first in *ret. */
static int match_macs(const struct cfg *c, const uint8_t (*macs)[6], size_t n_macs, int *ret,
		      struct strbuf *names)
{
	int found = 0;
	for (int i = 0; i < c->n_nodes; i++) {
		bool hit = false;
		for (int m = 0; m < c->nodes[i].n_macs && !hit; m++)
			for (size_t k = 0; k < n_macs && !hit; k++)
				hit = !memcmp(c->nodes[i].macs[m], macs[k], 6);
		if (!hit)
			continue;
		if (found++ == 0)
			*ret = i;
		sb_printf(names, "%s%s", found > 1 ? ", " : "", c->nodes[i].name);
	}
	return found;
}

int identity_resolve(const struct cfg *c, const char *name, const uint8_t *bootif,
		     const uint8_t (*macs)[6], size_t n_macs, int *ret_node, struct strbuf *err)
{
	if (name && *name) {
		int i = cfg_find_node(c, name);
		if (i < 0) {
			sb_printf(err, "node '%s' is not in %s", name, c->path);
			return -ENOENT;
		}
		*ret_node = i;
		return 0;
	}
	struct strbuf names;
	sb_init(&names);
	int node = -1, r;
	if (bootif) {
		const uint8_t(*b)[6] = (const uint8_t(*)[6])bootif;
		if (match_macs(c, b, 1, &node, &names) == 1) {
			sb_free(&names);
			*ret_node = node;
			return 0;
		}
		sb_reset(&names);
	}
	int found = match_macs(c, macs, n_macs, &node, &names);
	if (found == 1) {
		*ret_node = node;
		r = 0;
	} else if (found == 0) {
		bool any = false;
		for (int i = 0; i < c->n_nodes && !any; i++)
			any = c->nodes[i].n_macs > 0;
		sb_printf(err, "no node of %s has any of this host's MAC addresses (", c->path);
		identity_format_macs(macs, n_macs, err);
		sb_printf(err, ")%s; set compartd.node= on the kernel command line",
			  any ? "" : ": it configures no mac = at all");
		/* a NIC with a configured MAC may still appear, unless there is none */
		r = any ? -ENXIO : -ENOENT;
	} else {
		sb_printf(err,
			  "this host's MAC addresses match several nodes (%s); "
			  "set compartd.node= on the kernel command line",
			  names.buf);
		r = -ENOTUNIQ;
	}
	sb_free(&names);
	return r;
}
