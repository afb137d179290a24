/* The boot decision: facts from the handshake, the rules, the profile's hooks. */
#include "decision.h"

#include "log.h"
#include "profile.h"

#include <string.h>

struct decision {
	struct node_env *env;
	struct hs *hs;
	struct rules *rules;
	struct timer *t_window, *t_eval;
	bool decided;		   /* the window is over */
	int profile;		   /* current profile, -1 none */
	bool mgmt_running;	   /* this node started the management system */
	bool waiting;		   /* wait-operator hooks done, waiting for `continue` */
	uint64_t fetch_wait_until; /* the window waits for a configuration fetch until then */
	struct profile_run *run;
	bool reeval;  /* contacted set changed while hooks ran */
	bool rerun;   /* a new configuration version changed the hooks while they ran */
	bool changed; /* contacted set or liveness changed since the last evaluation */
	char rule[RULES_NAME_MAX];
	struct rules_facts facts;
	char last_event[128];
	decision_started_fn fn;
	void *ud;
	/* rule 2 after boot (second_mgmt_*) */
	struct timer *t_second;
	uint64_t *second_since;	     /* per node of the cfg: when both were first seen running it */
	struct decision_peer *peers; /* gather_facts' table, per node of the cfg */
};

/* Does node a rank before node b (priority, then lowest name)? */
static bool ranks_before(const struct cfg *cfg, int a, int b)
{
	const struct cfg_node *x = &cfg->nodes[a], *y = &cfg->nodes[b];
	if (x->priority != y->priority)
		return x->priority > y->priority;
	return strcmp(x->name, y->name) < 0;
}

void decision_facts(const struct cfg *cfg, int self, const struct decision_peer *peers,
		    struct rules_facts *ret)
{
	struct rules_facts f = {.mgmt_capable = cfg->nodes[self].mgmt_capable,
				.highest_priority = true};
	for (int i = 0; i < cfg->n_nodes; i++) {
		if (i == self)
			continue;
		const struct decision_peer *p = &peers[i];
		f.peers++;
		if (!p->contacted) {
			if (p->ext_alive != 0 || p->qdev_alive != 0)
				f.uncontacted_alive = true;
			continue;
		}
		f.contacted++;
		if (p->mgmt_running)
			f.mgmt_running = true;
		if (cfg->nodes[i].mgmt_capable && ranks_before(cfg, i, self))
			f.highest_priority = false;
	}
	*ret = f;
}

static void gather_facts(struct decision *d, struct rules_facts *ret)
{
	const struct cfg *cfg = d->env->cfg;
	struct decision_peer *peers = d->peers;
	for (int i = 0; i < cfg->n_nodes; i++) {
		peers[i] = (struct decision_peer){0};
		if (i == d->env->self)
			continue;
		/* A channel the config does not have cannot show the node alive. */
		peers[i] = (struct decision_peer){
		    .contacted = hs_peer_contacted(d->hs, i),
		    .mgmt_running = hs_peer_mgmt_running(d->hs, i),
		    .ext_alive = cfg->nodes[i].has_external ? hs_peer_external_alive(d->hs, i) : 0,
		    .qdev_alive = cfg->has_quorum ? hs_peer_qdev_alive(d->hs, i) : 0,
		};
	}
	decision_facts(cfg, d->env->self, peers, ret);
}

/* Re-reads the rules file; on failure keeps the rules already loaded. */
static void load_rules(struct decision *d)
{
	const char *path = d->env->cfg->rules_file;
	char *text = NULL;
	size_t len = 0;
	struct strbuf err;
	sb_init(&err);
	struct rules *r = NULL;
	int k = read_full_file(path, RULES_MAX_TEXT, &text, &len);
	if (k < 0)
		log_error_errno(k, "cannot read the rules file %s", path);
	else if (rules_parse(path, text, len, &r, &err) < 0)
		log_error("rules refused:\n%s", err.buf ? err.buf : "");
	free(text);
	sb_free(&err);
	if (r) {
		rules_free(d->rules);
		d->rules = r;
	} else if (d->rules) {
		log_warn("keeping the rules loaded before");
	}
}

