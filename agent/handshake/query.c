#include "query.h"

#include "log.h"

#include <inttypes.h>
#include <sodium.h>
#include <string.h>

static const char *const answerable[] = {"status", "health", "paths", "raid", "config"};

static bool what_ok(const char *w)
{
	for (size_t i = 0; i < ARRAY_SIZE(answerable); i++)
		if (!strcmp(w, answerable[i]))
			return true;
	return false;
}

int query_parse(const struct cfg *c, int argc, char *const argv[], bool json,
		struct query_spec *ret, struct strbuf *err)
{
	static const char *usage =
	    "usage: query <all|compartment X|node N> <status|health|paths|raid|config>";
	struct query_spec s = {.json = json, .index = -1};
	int wi;
	if (argc == 2 && !strcmp(argv[0], "all")) {
		s.scope = QUERY_SCOPE_ALL;
		wi = 1;
	} else if (argc == 3 && !strcmp(argv[0], "compartment")) {
		s.scope = QUERY_SCOPE_COMPARTMENT;
		s.index = cfg_find_compartment(c, argv[1]);
		if (s.index < 0) {
			sb_printf(err, "no compartment '%.32s' in the configuration", argv[1]);
			return -ENOENT;
		}
		wi = 2;
	} else if (argc == 3 && !strcmp(argv[0], "node")) {
		s.scope = QUERY_SCOPE_NODE;
		s.index = cfg_find_node(c, argv[1]);
		if (s.index < 0) {
			sb_printf(err, "no node '%.32s' in the configuration", argv[1]);
			return -ENOENT;
		}
		wi = 2;
	} else {
		sb_puts(err, usage);
		return -EINVAL;
	}
	if (!what_ok(argv[wi])) {
		sb_printf(err, "cannot query '%.32s'; %s", argv[wi], usage);
		return -EINVAL;
	}
	snprintf(s.what, sizeof(s.what), "%s", argv[wi]);
	*ret = s;
	return 0;
}

static bool in_scope(const struct cfg *c, const struct query_spec *spec, int i)
{
	switch (spec->scope) {
	case QUERY_SCOPE_ALL:
		return true;
	case QUERY_SCOPE_COMPARTMENT:
		return c->nodes[i].compartment == spec->index;
	case QUERY_SCOPE_NODE:
		return i == spec->index;
	case _QUERY_SCOPE_MAX:
		break;
	}
	return false;
}

int query_plan(const struct cfg *c, const struct query_spec *spec, uint32_t id, uint64_t now_us,
	       uint64_t timeout_us, struct query *ret)
{
	int n = 0;
	*ret = (struct query){
	    .id = id, .spec = *spec, .started_us = now_us, .deadline_us = now_us + timeout_us};
	for (int i = 0; i < c->n_nodes; i++)
		n += in_scope(c, spec, i);
	ret->t = calloc((size_t)n + 1, sizeof(*ret->t));
	if (!ret->t)
		return -ENOMEM;
	for (int i = 0; i < c->n_nodes; i++)
		if (in_scope(c, spec, i))
			ret->t[ret->n++] = (struct query_target){.node = i};
	query_set_window(ret, QUERY_WINDOW);
	return 0;
}

void query_set_window(struct query *q, int window)
{
	q->window = window < 1 ? 1 : window;
	uint64_t rounds =
	    q->n ? ((uint64_t)q->n + (uint64_t)q->window - 1) / (uint64_t)q->window : 1;
	q->slot_us = (q->deadline_us - q->started_us) / rounds;
}

static bool unanswered(enum query_tstate s)
{
	return s == QUERY_T_QUEUED || s == QUERY_T_WAITING || s == QUERY_T_LATE ||
	       s == QUERY_T_TIMEOUT;
}

int query_in_flight(const struct query *q)
{
	int n = 0;
	for (int i = 0; i < q->n; i++)
		n += q->t[i].state == QUERY_T_WAITING;
	return n;
}

