/* `compartctl config [--json]`: what runs here, what is recorded on cmpt-state, and what
 * every other node announces in its handshakes (hs_peer_config). */
#include "config_cmd.h"

#include "agent.h"
#include "cfgsync.h"
#include "config_store.h"
#include "console.h"
#include "hs.h"
#include "journal.h"
#include "query.h"

#include <inttypes.h>
#include <sodium.h>
#include <string.h>

static void hex(const uint8_t h[32], char out[65])
{
	sodium_bin2hex(out, 65, h, 32);
}

/* same / newer / older / conflict (same number, other file) / unknown. */
static const char *relation(const struct cfg *c, bool known, uint64_t v, const uint8_t h[32])
{
	if (!known)
		return "unknown";
	if (v == c->version)
		return memcmp(h, c->hash, 32) ? "conflict" : "same";
	return v > c->version ? "newer" : "older";
}

static void text_peers(struct agent *a, struct strbuf *o)
{
	const struct cfg *c = a->env.cfg;
	for (int i = 0; i < c->n_nodes; i++) {
		if (i == a->env.self)
			continue;
		uint64_t v = 0;
		uint8_t h[32] = {0};
		char hx[65];
		bool known = a->hs && hs_peer_config(a->hs, i, &v, h);
		hex(h, hx);
		if (known)
			sb_printf(o, "  %-12s version %" PRIu64 ", blake2b %.16s… (%s)\n",
				  c->nodes[i].name, v, hx, relation(c, true, v, h));
		else
			sb_printf(o, "  %-12s unknown (not heard)\n", c->nodes[i].name);
	}
}

static void print_text(struct agent *a, const struct journal_state *j, struct strbuf *o)
{
	const struct cfg *c = a->env.cfg;
	char hx[65];
	hex(c->hash, hx);
	sb_printf(o, "running         version %" PRIu64 ", blake2b %s\n", c->version, hx);
	if (j && j->has_good) {
		hex(j->good.hash, hx);
		sb_printf(o, "last-known-good version %" PRIu64 ", blake2b %s\n", j->good.version,
			  hx);
	} else {
		sb_puts(o, "last-known-good none recorded\n");
	}
	for (int i = 0; j && i < j->n_failed; i++) {
		hex(j->failed[i].hash, hx);
		sb_printf(o, "failed          version %" PRIu64 ", blake2b %s\n",
			  j->failed[i].version, hx);
	}
	if (j && j->has_trial) {
		hex(j->trial.hash, hx);
		sb_printf(o, "on probation    version %" PRIu64 ", blake2b %s (booted %u times)\n",
			  j->trial.version, hx, (unsigned)j->trial_boots);
	}
	if (a->pending.version) {
		hex(a->pending.hash, hx);
		sb_printf(o, "pending restart version %" PRIu64 ", blake2b %s (%s)\n",
			  a->pending.version, hx, a->pending.reason);
	}
	sb_puts(o, "peers\n");
	text_peers(a, o);
}

static void json_ver(struct strbuf *o, const char *key, uint64_t v, const uint8_t h[32])
{
	char hx[65];
	hex(h, hx);
	sb_printf(o, "\"%s\":{\"version\":%" PRIu64 ",\"hash\":\"%s\"}", key, v, hx);
}