static void emit_decision(struct decision *d, const char *rule, int profile)
{
	char key[128];
	snprintf(key, sizeof(key), "%s %d %ld/%ld", rule, profile, d->facts.contacted,
		 d->facts.peers);
	if (!strcmp(key, d->last_event))
		return;
	snprintf(d->last_event, sizeof(d->last_event), "%s", key);
	struct event ev;
	event_begin(&ev, "decision");
	event_add(&ev, "rule", rule);
	event_add(&ev, "profile", rules_profile_to_str((enum rules_profile)profile));
	event_addf(&ev, "contacted", "%ld/%ld", d->facts.contacted, d->facts.peers);
	event_emit(&ev);
}

static void start_profile(struct decision *d, int profile);
static void second_mgmt_watch(struct decision *d);

static void on_profile_done(struct profile_run *run, enum profile_state st, void *ud)
{
	struct decision *d = ud;
	if (d->rerun) { /* the hooks that ran are the previous version's */
		d->rerun = false;
		start_profile(d, d->profile);
		return;
	}
	if (d->profile ==
	    RULES_PROFILE_WAIT_OPERATOR) { /* hooks ok or failed: the operator decides */
		d->waiting = true;
		log_notice(
		    "waiting for the operator: `continue` on the console releases this node");
	}
	if (d->fn)
		d->fn(d, d->ud);
	if (d->reeval && d->decided) {
		d->reeval = false;
		d->changed = true;
		timer_arm(d->t_eval, 0);
	}
}

static void start_profile(struct decision *d, int profile)
{
	d->run = profile_run_free(d->run);
	d->profile = profile;
	d->waiting = false;
	if (profile == RULES_PROFILE_INFRA_AND_MGMT) {
		d->mgmt_running = true; /* from its first hook on: never start a second one */
		second_mgmt_watch(d);
	}
	hs_set_local(d->hs, (uint8_t)profile, d->mgmt_running);
	const struct cfg *cfg = d->env->cfg;
	d->run = profile_start(d->env->loop, cfg, rules_profile_to_str((enum rules_profile)profile),
			       cfg->nodes[d->env->self].name, on_profile_done, d);
	if (!d->run)
		log_error_errno(-errno, "cannot start profile %s",
				rules_profile_to_str((enum rules_profile)profile));
}

/* May the current profile change to `to`? See decision.h. A failed profile is retried
 * only when the contacted set changed, not on the periodic re-evaluation. */
static bool may_switch(const struct decision *d, int to, bool periodic)
{
	if (d->profile < 0)
		return true;
	bool failed = d->run && profile_run_state(d->run) == PROFILE_STATE_FAILED;
	if (to == d->profile)
		return failed && !periodic;
	if (d->mgmt_running || to == RULES_PROFILE_WAIT_OPERATOR)
		return false;
	return d->profile == RULES_PROFILE_WAIT_OPERATOR ||
	       (d->profile == RULES_PROFILE_INFRA_ONLY && to == RULES_PROFILE_INFRA_AND_MGMT);
}

static void evaluate(struct decision *d, bool periodic)
{
	if (d->run && profile_run_state(d->run) == PROFILE_STATE_RUNNING) {
		d->reeval = true;
		return;
	}
	load_rules(d);
	gather_facts(d, &d->facts);
	int profile = RULES_PROFILE_WAIT_OPERATOR;
	const char *rule = "no-rules";
	int i = d->rules ? rules_eval(d->rules, &d->facts) : -ENOENT;
	if (i >= 0) {
		rule = d->rules->rules[i].name;
		profile = d->rules->rules[i].profile;
	} else {
		log_error("no rule matched (or none loaded): waiting for the operator");
	}
	struct strbuf sb;
	sb_init(&sb);
	rules_facts_format(&d->facts, &sb);
	bool sw = may_switch(d, profile, periodic);
	log_msg(sw ? LOG_LVL_INFO : LOG_LVL_DEBUG, "decision facts: %s", sb.buf ? sb.buf : "");
	sb_free(&sb);
	if (!sw) {
		log_debug("decision: rule %s says %s, staying %s", rule,
			  rules_profile_to_str((enum rules_profile)profile),
			  rules_profile_to_str((enum rules_profile)d->profile));
		return;
	}
	snprintf(d->rule, sizeof(d->rule), "%s", rule);
	emit_decision(d, rule, profile);
	start_profile(d, profile);
}