int query_next_send(struct query *q, uint64_t now_us)
{
	if (now_us >= q->deadline_us || query_in_flight(q) >= q->window)
		return -1;
	while (q->next < q->n && q->t[q->next].state != QUERY_T_QUEUED)
		q->next++;
	if (q->next >= q->n)
		return -1;
	q->t[q->next].state = QUERY_T_WAITING;
	q->t[q->next].sent_us = now_us;
	return q->next++;
}

uint64_t query_tick(struct query *q, uint64_t now_us)
{
	query_expire(q, now_us);
	if (query_complete(q))
		return UINT64_MAX;
	uint64_t next = q->deadline_us;
	for (int i = 0; i < q->n; i++) {
		struct query_target *t = &q->t[i];
		if (t->state != QUERY_T_WAITING)
			continue;
		uint64_t end = t->sent_us + q->slot_us;
		if (end <= now_us)
			t->state = QUERY_T_LATE;
		else if (end < next)
			next = end;
	}
	return next;
}

void query_reset(struct query *q)
{
	for (int i = 0; i < q->n; i++)
		for (int k = 0; k < QUERY_MAX_CHUNKS; k++) {
			free(q->t[i].chunks[k]);
			q->t[i].chunks[k] = NULL;
		}
	free(q->t);
	q->t = NULL;
	q->n = 0;
}

static struct query_target *query_find_target(struct query *q, int node)
{
	for (int i = 0; i < q->n; i++)
		if (q->t[i].node == node)
			return &q->t[i];
	return NULL;
}

/* ---- payloads ---- */

int query_encode_request(uint32_t id, const char *what, bool json, char *buf, size_t n)
{
	int r = snprintf(buf, n, "Q1 %" PRIu32 " %d %s", id, json ? 1 : 0, what);
	return r < 0 || (size_t)r >= n ? -ENOBUFS : r;
}

/* Reads a canonical decimal number up to `max` followed by `end`; advances *p. */
static int take_num(const char **p, const char *lim, uint64_t max, char end, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;
	int digits = 0;
	for (; s < lim && *s >= '0' && *s <= '9'; s++, digits++) {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max || digits > 10)
			return -EBADMSG;
	}
	if (!digits || s >= lim || *s != end || (digits > 1 && **p == '0'))
		return -EBADMSG; /* one spelling per number: no leading zeros */
	*p = s + 1;
	*ret = v;
	return 0;
}

int query_parse_request(const void *buf, size_t len, uint32_t *ret_id,
			char ret_what[QUERY_WHAT_MAX], bool *ret_json)
{
	const char *p = buf, *lim = p + len;
	uint64_t id, json;
	if (len < 3 || memcmp(p, "Q1 ", 3))
		return -EBADMSG;
	p += 3;
	if (take_num(&p, lim, UINT32_MAX, ' ', &id) < 0 || take_num(&p, lim, 1, ' ', &json) < 0)
		return -EBADMSG;
	size_t wl = (size_t)(lim - p);
	if (wl == 0 || wl >= QUERY_WHAT_MAX)
		return -EBADMSG;
	for (size_t i = 0; i < wl; i++)
		if (p[i] < 'a' || p[i] > 'z')
			return -EBADMSG;
	memcpy(ret_what, p, wl);
	ret_what[wl] = '\0';
	*ret_id = (uint32_t)id;
	*ret_json = json;
	return 0;
}

int query_parse_reply(const void *buf, size_t len, struct query_reply_hdr *ret,
		      size_t *ret_body_off)
{
	const char *p = buf, *lim = p + len;
	uint64_t id, ok, seq, total;
	if (len < 3 || memcmp(p, "R1 ", 3))
		return -EBADMSG;
	p += 3;
	if (take_num(&p, lim, UINT32_MAX, ' ', &id) < 0 || take_num(&p, lim, 1, ' ', &ok) < 0 ||
	    take_num(&p, lim, QUERY_MAX_CHUNKS, ' ', &seq) < 0 ||
	    take_num(&p, lim, QUERY_MAX_CHUNKS, '\n', &total) < 0)
		return -EBADMSG;
	if (total < 1 || seq >= total)
		return -EBADMSG;
	*ret = (struct query_reply_hdr){
	    .id = (uint32_t)id, .ok = ok, .seq = (int)seq, .total = (int)total};
	*ret_body_off = (size_t)(p - (const char *)buf);
	return 0;
}

