#include "mpath.h"
#include "mpath_int.h"

#include "util.h"

#include <inttypes.h>

/* The `paths` console command: per storage and per path, state and counters, as text for
 * a dumb terminal or as one JSON document. */

static void format_path_json(const struct mpath *m, int i, uint64_t now, struct strbuf *o)
{
	const struct path *p = &m->paths[i];
	const struct mpath_path *cp = &m->core.paths[i];
	const struct mpath_stats *st = &cp->st;
	uint64_t good = st->ios ? st->ios : 1;
	sb_puts(o, "{\"portal\":");
	sb_json_str(o, p->portal);
	sb_printf(o,
		  ",\"compartment\":\"%s\",\"state\":\"%s\",\"since_s\":%.1f,\"inflight\":%u,"
		  "\"held\":%u,\"ios\":%" PRIu64 ",\"reads\":%" PRIu64 ",\"writes\":%" PRIu64
		  ",\"bytes_read\":%" PRIu64 ",\"bytes_written\":%" PRIu64 ",\"errors\":%" PRIu64
		  ",\"unit_attentions\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"reissued\":%" PRIu64
		  ",\"state_changes\":%" PRIu64 ",\"lat_avg_us\":%" PRIu64
		  ",\"lat_max_us\":%" PRIu64 "}",
		  m->cfg->compartments[m->st->portals[i].compartment].name,
		  mpath_path_state_to_str(cp->state), (double)(now - cp->since_us) / 1e6,
		  cp->inflight, cp->held, st->ios, st->reads, st->writes, st->bytes_read,
		  st->bytes_written, st->errors, st->unit_attentions, st->timeouts, st->reissued,
		  st->state_changes, st->lat_sum_us / good, st->lat_max_us);
}

static void format_one(const struct mpath *m, bool json, struct strbuf *o)
{
	uint64_t now = now_usec();
	int up = mpath_core_up_count(&m->core);
	if (json) {
		sb_puts(o, "{\"name\":");
		sb_json_str(o, m->st->name);
		sb_puts(o, ",\"dev\":");
		sb_json_str(o, m->dev[0] ? m->dev : "none");
		sb_puts(o, ",\"designator\":");
		sb_json_str(o, m->ident_known ? m->id.designator : "unknown");
		sb_printf(o,
			  ",\"size\":%" PRIu64 ",\"selector\":\"%s\",\"up\":%d,\"total\":%d,"
			  "\"paths\":[",
			  m->id.size, cfg_path_selector_to_str(m->st->selector), up,
			  m->core.n_paths);
		for (int i = 0; i < m->core.n_paths; i++) {
			if (i)
				sb_putc(o, ',');
			format_path_json(m, i, now, o);
		}
		sb_puts(o, "]}");
		return;
	}
	sb_printf(o, "storage %s  dev %s  paths %d/%d up  %s  size %" PRIu64 "  %s\n", m->st->name,
		  m->dev[0] ? m->dev : "none", up, m->core.n_paths,
		  cfg_path_selector_to_str(m->st->selector), m->id.size,
		  m->ident_known ? m->id.designator : "identity unknown");
	sb_puts(o,
		"  portal                  state    since     ios  MiB-rd  MiB-wr  err   ua  t/o  "
		"moved  chg  lat-avg  lat-max\n");
	for (int i = 0; i < m->core.n_paths; i++) {
		const struct mpath_path *cp = &m->core.paths[i];
		const struct mpath_stats *st = &cp->st;
		uint64_t good = st->ios ? st->ios : 1;
		sb_printf(o,
			  "  %-22s  %-7s %6.1fs %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %4" PRIu64
			  " %4" PRIu64 " %4" PRIu64 " %6" PRIu64 " %4" PRIu64 " %6" PRIu64
			  "us %6" PRIu64 "us\n",
			  m->paths[i].portal, mpath_path_state_to_str(cp->state),
			  (double)(now - cp->since_us) / 1e6, st->ios, st->bytes_read >> 20,
			  st->bytes_written >> 20, st->errors, st->unit_attentions, st->timeouts,
			  st->reissued, st->state_changes, st->lat_sum_us / good, st->lat_max_us);
	}
}

void mpath_format_paths(struct mpath *const *ms, size_t n, bool json, struct strbuf *out)
{
	if (json)
		sb_puts(out, "{\"storage\":[");
	for (size_t i = 0; i < n; i++) {
		if (json && i)
			sb_putc(out, ',');
		format_one(ms[i], json, out);
	}
	if (json)
		sb_puts(out, "]}\n");
	else if (n == 0)
		sb_puts(out, "no storage on this node\n");
}

struct paths_cmd {
	struct mpath *const *ms;
	const size_t *n;
};

static int cmd_paths(struct console_req *req, void *ud)
{
	const struct paths_cmd *pc = ud;
	if (req->argc > 1) {
		console_req_error(req, "usage: paths");
		return -EINVAL;
	}
	mpath_format_paths(pc->ms, *pc->n, req->json, &req->out);
	return 0;
}

int mpath_console_register(struct console *c, struct mpath *const *ms, const size_t *n)
{
	/* Lives as long as the console: registrations cannot be undone. */
	static struct paths_cmd pc;
	pc = (struct paths_cmd){.ms = ms, .n = n};
	return console_register(c, "paths", "",
				"iSCSI paths per storage: state, I/O, bytes, errors, latency",
				cmd_paths, &pc);
}
