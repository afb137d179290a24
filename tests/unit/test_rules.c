/* The rules language and the boot decision of SPEC §6: every row of the table through the
 * real rules/boot.rules and the real facts computation on the rig config, with the edges
 * (c = 0, exactly 50 %, P = 1, priority ties, mgmt already running, an uncontacted node
 * alive on the quorum device, unknown liveness); exact percentages; every parse error
 * names its line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "decision.h"
#include "rules.h"

#include <sodium.h>
#include <string.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif

static struct rules *load_boot_rules(void)
{
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(read_full_file(SRCDIR "/rules/boot.rules", RULES_MAX_TEXT, &text, &len),
			 0);
	struct rules *r = NULL;
	struct strbuf err;
	sb_init(&err);
	int k = rules_parse("boot.rules", text, len, &r, &err);
	if (k < 0)
		fprintf(stderr, "%s", err.buf);
	assert_int_equal(k, 0);
	sb_free(&err);
	free(text);
	return r;
}

static struct cfg *load_rig(const struct cfg_override *ovr, size_t n)
{
	struct cfg *c = NULL;
	struct strbuf err;
	sb_init(&err);
	int k = cfg_load(SRCDIR "/images/rig/cluster.conf", ovr, n, &c, &err);
	if (k < 0)
		fprintf(stderr, "%s", err.buf);
	assert_int_equal(k, 0);
	sb_free(&err);
	return c;
}

/* Peer spec per rig node (a1 a2 b1 b2): '-' self, 'C' contacted, 'M' contacted and running
 * mgmt, otherwise uncontacted as two characters external/qdev, each 'a' alive, 'd' dead,
 * 'u' unknown ("dd" = dead on both). */
struct row {
	const char *what;
	const char *self;
	const char *peers[4];
	const char *rule;
	const char *profile;
};

static const struct row rows[] = {
    /* 1: c == 0 */
    {"c=0, all dead", "a1", {"-", "dd", "dd", "dd"}, "alone", "wait-operator"},
    {"c=0, unknown liveness", "b2", {"uu", "uu", "uu", "-"}, "alone", "wait-operator"},
    /* 2: a contacted node runs mgmt, even for the best candidate with a majority */
    {"mgmt already running elsewhere", "a1", {"-", "C", "M", "C"}, "mgmt-elsewhere", "infra-only"},
    {"mgmt running, minority", "b1", {"dd", "dd", "-", "M"}, "mgmt-elsewhere", "infra-only"},
    {"mgmt on an uncontacted node does not count",
     "a1",
     {"-", "C", "C", "dd"},
     "majority",
     "infra-and-mgmt"},
    /* 3: majority and best candidate */
    {"all up, best node", "a1", {"-", "C", "C", "C"}, "majority", "infra-and-mgmt"},
    {"all up, outranked", "a2", {"C", "-", "C", "C"}, "default", "infra-only"},
    {"all up, not capable", "b2", {"C", "C", "C", "-"}, "default", "infra-only"},
    {"2/3, outranked by contacted b1", "a2", {"dd", "-", "C", "C"}, "default", "infra-only"},
    {"1/3, a2 best of a2 and b2",
     "a2",
     {"dd", "-", "dd", "C"},
     "minority-rest-dead",
     "infra-and-mgmt"},
    {"2/3, b1 outranks a2", "b1", {"dd", "C", "-", "C"}, "majority", "infra-and-mgmt"},
    {"1/3, a2 alive on both channels", "b1", {"dd", "aa", "-", "C"}, "default", "infra-only"},
    /* 4: minority, the rest dead on both channels, best candidate */
    {"1/3, rest dead", "b1", {"dd", "dd", "-", "C"}, "minority-rest-dead", "infra-and-mgmt"},
    {"1/3, a1 alive on qdev", "b1", {"da", "dd", "-", "C"}, "default", "infra-only"},
    {"1/3, a2 external alive", "b1", {"dd", "ad", "-", "C"}, "default", "infra-only"},
    {"1/3, qdev unknown", "b1", {"du", "dd", "-", "C"}, "default", "infra-only"},
    {"1/3, external unknown", "b1", {"dd", "ud", "-", "C"}, "default", "infra-only"},
    {"1/3, not capable", "b2", {"dd", "dd", "C", "-"}, "default", "infra-only"},
    {"1/3, outranked by contacted a1", "a2", {"C", "-", "dd", "dd"}, "default", "infra-only"},
    {"1/3, a1 with a2", "a1", {"-", "C", "dd", "dd"}, "minority-rest-dead", "infra-and-mgmt"},
};