#define REPLY_HDR_MAX 40 /* "R1 4294967295 1 15 16\n" and room to spare */

int query_encode_reply(uint32_t id, bool ok, const char *text, size_t len, size_t max,
		       int (*emit)(const char *payload, size_t n, void *ud), void *ud)
{
	static const char trunc[] = "\n[answer truncated]\n";
	if (max <= REPLY_HDR_MAX + sizeof(trunc))
		return -EINVAL;
	size_t room = max - REPLY_HDR_MAX;
	bool truncated = len > room * QUERY_MAX_CHUNKS;
	size_t body = truncated ? room * QUERY_MAX_CHUNKS - (sizeof(trunc) - 1) : len;
	size_t all = body + (truncated ? sizeof(trunc) - 1 : 0);
	int total = all ? (int)((all + room - 1) / room) : 1;
	_cleanup_free_ char *pl = malloc(max);
	if (!pl)
		return -ENOMEM;
	for (int seq = 0; seq < total; seq++) {
		int h = snprintf(pl, max, "R1 %" PRIu32 " %d %d %d\n", id, ok ? 1 : 0, seq, total);
		size_t off = (size_t)seq * room, n = 0;
		/* Copy from the text, then from the truncation note. */
		for (size_t i = off; i < all && n < room; i++, n++)
			pl[(size_t)h + n] = i < body ? text[i] : trunc[i - body];
		int r = emit(pl, (size_t)h + n, ud);
		if (r < 0)
			return r;
	}
	return total;
}

int query_add_reply(struct query *q, int node, const struct query_reply_hdr *h, const char *body,
		    size_t body_len)
{
	struct query_target *t = query_find_target(q, node);
	if (!t || h->id != q->id)
		return -ENOENT;
	if (t->state == QUERY_T_QUEUED)
		return -ENOENT; /* never asked: not an answer to this query */
	if (t->state != QUERY_T_WAITING && t->state != QUERY_T_LATE)
		return -EALREADY;
	if (h->total < 1 || h->total > QUERY_MAX_CHUNKS || h->seq < 0 || h->seq >= h->total ||
	    (t->total && t->total != h->total))
		return -EBADMSG;
	if (t->chunks[h->seq])
		return -EALREADY;
	char *c = malloc(body_len + 1);
	if (!c)
		return -ENOMEM;
	memcpy(c, body, body_len);
	c[body_len] = '\0';
	t->total = h->total;
	t->chunks[h->seq] = c;
	t->lens[h->seq] = body_len;
	if (++t->got == t->total)
		t->state = h->ok ? QUERY_T_ANSWERED : QUERY_T_FAILED;
	return 0;
}

void query_expire(struct query *q, uint64_t now_us)
{
	if (now_us < q->deadline_us)
		return;
	for (int i = 0; i < q->n; i++)
		if (unanswered(q->t[i].state))
			q->t[i].state = QUERY_T_TIMEOUT;
}

bool query_complete(const struct query *q)
{
	for (int i = 0; i < q->n; i++)
		if (unanswered(q->t[i].state) && q->t[i].state != QUERY_T_TIMEOUT)
			return false;
	return true;
}

/* ---- formatting ---- */

static void answer_text(const struct query_target *t, struct strbuf *out)
{
	for (int k = 0; k < t->total; k++)
		if (t->chunks[k])
			sb_put(out, t->chunks[k], t->lens[k]);
}

/* A strict JSON checker (RFC 8259 grammar, nesting bounded), so that a peer's answer is
 * embedded in our JSON document only when it cannot break it. */
struct jscan {
	const char *p, *end;
	int depth;
};

