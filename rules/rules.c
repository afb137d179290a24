/* Parser and evaluator of the rules language; see rules.h. Pure: text in, tree out. */
#include "rules.h"

#include <ctype.h>
#include <string.h>

#define MAX_TOKENS 128
#define MAX_DEPTH 32
#define INT_LIMIT 1000000000L
#define FACT_LIMIT 1000000L

enum op {
	OP_INT,
	OP_BOOL,
	OP_FACT,
	OP_NOT,
	OP_AND,
	OP_OR,
	OP_EQ,
	OP_NE,
	OP_LT,
	OP_LE,
	OP_GT,
	OP_GE
};

static const char *const profile_str[_RULES_PROFILE_MAX] = {
    [RULES_PROFILE_WAIT_OPERATOR] = "wait-operator",
    [RULES_PROFILE_INFRA_ONLY] = "infra-only",
    [RULES_PROFILE_INFRA_AND_MGMT] = "infra-and-mgmt",
};

static const char *const fact_str[_RULES_FACT_MAX] = {
    [RULES_FACT_PEERS] = "peers",
    [RULES_FACT_CONTACTED] = "contacted",
    [RULES_FACT_CONTACTED_PCT] = "contacted_pct",
    [RULES_FACT_MGMT_RUNNING] = "mgmt_running",
    [RULES_FACT_MGMT_CAPABLE] = "mgmt_capable",
    [RULES_FACT_HIGHEST_PRIORITY] = "highest_priority",
    [RULES_FACT_UNCONTACTED_ALIVE] = "uncontacted_alive",
};

const char *rules_profile_to_str(enum rules_profile p)
{
	return p < _RULES_PROFILE_MAX ? profile_str[p] : NULL;
}

static int rules_profile_from_str(const char *s)
{
	for (int i = 0; i < _RULES_PROFILE_MAX; i++)
		if (!strcmp(s, profile_str[i]))
			return i;
	return -EINVAL;
}

static int rules_fact_from_str(const char *s)
{
	for (int i = 0; i < _RULES_FACT_MAX; i++)
		if (!strcmp(s, fact_str[i]))
			return i;
	return -EINVAL;
}

static bool fact_is_int(enum rules_fact f)
{
	return f == RULES_FACT_PEERS || f == RULES_FACT_CONTACTED || f == RULES_FACT_CONTACTED_PCT;
}

/* ---- tokens ---- */

enum tok_kind { TOK_WORD, TOK_INT, TOK_OP, TOK_LPAREN, TOK_RPAREN, TOK_ARROW, TOK_END };

struct tok {
	enum tok_kind kind;
	char text[RULES_NAME_MAX];
	long value;
	enum op op;
};

struct parser {
	const char *path;
	int line;
	struct strbuf *errors;
	struct tok toks[MAX_TOKENS];
	int n, pos;
	struct rules_rule *rule;
	int depth;
	bool failed;
};

_printf_(2, 3) static int perr(struct parser *p, const char *fmt, ...)
{
	if (p->errors && !p->failed) {
		sb_printf(p->errors, "%s:%d: ", p->path, p->line);
		va_list ap;
		va_start(ap, fmt);
		sb_vprintf(p->errors, fmt, ap);
		va_end(ap);
		sb_putc(p->errors, '\n');
	}
	p->failed = true;
	return -EINVAL;
}

static bool word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

static int lex_op(struct parser *p, const char *s, struct tok *t)
{
	static const struct {
		const char *s;
		enum tok_kind kind;
		enum op op;
	} ops[] = {{"=>", TOK_ARROW, OP_EQ}, {"==", TOK_OP, OP_EQ},    {"!=", TOK_OP, OP_NE},
		   {"<=", TOK_OP, OP_LE},    {">=", TOK_OP, OP_GE},    {"<", TOK_OP, OP_LT},
		   {">", TOK_OP, OP_GT},     {"(", TOK_LPAREN, OP_EQ}, {")", TOK_RPAREN, OP_EQ}};
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		size_t l = strlen(ops[i].s);
		if (!strncmp(s, ops[i].s, l)) {
			t->kind = ops[i].kind;
			t->op = ops[i].op;
			snprintf(t->text, sizeof(t->text), "%s", ops[i].s);
			return (int)l;
		}
	}
	return perr(p, "unexpected character '%c'", isprint((unsigned char)*s) ? *s : '?');
}