static int tri(char c)
{
	return c == 'a' ? 1 : c == 'd' ? 0 : -1;
}

static void decide(const struct cfg *c, const struct rules *r, const char *self,
		   const char *const spec[], const char **ret_rule, const char **ret_profile)
{
	_cleanup_free_ struct decision_peer *peers = calloc((size_t)c->n_nodes, sizeof(*peers));
	assert_non_null(peers);
	for (int i = 0; i < c->n_nodes; i++) {
		const char *s = spec[i];
		if (s[0] == 'C' || s[0] == 'M')
			peers[i] =
			    (struct decision_peer){.contacted = true, .mgmt_running = s[0] == 'M'};
		else if (s[0] != '-')
			peers[i] = (struct decision_peer){
			    .ext_alive = tri(s[0]), .qdev_alive = tri(s[1]), .mgmt_running = true};
	}
	struct rules_facts f;
	decision_facts(c, cfg_find_node(c, self), peers, &f);
	int i = rules_eval(r, &f);
	assert_true(i >= 0);
	*ret_rule = r->rules[i].name;
	*ret_profile = rules_profile_to_str(r->rules[i].profile);
}

static void spec_table_on_the_rig(void **state)
{
	struct rules *r = load_boot_rules();
	struct cfg *c = load_rig(NULL, 0);
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		const char *rule, *profile;
		decide(c, r, rows[i].self, rows[i].peers, &rule, &profile);
		if (strcmp(rule, rows[i].rule) || strcmp(profile, rows[i].profile))
			fail_msg("%s (%s): got %s/%s, expected %s/%s", rows[i].what, rows[i].self,
				 rule, profile, rows[i].rule, rows[i].profile);
	}
	cfg_free(c);
	rules_free(r);
}

static void priority_ties_lowest_name_wins(void **state)
{
	struct cfg_override o = {.section = "node.a2", .key = "priority", .value = "200"};
	struct rules *r = load_boot_rules();
	struct cfg *c = load_rig(&o, 1);
	const char *all_a1[] = {"-", "C", "C", "C"}, *all_a2[] = {"C", "-", "C", "C"};
	const char *rule, *profile;
	decide(c, r, "a1", all_a1, &rule, &profile);
	assert_string_equal(profile, "infra-and-mgmt");
	decide(c, r, "a2", all_a2, &rule, &profile);
	assert_string_equal(rule, "default");
	/* a1 not contacted: a2 is first among itself and the contacted capable nodes */
	const char *no_a1[] = {"dd", "-", "C", "C"};
	decide(c, r, "a2", no_a1, &rule, &profile);
	assert_string_equal(rule, "majority");
	cfg_free(c);
	rules_free(r);
}

struct frow {
	long p, c;
	bool running, capable, highest, alive;
	const char *rule;
};