static void js_ws(struct jscan *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool js_lit(struct jscan *j, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n))
		return false;
	j->p += n;
	return true;
}

static bool js_string(struct jscan *j)
{
	if (j->p >= j->end || *j->p++ != '"')
		return false;
	while (j->p < j->end) {
		unsigned char c = (unsigned char)*j->p++;
		if (c == '"')
			return true;
		if (c < 0x20)
			return false;
		if (c != '\\')
			continue;
		if (j->p >= j->end)
			return false;
		c = (unsigned char)*j->p++;
		if (c == 'u') {
			for (int i = 0; i < 4; i++, j->p++)
				if (j->p >= j->end || !strchr("0123456789abcdefABCDEF", *j->p) ||
				    !*j->p)
					return false;
		} else if (!strchr("\"\\/bfnrt", c) || !c) {
			return false;
		}
	}
	return false;
}

static bool js_digits(struct jscan *j)
{
	const char *s = j->p;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > s;
}

static bool js_number(struct jscan *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (!js_digits(j))
		return false;
	if (j->p < j->end && *j->p == '.' && (j->p++, !js_digits(j)))
		return false;
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!js_digits(j))
			return false;
	}
	return true;
}

static bool js_value(struct jscan *j);

/* Object or array: open, members separated by commas, close. */
static bool js_container(struct jscan *j, char close, bool object)
{
	if (++j->depth > 32)
		return false;
	j->p++;
	js_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return true;
	}
	for (;;) {
		js_ws(j);
		if (object) {
			if (!js_string(j))
				return false;
			js_ws(j);
			if (j->p >= j->end || *j->p++ != ':')
				return false;
		}
		if (!js_value(j))
			return false;
		js_ws(j);
		if (j->p >= j->end)
			return false;
		char c = *j->p++;
		if (c == close)
			break;
		if (c != ',')
			return false;
	}
	j->depth--;
	return true;
}

static bool js_value(struct jscan *j)
{
	js_ws(j);
	if (j->p >= j->end)
		return false;
	switch (*j->p) {
	case '{':
		return js_container(j, '}', true);
	case '[':
		return js_container(j, ']', false);
	case '"':
		return js_string(j);
	case 't':
		return js_lit(j, "true");
	case 'f':
		return js_lit(j, "false");
	case 'n':
		return js_lit(j, "null");
	default:
		return js_number(j);
	}
}

bool query_json_valid(const char *s, size_t len)
{
	struct jscan j = {.p = s, .end = s + len};
	if (!js_value(&j))
		return false;
	js_ws(&j);
	return j.p == j.end;
}

static void format_json_target(const struct cfg *c, const struct query_target *t, struct strbuf *o)
{
	static const char *const st[_QUERY_T_MAX] = {"queued", "waiting", "late",
						     "ok",     "error",	  "timeout"};
	sb_puts(o, "{\"node\":");
	sb_json_str(o, c->nodes[t->node].name);
	sb_printf(o, ",\"result\":\"%s\"", st[t->state]);
	if (t->state != QUERY_T_ANSWERED && t->state != QUERY_T_FAILED) {
		sb_putc(o, '}');
		return;
	}
	struct strbuf a;
	sb_init(&a);
	answer_text(t, &a);
	sb_puts(o, ",\"answer\":");
	if (a.len && query_json_valid(a.buf, a.len)) {
		while (a.len && a.buf[a.len - 1] == '\n')
			a.buf[--a.len] = '\0';
		sb_put(o, a.buf, a.len);
	} else {
		sb_json_str(o, a.buf ? a.buf : "");
	}
	sb_free(&a);
	sb_putc(o, '}');
}

static int count_state(const struct query *q, enum query_tstate s)
{
	int n = 0;
	for (int i = 0; i < q->n; i++)
		n += q->t[i].state == s;
	return n;
}

static int count_missing(const struct query *q)
{
	int n = 0;
	for (int i = 0; i < q->n; i++)
		n += unanswered(q->t[i].state);
	return n;
}