/* Re-evaluates now, and again every handshake_window while the facts may still change
 * the profile (quorum-device freshness has no change notification). */
static void on_eval(struct timer *t, void *ud)
{
	struct decision *d = ud;
	evaluate(d, !d->changed);
	d->changed = false;
	if (!d->mgmt_running)
		timer_arm_in(t, d->env->cfg->timeouts.handshake_window);
}

static void on_window(struct timer *t, void *ud)
{
	struct decision *d = ud;
	uint64_t now = loop_now(d->env->loop);
	if (d->env->config_fetching && !d->fetch_wait_until)
		d->fetch_wait_until = now + d->env->cfg->timeouts.handshake_window;
	if (d->env->config_fetching && now < d->fetch_wait_until) {
		log_info("decision: waiting for the newer configuration being fetched");
		timer_arm_in(t, d->env->cfg->timeouts.heartbeat_interval);
		return;
	}
	d->decided = true;
	d->changed = true;
	node_env_set_stage(d->env, NODE_STAGE_DECISION);
	on_eval(d->t_eval, d);
}

static void on_contact(int node, bool contacted, void *ud)
{
	struct decision *d = ud;
	d->changed = true;
	if (d->decided)
		timer_arm(d->t_eval, 0);
}

static int operator_continue(struct decision *d, struct strbuf *msg)
{
	if (!d || d->profile != RULES_PROFILE_WAIT_OPERATOR || !d->waiting) {
		sb_printf(msg, "this node is not waiting for an operator (profile %s)",
			  d && d->profile >= 0
			      ? rules_profile_to_str((enum rules_profile)d->profile)
			      : "not decided yet");
		return -EBUSY;
	}
	gather_facts(d, &d->facts);
	int to = d->facts.mgmt_capable && !d->facts.mgmt_running ? RULES_PROFILE_INFRA_AND_MGMT
								 : RULES_PROFILE_INFRA_ONLY;
	log_notice("operator continue: starting %s", rules_profile_to_str((enum rules_profile)to));
	snprintf(d->rule, sizeof(d->rule), "operator-continue");
	emit_decision(d, "operator-continue", to);
	start_profile(d, to);
	sb_printf(msg, "released: starting profile %s",
		  rules_profile_to_str((enum rules_profile)to));
	return 0;
}

static int cmd_decision(struct console_req *req, void *ud)
{
	struct decision *d = ud;
	const char *prof =
	    d->profile >= 0 ? rules_profile_to_str((enum rules_profile)d->profile) : "none";
	const char *st = d->run ? profile_state_to_str(profile_run_state(d->run)) : "none";
	struct strbuf facts;
	sb_init(&facts);
	rules_facts_format(&d->facts, &facts);
	if (req->json) {
		sb_printf(&req->out, "{\"decided\":%s,\"rule\":", d->decided ? "true" : "false");
		sb_json_str(&req->out, d->rule);
		sb_printf(&req->out,
			  ",\"profile\":\"%s\",\"hooks\":\"%s\",\"waiting_for_operator\":%s,"
			  "\"mgmt_running\":%s,\"facts\":",
			  prof, st, d->waiting ? "true" : "false",
			  d->mgmt_running ? "true" : "false");
		const struct rules_facts *f = &d->facts;
		sb_printf(
		    &req->out,
		    "{\"peers\":%ld,\"contacted\":%ld,\"mgmt_running\":%s,"
		    "\"mgmt_capable\":%s,\"highest_priority\":%s,\"uncontacted_alive\":%s}}\n",
		    f->peers, f->contacted, f->mgmt_running ? "true" : "false",
		    f->mgmt_capable ? "true" : "false", f->highest_priority ? "true" : "false",
		    f->uncontacted_alive ? "true" : "false");
	} else {
		sb_printf(
		    &req->out, "rule     %s\nprofile  %s (hooks %s)%s\nmgmt     %s\nfacts    %s\n",
		    d->rule[0] ? d->rule : "-", prof, st,
		    d->waiting ? ", waiting for `continue`" : "",
		    d->mgmt_running ? "running here" : "not here", facts.buf ? facts.buf : "");
	}
	sb_free(&facts);
	return 0;
}