/* Facts given directly: the percentage edges and P = 1. */
static void percentage_edges(void **state)
{
	static const struct frow t[] = {
	    {4, 2, false, true, true, false, "default"},	    /* exactly 50 % */
	    {2, 1, false, true, true, false, "default"},	    /* exactly 50 %, P = 2 */
	    {4, 3, false, true, true, false, "majority"},	    /* 75 % */
	    {4, 1, false, true, true, false, "minority-rest-dead"}, /* 25 % */
	    {1, 1, false, true, true, false, "majority"},	    /* P = 1, c = 1 */
	    {1, 0, false, true, true, false, "alone"},		    /* P = 1, c = 0 */
	    {1, 1, true, true, true, false, "mgmt-elsewhere"},
	    {0, 0, false, true, true, false, "alone"},	  /* a one-node cluster */
	    {3, 1, false, true, false, false, "default"}, /* not the best */
	    {99, 49, false, true, true, false, "minority-rest-dead"},
	    {100, 50, false, true, true, false, "default"},
	    {101, 51, false, true, true, false, "majority"}, /* 50.5 % */
	};
	struct rules *r = load_boot_rules();
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct rules_facts f = {t[i].p,	      t[i].c,	    t[i].running,
					t[i].capable, t[i].highest, t[i].alive};
		int k = rules_eval(r, &f);
		assert_true(k >= 0);
		if (strcmp(r->rules[k].name, t[i].rule))
			fail_msg("P=%ld c=%ld: got %s, expected %s", t[i].p, t[i].c,
				 r->rules[k].name, t[i].rule);
	}
	rules_free(r);
}

static int eval_text(const char *text, const struct rules_facts *f)
{
	struct rules *r = NULL;
	struct strbuf err;
	sb_init(&err);
	int k = rules_parse("t", text, strlen(text), &r, &err);
	if (k < 0)
		fail_msg("%s: %s", text, err.buf);
	sb_free(&err);
	k = rules_eval(r, f);
	rules_free(r);
	return k;
}

static void operators_and_exact_percentages(void **state)
{
	struct rules_facts f = {.peers = 3, .contacted = 2, .mgmt_capable = true};
	static const struct {
		const char *expr;
		bool match;
	} t[] = {
	    {"contacted_pct > 66", true}, /* 66.67: integer division would say 66 */
	    {"contacted_pct <= 66", false},
	    {"contacted_pct < 67", true},
	    {"contacted_pct >= 67", false},
	    {"contacted_pct != 66", true},
	    {"contacted_pct == 66", false},
	    {"66 < contacted_pct", true},
	    {"contacted == 2 and peers == 3", true},
	    {"true or false and false", true}, /* and binds tighter */
	    {"(true or false) and false", false},
	    {"not true or true", true},
	    {"not (true or true)", false},
	    {"not not mgmt_capable", true},
	    {"mgmt_capable == true and mgmt_running == false", true},
	    {"mgmt_capable != mgmt_running", true},
	    {"-1 < contacted", true},
	    {"contacted>=2 and(peers<=3)", true},
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		char text[256];
		snprintf(text, sizeof(text), "# c\n\nrule x when %s => infra-only # trailing\n",
			 t[i].expr);
		int k = eval_text(text, &f);
		if ((k == 0) != t[i].match)
			fail_msg("'%s' should %smatch", t[i].expr, t[i].match ? "" : "not ");
	}
	struct rules_facts three = {.peers = 3, .contacted = 3};
	assert_int_equal(eval_text("rule a when contacted_pct > 100 => infra-only\n"
				   "rule b when contacted_pct == 100 => wait-operator",
				   &three),
			 1);
	assert_int_equal(eval_text("rule a when false => infra-only", &three), -ENOENT);
}