static int lex_word(struct parser *p, const char *s, struct tok *t)
{
	size_t l = 0;
	while (word_char(s[l]))
		l++;
	if (l >= sizeof(t->text))
		return perr(p, "word '%.20s…' is too long", s);
	memcpy(t->text, s, l);
	t->text[l] = '\0';
	t->kind = TOK_WORD;
	bool num = isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]));
	if (num) {
		if (parse_int(t->text, -INT_LIMIT, INT_LIMIT, &t->value) < 0)
			return perr(p, "'%s' is not an integer (at most %ld in size)", t->text,
				    INT_LIMIT);
		t->kind = TOK_INT;
	}
	return (int)l;
}

/* Splits one line (without its newline) into tokens; a '#' starts a comment. */
static int lex(struct parser *p, const char *s, size_t len)
{
	p->n = p->pos = 0;
	size_t i = 0;
	while (i < len) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
			i++;
			continue;
		}
		if (s[i] == '#')
			break;
		if (p->n == MAX_TOKENS - 1)
			return perr(p, "line too long (more than %d words)", MAX_TOKENS - 1);
		struct tok *t = &p->toks[p->n++];
		*t = (struct tok){0};
		int r = word_char(s[i]) ? lex_word(p, s + i, t) : lex_op(p, s + i, t);
		if (r < 0)
			return r;
		i += (size_t)r;
	}
	p->toks[p->n] = (struct tok){.kind = TOK_END, .text = "end of line"};
	return 0;
}

/* ---- expressions ---- */

static struct tok *peek(struct parser *p)
{
	return &p->toks[p->pos];
}

static bool is_word(const struct tok *t, const char *w)
{
	return t->kind == TOK_WORD && !strcmp(t->text, w);
}

static int add_node(struct parser *p, enum op op, int left, int right, long value, int fact)
{
	struct rules_rule *r = p->rule;
	if (r->n_nodes == RULES_MAX_NODES)
		return perr(p, "expression too long (more than %d terms)", RULES_MAX_NODES);
	r->nodes[r->n_nodes] = (struct rules_expr){.op = (uint8_t)op,
						   .fact = (uint8_t)fact,
						   .left = (int16_t)left,
						   .right = (int16_t)right,
						   .value = value};
	return r->n_nodes++;
}

static bool node_is_bool(const struct parser *p, int i)
{
	const struct rules_expr *e = &p->rule->nodes[i];
	if (e->op == OP_INT)
		return false;
	if (e->op == OP_FACT)
		return !fact_is_int(e->fact);
	return true;
}

static int parse_or(struct parser *p);

static int parse_primary(struct parser *p)
{
	struct tok *t = peek(p);
	if (t->kind == TOK_LPAREN) {
		if (++p->depth > MAX_DEPTH)
			return perr(p, "parentheses nested too deep");
		p->pos++;
		int r = parse_or(p);
		if (r < 0)
			return r;
		if (peek(p)->kind != TOK_RPAREN)
			return perr(p, "expected ')' before '%s'", peek(p)->text);
		p->pos++;
		p->depth--;
		return r;
	}
	if (t->kind == TOK_INT) {
		p->pos++;
		return add_node(p, OP_INT, -1, -1, t->value, 0);
	}
	if (is_word(t, "true") || is_word(t, "false")) {
		p->pos++;
		return add_node(p, OP_BOOL, -1, -1, is_word(t, "true"), 0);
	}
	if (t->kind == TOK_WORD) {
		int f = rules_fact_from_str(t->text);
		if (f < 0)
			return perr(p, "unknown fact '%s'", t->text);
		p->pos++;
		return add_node(p, OP_FACT, -1, -1, 0, f);
	}
	return perr(p, "expected a fact, a number, true, false or '(' before '%s'", t->text);
}