static void print_json(struct agent *a, const struct journal_state *j, struct strbuf *o)
{
	const struct cfg *c = a->env.cfg;
	sb_putc(o, '{');
	json_ver(o, "running", c->version, c->hash);
	sb_putc(o, ',');
	if (j && j->has_good)
		json_ver(o, "last_known_good", j->good.version, j->good.hash);
	else
		sb_puts(o, "\"last_known_good\":null");
	sb_puts(o, ",\"failed\":[");
	for (int i = 0; j && i < j->n_failed; i++) {
		char hx[65];
		hex(j->failed[i].hash, hx);
		sb_printf(o, "%s{\"version\":%" PRIu64 ",\"hash\":\"%s\"}", i ? "," : "",
			  j->failed[i].version, hx);
	}
	sb_puts(o, "],");
	if (j && j->has_trial)
		json_ver(o, "probation", j->trial.version, j->trial.hash);
	else
		sb_puts(o, "\"probation\":null");
	sb_putc(o, ',');
	if (a->pending.version)
		json_ver(o, "pending_restart", a->pending.version, a->pending.hash);
	else
		sb_puts(o, "\"pending_restart\":null");
	sb_puts(o, ",\"peers\":[");
	for (int i = 0, first = 1; i < c->n_nodes; i++) {
		if (i == a->env.self)
			continue;
		uint64_t v = 0;
		uint8_t h[32] = {0};
		bool known = a->hs && hs_peer_config(a->hs, i, &v, h);
		sb_puts(o, first ? "{\"node\":" : ",{\"node\":");
		first = 0;
		sb_json_str(o, c->nodes[i].name);
		if (known) {
			char hx[65];
			hex(h, hx);
			sb_printf(o, ",\"version\":%" PRIu64 ",\"hash\":\"%s\"", v, hx);
		}
		sb_printf(o, ",\"relation\":\"%s\"}", relation(c, known, v, h));
	}
	uint64_t asked, served;
	cfgsync_bytes_sent(a->cfgsync, &asked, &served);
	sb_printf(o, "],\"sent_bytes\":{\"asking\":%" PRIu64 ",\"serving\":%" PRIu64 "}}\n", asked,
		  served);
}

static int cmd_push(struct console_req *req, struct agent *a)
{
	struct strbuf msg;
	sb_init(&msg);
	int r = agent_config_push(a, req->argv[2], &msg);
	r = console_req_answer(req, "config push", r, &msg);
	sb_free(&msg);
	return r;
}

static int cmd_rollback(struct console_req *req, struct agent *a)
{
	uint64_t v;
	if (parse_u64(req->argv[2], &v) < 0) {
		console_req_error(req, "usage: config rollback VERSION");
		return -EINVAL;
	}
	struct strbuf msg;
	sb_init(&msg);
	int r = agent_config_rollback(a, v, &msg);
	r = console_req_answer(req, "config rollback", r, &msg);
	sb_free(&msg);
	return r;
}

/* `config status`: `query all config` — every node's own answer over the handshake
 * channel (running, last-known-good, failed), grouped by compartment, and who did not
 * answer. */
static int cmd_status(struct console_req *req, struct agent *a)
{
	static char q[] = "query", all[] = "all", config[] = "config";
	if (!a->query) {
		console_req_error(req, "no cluster queries on this node");
		return -ENOTSUP;
	}
	req->argv[0] = q;
	req->argv[1] = all;
	req->argv[2] = config;
	req->argc = 3;
	return query_cmd(req, a->query);
}

static int cmd_config(struct console_req *req, void *ud)
{
	struct agent *a = ud;
	if (req->argc == 2 && !strcmp(req->argv[1], "status"))
		return cmd_status(req, a);
	if (req->argc == 3 && !strcmp(req->argv[1], "push"))
		return cmd_push(req, a);
	if (req->argc == 3 && !strcmp(req->argv[1], "rollback"))
		return cmd_rollback(req, a);
	if (req->argc != 1) {
		console_req_error(req, "usage: config [status | push FILE | rollback VERSION]");
		return -EINVAL;
	}
	const struct journal_state *j = config_lkg_state(a->lkg);
	if (req->json)
		print_json(a, j, &req->out);
	else
		print_text(a, j, &req->out);
	return 0;
}

void config_cmd_register(struct agent *a)
{
	console_register(a->env.console, "config", "[status|push FILE|rollback N]",
			 "running, last-known-good and failed versions, the peers'; every "
			 "node's (status); push; rollback",
			 cmd_config, a);
}