static int cmd_continue(struct console_req *req, void *ud)
{
	struct decision *d = ud;
	if (req->argc != 1) {
		console_req_error(req, "usage: continue");
		return -EINVAL;
	}
	struct strbuf msg;
	sb_init(&msg);
	int r = operator_continue(d, &msg);
	log_notice("console: continue: %s", r < 0 ? "refused" : "released");
	r = console_req_answer(req, "continue", r, &msg);
	sb_free(&msg);
	return r;
}

/* ---- rule 2 after boot (SPEC §6) ----
 * While this node runs management, every heartbeat_interval: a contacted node that
 * reports mgmt_running too is a second management system. The lower-ranked of the two
 * (priority, then name) stops its management with the `stop` hooks of [profile
 * infra-and-mgmt] and goes on as infra-only, once it has seen the conflict for a
 * handshake_timeout and a heartbeat_interval (the other node sees it meanwhile); both log
 * event=decision reason=second-mgmt. */

static void emit_second_mgmt(struct decision *d, int peer, int profile)
{
	struct event ev;
	event_begin(&ev, "decision");
	event_add(&ev, "rule", "second-mgmt");
	event_add(&ev, "profile", rules_profile_to_str((enum rules_profile)profile));
	event_add(&ev, "reason", "second-mgmt");
	event_add(&ev, "peer", d->env->cfg->nodes[peer].name);
	event_add(&ev, "keeps",
		  profile == RULES_PROFILE_INFRA_AND_MGMT ? d->env->cfg->nodes[d->env->self].name
							  : d->env->cfg->nodes[peer].name);
	event_emit(&ev);
}

/* This node yields: stop its management, go on as infra-only (eligible again once the
 * stop hooks succeeded), re-evaluating periodically like any infra-only node. */
static void second_mgmt_yield(struct decision *d, int peer)
{
	const struct cfg *cfg = d->env->cfg;
	emit_second_mgmt(d, peer, RULES_PROFILE_INFRA_ONLY);
	log_notice("decision: %s also runs management and ranks first: stopping ours",
		   cfg->nodes[peer].name);
	d->run = profile_run_free(d->run);
	d->mgmt_running = false;
	d->profile = RULES_PROFILE_INFRA_ONLY;
	d->waiting = false;
	snprintf(d->rule, sizeof(d->rule), "second-mgmt");
	hs_set_local(d->hs, RULES_PROFILE_INFRA_ONLY, false);
	d->run = profile_start_stop(d->env->loop, cfg,
				    rules_profile_to_str(RULES_PROFILE_INFRA_AND_MGMT),
				    cfg->nodes[d->env->self].name, on_profile_done, d);
	if (!d->run)
		log_error_errno(-errno, "cannot run the stop hooks of infra-and-mgmt");
	timer_arm_in(d->t_eval, cfg->timeouts.handshake_window);
}