static int parse_cmp(struct parser *p)
{
	int l = parse_primary(p);
	if (l < 0 || peek(p)->kind != TOK_OP)
		return l;
	struct tok *t = &p->toks[p->pos++];
	int r = parse_primary(p);
	if (r < 0)
		return r;
	bool lb = node_is_bool(p, l), rb = node_is_bool(p, r);
	if (lb != rb)
		return perr(p, "'%s' compares a boolean with a number", t->text);
	if (lb && t->op != OP_EQ && t->op != OP_NE)
		return perr(p, "'%s' needs numbers, not booleans", t->text);
	return add_node(p, t->op, l, r, 0, 0);
}

static int need_bool(struct parser *p, int i, const char *what)
{
	if (i >= 0 && !node_is_bool(p, i))
		return perr(p, "'%s' needs a condition, not a number", what);
	return i;
}

static int parse_not(struct parser *p)
{
	if (!is_word(peek(p), "not"))
		return parse_cmp(p);
	if (++p->depth > MAX_DEPTH)
		return perr(p, "'not' nested too deep");
	p->pos++;
	int e = need_bool(p, parse_not(p), "not");
	p->depth--;
	return e < 0 ? e : add_node(p, OP_NOT, e, -1, 0, 0);
}

static int parse_and(struct parser *p)
{
	int l = parse_not(p);
	while (l >= 0 && is_word(peek(p), "and")) {
		p->pos++;
		int r = need_bool(p, parse_not(p), "and");
		if (need_bool(p, l, "and") < 0 || r < 0)
			return -EINVAL;
		l = add_node(p, OP_AND, l, r, 0, 0);
	}
	return l;
}

static int parse_or(struct parser *p)
{
	int l = parse_and(p);
	while (l >= 0 && is_word(peek(p), "or")) {
		p->pos++;
		int r = need_bool(p, parse_and(p), "or");
		if (need_bool(p, l, "or") < 0 || r < 0)
			return -EINVAL;
		l = add_node(p, OP_OR, l, r, 0, 0);
	}
	return l;
}

/* ---- rules ---- */