static void format_json(const struct cfg *c, const struct query *q, struct strbuf *o)
{
	sb_printf(o,
		  "{\"query\":\"%s\",\"targets\":%d,\"answered\":%d,\"errors\":%d,"
		  "\"timeout_ms\":%" PRIu64 ",\"compartments\":[",
		  q->spec.what, q->n, count_state(q, QUERY_T_ANSWERED),
		  count_state(q, QUERY_T_FAILED),
		  (uint64_t)((q->deadline_us - q->started_us) / USEC_PER_MSEC));
	bool first_c = true;
	for (int ci = 0; ci < c->n_compartments; ci++) {
		bool any = false;
		for (int i = 0; i < q->n; i++) {
			const struct query_target *t = &q->t[i];
			if (c->nodes[t->node].compartment != ci)
				continue;
			if (!any) {
				sb_puts(o, first_c ? "{\"name\":" : ",{\"name\":");
				sb_json_str(o, c->compartments[ci].name);
				sb_printf(o, ",\"zone\":\"%s\",\"nodes\":[",
					  cfg_zone_to_str(c->compartments[ci].zone));
				first_c = false;
			} else {
				sb_putc(o, ',');
			}
			any = true;
			format_json_target(c, t, o);
		}
		if (any)
			sb_puts(o, "]}");
	}
	sb_puts(o, "],\"no_answer\":[");
	bool first = true;
	for (int i = 0; i < q->n; i++) {
		if (!unanswered(q->t[i].state))
			continue;
		if (!first)
			sb_putc(o, ',');
		sb_json_str(o, c->nodes[q->t[i].node].name);
		first = false;
	}
	sb_puts(o, "]}\n");
}

static void format_human_target(const struct cfg *c, const struct query_target *t, struct strbuf *o)
{
	sb_printf(o, "-- %s%s\n", c->nodes[t->node].name,
		  unanswered(t->state)	       ? ": no answer"
		  : t->state == QUERY_T_FAILED ? ": error"
					       : "");
	if (t->state != QUERY_T_ANSWERED && t->state != QUERY_T_FAILED)
		return;
	struct strbuf a;
	sb_init(&a);
	answer_text(t, &a);
	const char *p = a.buf ? a.buf : "";
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		sb_puts(o, "   ");
		/* A peer's bytes go to an operator's terminal: no control sequences. */
		for (size_t i = 0; i < n; i++)
			sb_putc(o, ((unsigned char)p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f
				       ? '?'
				       : p[i]);
		sb_putc(o, '\n');
		p += n + (nl ? 1 : 0);
	}
	sb_free(&a);
}

void query_format(const struct cfg *c, const struct query *q, struct strbuf *out)
{
	if (q->spec.json) {
		format_json(c, q, out);
		return;
	}
	int missing = count_missing(q);
	char tmo[32];
	format_duration(q->deadline_us - q->started_us, tmo, sizeof(tmo));
	sb_printf(out,
		  "query %s: %d of %d nodes answered, %d with an error, %d silent (timeout %s)\n",
		  q->spec.what, count_state(q, QUERY_T_ANSWERED) + count_state(q, QUERY_T_FAILED),
		  q->n, count_state(q, QUERY_T_FAILED), missing, tmo);
	for (int ci = 0; ci < c->n_compartments; ci++) {
		bool any = false;
		for (int i = 0; i < q->n; i++) {
			if (c->nodes[q->t[i].node].compartment != ci)
				continue;
			if (!any)
				sb_printf(out, "\n== compartment %s (%s)\n",
					  c->compartments[ci].name,
					  cfg_zone_to_str(c->compartments[ci].zone));
			any = true;
			format_human_target(c, &q->t[i], out);
		}
	}
	if (!missing)
		return;
	sb_puts(out, "\nno answer from:");
	for (int i = 0; i < q->n; i++)
		if (unanswered(q->t[i].state))
			sb_printf(out, " %s", c->nodes[q->t[i].node].name);
	sb_putc(out, '\n');
}