static void second_mgmt_check(struct decision *d)
{
	const struct cfg *cfg = d->env->cfg;
	int self = d->env->self;
	for (int i = 0; i < cfg->n_nodes; i++) {
		bool both = i != self && d->mgmt_running && hs_peer_contacted(d->hs, i) &&
			    hs_peer_mgmt_running(d->hs, i);
		if (!both) {
			d->second_since[i] = 0;
			continue;
		}
		uint64_t now = now_usec(), first = d->second_since[i];
		if (!first)
			d->second_since[i] = now;
		if (ranks_before(cfg, i, self)) {
			/* Not at once: the other node learns of ours from the messages we send
			 * meanwhile (a HELLO round and a heartbeat), so that both say so; a
			 * node that stopped before the other heard of it would leave it alone
			 * with a conflict it never saw. */
			uint64_t wait =
			    cfg->timeouts.handshake_timeout + cfg->timeouts.heartbeat_interval;
			if (first && now - first >= wait) {
				second_mgmt_yield(d, i);
				return;
			}
			continue;
		}
		if (!first) {
			emit_second_mgmt(d, i, RULES_PROFILE_INFRA_AND_MGMT);
			log_notice("decision: %s also runs management; it ranks below this node "
				   "and stops its own",
				   cfg->nodes[i].name);
		}
	}
}

static void on_second_mgmt(struct timer *t, void *ud)
{
	struct decision *d = ud;
	second_mgmt_check(d);
	if (d->mgmt_running)
		timer_arm_in(t, d->env->cfg->timeouts.heartbeat_interval);
}

static void second_mgmt_watch(struct decision *d)
{
	timer_arm_in(d->t_second, d->env->cfg->timeouts.heartbeat_interval);
}

int decision_new(struct node_env *env, struct hs *hs, decision_started_fn fn, void *ud,
		 struct decision **ret)
{
	struct decision *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	*d = (struct decision){.env = env, .hs = hs, .profile = -1, .fn = fn, .ud = ud};
	d->t_window = timer_new(env->loop, on_window, d);
	d->t_eval = timer_new(env->loop, on_eval, d);
	d->t_second = timer_new(env->loop, on_second_mgmt, d);
	d->second_since = calloc((size_t)env->cfg->n_nodes, sizeof(*d->second_since));
	d->peers = calloc((size_t)env->cfg->n_nodes, sizeof(*d->peers));
	if (!d->t_window || !d->t_eval || !d->t_second || !d->second_since || !d->peers) {
		decision_free(d);
		return -ENOMEM;
	}
	*ret = d;
	return 0;
}

struct decision *decision_free(struct decision *d)
{
	if (!d)
		return NULL;
	profile_run_free(d->run);
	timer_free(d->t_window);
	timer_free(d->t_eval);
	timer_free(d->t_second);
	rules_free(d->rules);
	free(d->second_since);
	free(d->peers);
	free(d);
	return NULL;
}

int decision_start(struct decision *d)
{
	struct node_env *env = d->env;
	load_rules(d);
	hs_set_contact_fn(d->hs, on_contact, d);
	if (env->console) {
		console_register(env->console, "decision", "",
				 "the boot decision: facts, rule, profile, hooks", cmd_decision, d);
		console_register(env->console, "continue", "", "release the wait-operator profile",
				 cmd_continue, d);
	}
	timer_arm_in(d->t_window, env->cfg->timeouts.handshake_window);
	return 0;
}

int decision_profile(const struct decision *d)
{
	return d->profile;
}

int decision_rerun(struct decision *d)
{
	if (!d || d->profile < 0)
		return -ENOENT;
	const char *name = rules_profile_to_str((enum rules_profile)d->profile);
	log_notice("decision: the configuration changed the hooks of profile %s: running them "
		   "again",
		   name);
	if (d->run && profile_run_state(d->run) == PROFILE_STATE_RUNNING) {
		d->rerun = true;
		return 0;
	}
	start_profile(d, d->profile);
	return 0;
}

bool decision_hooks_ok(const struct decision *d)
{
	return d->profile >= 0 && d->run && profile_run_state(d->run) == PROFILE_STATE_OK;
}

bool decision_eligible(const struct decision *d)
{
	return d->profile >= 0 && d->profile != RULES_PROFILE_WAIT_OPERATOR && d->run &&
	       profile_run_state(d->run) == PROFILE_STATE_OK;
}