static bool valid_rule_name(const char *s)
{
	if (!isalpha((unsigned char)s[0]))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

static int parse_rule(struct parser *p, struct rules *rs)
{
	if (!is_word(peek(p), "rule"))
		return perr(p, "expected 'rule NAME when EXPR => PROFILE'");
	p->pos++;
	struct tok *name = peek(p);
	if (name->kind != TOK_WORD || !valid_rule_name(name->text))
		return perr(p, "expected a rule name (a letter, then letters, digits, - or _)");
	for (int i = 0; i < rs->n_rules; i++)
		if (!strcmp(rs->rules[i].name, name->text))
			return perr(p, "rule '%s' is already defined on line %d", name->text,
				    rs->rules[i].line);
	if (rs->n_rules == RULES_MAX)
		return perr(p, "too many rules (at most %d)", RULES_MAX);
	p->pos++;
	if (!is_word(peek(p), "when"))
		return perr(p, "expected 'when' after the rule name");
	p->pos++;
	struct rules_rule *r = &rs->rules[rs->n_rules];
	*r = (struct rules_rule){.line = p->line};
	snprintf(r->name, sizeof(r->name), "%s", name->text);
	p->rule = r;
	p->depth = 0;
	r->root = need_bool(p, parse_or(p), "when");
	if (r->root < 0)
		return -EINVAL;
	if (peek(p)->kind != TOK_ARROW)
		return perr(p, "expected '=>' before '%s'", peek(p)->text);
	p->pos++;
	struct tok *prof = peek(p);
	int pr = prof->kind == TOK_WORD ? rules_profile_from_str(prof->text) : -EINVAL;
	if (pr < 0)
		return perr(p, "unknown profile '%s' (wait-operator, infra-only, infra-and-mgmt)",
			    prof->text);
	p->pos++;
	if (peek(p)->kind != TOK_END)
		return perr(p, "unexpected '%s' after the profile", peek(p)->text);
	r->profile = (enum rules_profile)pr;
	rs->n_rules++;
	return 0;
}

int rules_parse(const char *path, const char *text, size_t len, struct rules **ret,
		struct strbuf *errors)
{
	if (len > RULES_MAX_TEXT) {
		if (errors)
			sb_printf(errors, "%s: too large (more than %d bytes)\n", path,
				  RULES_MAX_TEXT);
		return -EINVAL;
	}
	struct rules *rs = calloc(1, sizeof(*rs));
	struct parser *p = calloc(1, sizeof(*p));
	char *copy = malloc(len + 1); /* each line NUL-terminated for the lexer */
	if (!rs || !p || !copy) {
		free(rs);
		free(p);
		free(copy);
		return -ENOMEM;
	}
	if (len)
		memcpy(copy, text, len);
	copy[len] = '\0';
	p->path = path;
	p->errors = errors;
	bool bad = false;
	for (size_t i = 0; i < len;) {
		const char *e = memchr(text + i, '\n', len - i);
		size_t l = e ? (size_t)(e - (text + i)) : len - i;
		p->line++;
		p->failed = false;
		copy[i + l] = '\0';
		if (memchr(text + i, '\0', l))
			perr(p, "contains a NUL byte");
		else if (lex(p, copy + i, l) == 0 && p->n > 0)
			parse_rule(p, rs);
		bad |= p->failed;
		i += l + 1;
	}
	if (!bad && rs->n_rules == 0) {
		if (errors)
			sb_printf(errors, "%s: no rule in the file\n", path);
		bad = true;
	}
	free(p);
	free(copy);
	if (bad) {
		free(rs);
		return -EINVAL;
	}
	*ret = rs;
	return 0;
}

struct rules *rules_free(struct rules *r)
{
	free(r);
	return NULL;
}

/* ---- evaluation ---- */

struct val {
	bool b;
	int64_t num, den; /* den > 0 */
};

static struct val fact_val(const struct rules_facts *f, enum rules_fact which)
{
	switch (which) {
	case RULES_FACT_PEERS:
		return (struct val){.num = f->peers, .den = 1};
	case RULES_FACT_CONTACTED:
		return (struct val){.num = f->contacted, .den = 1};
	case RULES_FACT_CONTACTED_PCT:
		if (f->peers <= 0)
			return (struct val){.num = 0, .den = 1};
		return (struct val){.num = 100 * (int64_t)f->contacted, .den = f->peers};
	case RULES_FACT_MGMT_RUNNING:
		return (struct val){.b = f->mgmt_running};
	case RULES_FACT_MGMT_CAPABLE:
		return (struct val){.b = f->mgmt_capable};
	case RULES_FACT_HIGHEST_PRIORITY:
		return (struct val){.b = f->highest_priority};
	case RULES_FACT_UNCONTACTED_ALIVE:
		return (struct val){.b = f->uncontacted_alive};
	case _RULES_FACT_MAX:
		break;
	}
	return (struct val){.den = 1};
}

/* a/b <=> c/d with b, d > 0: compare a*d with c*b (exact; operands are bounded). */
static int cmp_val(struct val a, struct val c)
{
	__int128 l = (__int128)a.num * c.den, r = (__int128)c.num * a.den;
	return l < r ? -1 : l > r;
}

static struct val eval_node(const struct rules_rule *r, int i, const struct rules_facts *f)
{
	const struct rules_expr *e = &r->nodes[i];
	struct val a, c;
	switch ((enum op)e->op) {
	case OP_INT:
		return (struct val){.num = e->value, .den = 1};
	case OP_BOOL:
		return (struct val){.b = e->value != 0};
	case OP_FACT:
		return fact_val(f, (enum rules_fact)e->fact);
	case OP_NOT:
		return (struct val){.b = !eval_node(r, e->left, f).b};
	case OP_AND:
		return (struct val){.b = eval_node(r, e->left, f).b && eval_node(r, e->right, f).b};
	case OP_OR:
		return (struct val){.b = eval_node(r, e->left, f).b || eval_node(r, e->right, f).b};
	case OP_EQ:
	case OP_NE:
	case OP_LT:
	case OP_LE:
	case OP_GT:
	case OP_GE:
		break;
	}
	a = eval_node(r, e->left, f);
	c = eval_node(r, e->right, f);
	bool is_bool = r->nodes[e->left].op != OP_INT &&
		       (r->nodes[e->left].op != OP_FACT || !fact_is_int(r->nodes[e->left].fact));
	int k = is_bool ? (a.b != c.b) : cmp_val(a, c);
	switch ((enum op)e->op) {
	case OP_EQ:
		return (struct val){.b = k == 0};
	case OP_NE:
		return (struct val){.b = k != 0};
	case OP_LT:
		return (struct val){.b = k < 0};
	case OP_LE:
		return (struct val){.b = k <= 0};
	case OP_GT:
		return (struct val){.b = k > 0};
	case OP_GE:
		return (struct val){.b = k >= 0};
	case OP_INT:
	case OP_BOOL:
	case OP_FACT:
	case OP_NOT:
	case OP_AND:
	case OP_OR:
		break;
	}
	return (struct val){.b = false};
}

int rules_eval(const struct rules *r, const struct rules_facts *f)
{
	for (int i = 0; i < r->n_rules; i++)
		if (eval_node(&r->rules[i], r->rules[i].root, f).b)
			return i;
	return -ENOENT;
}

int rules_fact_assign(struct rules_facts *f, const char *assignment, struct strbuf *err)
{
	const char *eq = strchr(assignment, '=');
	char name[RULES_NAME_MAX];
	if (!eq || (size_t)(eq - assignment) >= sizeof(name)) {
		sb_printf(err, "'%s': expected fact=value", assignment);
		return -EINVAL;
	}
	memcpy(name, assignment, (size_t)(eq - assignment));
	name[eq - assignment] = '\0';
	const char *v = eq + 1;
	int fi = rules_fact_from_str(name);
	if (fi < 0) {
		sb_printf(err, "'%s': unknown fact", name);
		return -EINVAL;
	}
	if (fi == RULES_FACT_CONTACTED_PCT) {
		sb_printf(err, "contacted_pct is derived from peers and contacted; give those");
		return -EINVAL;
	}
	if (fact_is_int(fi)) {
		long n;
		if (parse_int(v, 0, FACT_LIMIT, &n) < 0) {
			sb_printf(err, "%s: '%s' is not a number from 0 to %ld", name, v,
				  FACT_LIMIT);
			return -EINVAL;
		}
		*(fi == RULES_FACT_PEERS ? &f->peers : &f->contacted) = n;
		return 0;
	}
	bool b;
	if (parse_bool(v, &b) < 0) {
		sb_printf(err, "%s: '%s' is not true or false", name, v);
		return -EINVAL;
	}
	bool *dst = fi == RULES_FACT_MGMT_RUNNING	? &f->mgmt_running
		    : fi == RULES_FACT_MGMT_CAPABLE	? &f->mgmt_capable
		    : fi == RULES_FACT_HIGHEST_PRIORITY ? &f->highest_priority
							: &f->uncontacted_alive;
	*dst = b;
	return 0;
}

void rules_facts_format(const struct rules_facts *f, struct strbuf *out)
{
	sb_printf(out,
		  "peers=%ld contacted=%ld contacted_pct=%ld/%ld mgmt_running=%s mgmt_capable=%s "
		  "highest_priority=%s uncontacted_alive=%s",
		  f->peers, f->contacted, f->peers > 0 ? 100 * f->contacted : 0,
		  f->peers > 0 ? f->peers : 1, f->mgmt_running ? "true" : "false",
		  f->mgmt_capable ? "true" : "false", f->highest_priority ? "true" : "false",
		  f->uncontacted_alive ? "true" : "false");
}