static void parse_errors_name_the_line(void **state)
{
	static const struct {
		const char *text, *err;
	} t[] = {
	    {"rule a when foo => infra-only", "t:1: unknown fact 'foo'"},
	    {"rule a when true => bogus", "t:1: unknown profile 'bogus'"},
	    {"\n\nrule a when (true => infra-only", "t:3: expected ')'"},
	    {"rule a when contacted => infra-only", "t:1: 'when' needs a condition"},
	    {"rule a when mgmt_running < 1 => infra-only", "t:1: '<' compares a boolean"},
	    {"rule a when mgmt_running < true => infra-only", "t:1: '<' needs numbers"},
	    {"rule a when true and 5 => infra-only", "t:1: 'and' needs a condition"},
	    {"rule a when not 5 => infra-only", "t:1: 'not' needs a condition"},
	    {"rule a true => infra-only", "t:1: expected 'when'"},
	    {"rule a when true => infra-only\nrule a when true => infra-only",
	     "t:2: rule 'a' is already defined on line 1"},
	    {"# only a comment\n", "t: no rule in the file"},
	    {"rule a when true => infra-only extra", "t:1: unexpected 'extra'"},
	    {"rule a when 99999999999 > 1 => infra-only", "t:1: '99999999999' is not an integer"},
	    {"rule a when true $ => infra-only", "t:1: unexpected character '$'"},
	    {"when true => infra-only", "t:1: expected 'rule NAME"},
	    {"rule when true => infra-only", "t:1: expected 'when' after"},
	    {"rule 9x when true => infra-only", "t:1: '9x' is not an integer"},
	    {"rule _x when true => infra-only", "t:1: expected a rule name"},
	    {"rule a when => infra-only", "t:1: expected a fact"},
	    {"rule a when true infra-only", "t:1: expected '=>'"},
	    {"rule a when true =>", "t:1: unknown profile 'end of line'"},
	    {"rule ok when true => infra-only\nrule b when contacted_pct > 50 or x => infra-only",
	     "t:2: unknown fact 'x'"},
	    {"rule a when ((((((((((((((((((((((((((((((((((true)))))))))))))))))))))))))))))))))) "
	     "=> infra-only",
	     "t:1: parentheses nested too deep"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct rules *r = NULL;
		struct strbuf err;
		sb_init(&err);
		assert_int_equal(rules_parse("t", t[i].text, strlen(t[i].text), &r, &err), -EINVAL);
		assert_null(r);
		if (!err.buf || !strstr(err.buf, t[i].err))
			fail_msg("'%s': got '%s', expected '%s'", t[i].text, err.buf ? err.buf : "",
				 t[i].err);
		sb_free(&err);
	}
}

static void fact_assignments(void **state)
{
	struct rules_facts f = {0};
	struct strbuf err;
	sb_init(&err);
	assert_int_equal(rules_fact_assign(&f, "peers=3", &err), 0);
	assert_int_equal(rules_fact_assign(&f, "contacted=1", &err), 0);
	assert_int_equal(rules_fact_assign(&f, "uncontacted_alive=yes", &err), 0);
	assert_int_equal(rules_fact_assign(&f, "mgmt_capable=true", &err), 0);
	assert_int_equal(f.peers, 3);
	assert_int_equal(f.contacted, 1);
	assert_true(f.uncontacted_alive && f.mgmt_capable);
	assert_int_equal(rules_fact_assign(&f, "contacted_pct=30", &err), -EINVAL);
	assert_int_equal(rules_fact_assign(&f, "nosuch=1", &err), -EINVAL);
	assert_int_equal(rules_fact_assign(&f, "peers=-1", &err), -EINVAL);
	assert_int_equal(rules_fact_assign(&f, "mgmt_running=maybe", &err), -EINVAL);
	assert_int_equal(rules_fact_assign(&f, "peers", &err), -EINVAL);
	sb_reset(&err);
	rules_facts_format(&f, &err);
	assert_string_equal(err.buf,
			    "peers=3 contacted=1 contacted_pct=100/3 mgmt_running=false "
			    "mgmt_capable=true highest_priority=false uncontacted_alive=true");
	sb_free(&err);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(spec_table_on_the_rig),
	    cmocka_unit_test(priority_ties_lowest_name_wins),
	    cmocka_unit_test(percentage_edges),
	    cmocka_unit_test(operators_and_exact_percentages),
	    cmocka_unit_test(parse_errors_name_the_line),
	    cmocka_unit_test(fact_assignments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
