/* The guest export read back from configfs and /proc/net: what `guest` shows and what the
 * health checks compare with the plan. */
#include "guest_int.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* One attribute's text, trimmed; "" when absent. */
static void read_attr(const struct guest *g, const char *rel, char *out, size_t n)
{
	char p[CFG_PATH_MAX + GUEST_OP_PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", g->configfs, rel);
	out[0] = '\0';
	char *buf = NULL;
	if (read_full_file(p, 4096, &buf, NULL) < 0)
		return;
	snprintf(out, n, "%s", strstrip(buf));
	free(buf);
}

static uint64_t read_u64_attr(const struct guest *g, const char *rel)
{
	char b[64];
	uint64_t v = 0;
	read_attr(g, rel, b, sizeof(b));
	return parse_u64(b, &v) < 0 ? 0 : v;
}

/* /proc/net/tcp{,6} prints each address as the native-endian 32-bit words of its bytes. */
static void addr_words(const struct sockaddr_storage *ss, char *out, size_t n, uint16_t *port)
{
	const uint8_t *b;
	int words;
	if (ss->ss_family == AF_INET) {
		b = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
		*port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
		words = 1;
	} else {
		b = (const uint8_t *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
		*port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
		words = 4;
	}
	out[0] = '\0';
	for (int i = 0; i < words; i++) {
		uint32_t w;
		memcpy(&w, b + 4 * i, 4);
		snprintf(out + strlen(out), n - strlen(out), "%08X", w);
	}
}

/* A socket in LISTEN (0A) on the portal's address and port, or on the wildcard. */
static bool portal_listening(const struct guest *g, const struct cfg_addr *a)
{
	char want[40], any[40] = "";
	uint16_t port;
	addr_words(&a->ss, want, sizeof(want), &port);
	memset(any, '0', strlen(want));
	char p[CFG_PATH_MAX + 8];
	snprintf(p, sizeof(p), "%s/%s", g->proc_net, a->ss.ss_family == AF_INET ? "tcp" : "tcp6");
	_cleanup_fclose_ FILE *f = fopen(p, "re");
	char line[512];
	while (f && fgets(line, sizeof(line), f)) {
		char local[64], st[8];
		unsigned lport;
		if (sscanf(line, " %*d: %63[0-9A-Fa-f]:%x %*s %7s", local, &lport, st) != 3)
			continue;
		if (lport == port && !strcmp(st, "0A") &&
		    (!strcmp(local, want) || !strcmp(local, any)))
			return true;
	}
	return false;
}

static void read_acls(const struct guest *g, struct guest_status *s)
{
	char p[CFG_PATH_MAX + GUEST_OP_PATH_MAX + 8];
	snprintf(p, sizeof(p), "%s/%s/acls", g->configfs, g->plan->tpg);
	DIR *d = opendir(p);
	struct dirent *e;
	while (d && (e = readdir(d)) && s->n_acls < (int)(sizeof(s->acls) / sizeof(s->acls[0]))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(s->acls[s->n_acls++], CFG_IQN_MAX, "%.*s", CFG_IQN_MAX - 1, e->d_name);
		/* LIO's info says "LIO Session ID" while the initiator is logged in. */
		char rel[GUEST_OP_PATH_MAX + 2 * CFG_IQN_MAX + 64], info[1024];
		snprintf(rel, sizeof(rel), "%s/acls/%s/info", g->plan->tpg, e->d_name);
		read_attr(g, rel, info, sizeof(info));
		if (strstr(info, "LIO Session ID") && s->n_sessions < GUEST_MAX_SESSIONS)
			snprintf(s->sessions[s->n_sessions++], CFG_IQN_MAX, "%.*s", CFG_IQN_MAX - 1,
				 e->d_name);
	}
	if (d)
		closedir(d);
}

static void read_stats(const struct guest *g, struct guest_status *s)
{
	char rel[GUEST_OP_PATH_MAX + 96];
	const char *st = "lun/lun_0/statistics/scsi_tgt_port";
	snprintf(rel, sizeof(rel), "%s/%s/read_mbytes", g->plan->tpg, st);
	s->read_mbytes = read_u64_attr(g, rel);
	snprintf(rel, sizeof(rel), "%s/%s/write_mbytes", g->plan->tpg, st);
	s->write_mbytes = read_u64_attr(g, rel);
	snprintf(rel, sizeof(rel), "%s/%s/in_cmds", g->plan->tpg, st);
	s->cmds = read_u64_attr(g, rel);
}

int guest_status_read(const struct guest *g, struct guest_status *s)
{
	*s = (struct guest_status){0};
	if (!g->exported)
		return -ENOENT;
	char rel[GUEST_OP_PATH_MAX + 32], b[16];
	snprintf(rel, sizeof(rel), "%s/enable", g->plan->tpg);
	read_attr(g, rel, b, sizeof(b));
	s->tpg_enabled = !strcmp(b, "1");
	struct cfg_addr a;
	s->portal_listening =
	    cfg_addr_parse(g->plan->portal, CFG_GUEST_PORT, &a) == 0 && portal_listening(g, &a);
	read_attr(g, GUEST_BACKSTORE "/udev_path", s->udev_path, sizeof(s->udev_path));
	char serial[128];
	read_attr(g, GUEST_BACKSTORE "/wwn/vpd_unit_serial", serial, sizeof(serial));
	const char *colon = strstr(serial, "Number:"); /* "T10 VPD Unit Serial Number: …" */
	snprintf(s->serial, sizeof(s->serial), "%s", colon ? colon + 8 : serial);
	strstrip(s->serial);
	s->size = s->udev_path[0] ? disk_dev_size(s->udev_path) : 0;
	read_acls(g, s);
	read_stats(g, s);
	return 0;
}

static void format_json(const struct guest *g, const struct guest_status *s, struct strbuf *o)
{
	const struct guest_plan *p = g->plan;
	sb_printf(o, "{\"exported\":%s,\"reason\":", g->exported ? "true" : "false");
	sb_json_str(o, g->why);
	if (!g->exported) {
		sb_puts(o, "}\n");
		return;
	}
	sb_puts(o, ",\"target\":");
	sb_json_str(o, p->iqn);
	sb_printf(o, ",\"lun\":%d,\"portal\":", GUEST_LUN);
	sb_json_str(o, p->portal);
	sb_puts(o, ",\"partition\":");
	sb_json_str(o, p->part.path);
	sb_puts(o, ",\"guid\":");
	sb_json_str(o, p->part.guid);
	sb_puts(o, ",\"designator\":");
	sb_json_str(o, p->naa);
	sb_printf(o,
		  ",\"size\":%" PRIu64 ",\"enabled\":%s,\"listening\":%s,\"chap\":%s,"
		  "\"mutual_chap\":%s,\"acls\":[",
		  s->size, s->tpg_enabled ? "true" : "false",
		  s->portal_listening ? "true" : "false", p->chap ? "true" : "false",
		  p->mutual_chap ? "true" : "false");
	for (int i = 0; i < s->n_acls; i++) {
		sb_puts(o, i ? "," : "");
		sb_json_str(o, s->acls[i]);
	}
	sb_puts(o, "],\"sessions\":[");
	for (int i = 0; i < s->n_sessions; i++) {
		sb_puts(o, i ? "," : "");
		sb_json_str(o, s->sessions[i]);
	}
	sb_printf(o,
		  "],\"read_mbytes\":%" PRIu64 ",\"write_mbytes\":%" PRIu64 ",\"commands\":%" PRIu64
		  "}\n",
		  s->read_mbytes, s->write_mbytes, s->cmds);
}

static void format_text(const struct guest *g, const struct guest_status *s, struct strbuf *o)
{
	const struct guest_plan *p = g->plan;
	if (!g->exported) {
		sb_printf(o, "nothing exported: %s\n", g->why);
		return;
	}
	sb_printf(o, "target     %s lun %d\nportal     %s (%s, %s)\n", p->iqn, GUEST_LUN, p->portal,
		  s->tpg_enabled ? "enabled" : "DISABLED",
		  s->portal_listening ? "listening" : "NOT listening");
	sb_printf(o, "partition  %s (GUID %s, %" PRIu64 " MiB)\ndesignator %s\n", p->part.path,
		  p->part.guid, s->size / DISK_MIB, p->naa);
	sb_printf(o, "auth       %s\n", p->mutual_chap ? "mutual CHAP" : p->chap ? "CHAP" : "none");
	for (int i = 0; i < s->n_acls; i++) {
		bool on = false;
		for (int j = 0; j < s->n_sessions; j++)
			on = on || !strcmp(s->sessions[j], s->acls[i]);
		sb_printf(o, "acl        %s%s\n", s->acls[i], on ? " (logged in)" : "");
	}
	sb_printf(
	    o, "io         %" PRIu64 " MiB read, %" PRIu64 " MiB written, %" PRIu64 " commands\n",
	    s->read_mbytes, s->write_mbytes, s->cmds);
}

void guest_format(const struct guest *g, const struct guest_status *s, bool json,
		  struct strbuf *out)
{
	if (json)
		format_json(g, s, out);
	else
		format_text(g, s, out);
}
