/* `compartd rules check FILE` and `compartd rules eval FILE fact=value…`: the operator's
 * view of the rules engine, with the same parser the agent uses. */
#include "decision.h"
#include "rules.h"

#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: compartd rules check FILE\n"
		"       compartd rules eval FILE peers=N contacted=N [mgmt_running=BOOL]\n"
		"                               [mgmt_capable=BOOL] [highest_priority=BOOL]\n"
		"                               [uncontacted_alive=BOOL]\n"
		"booleans not given are false; contacted_pct is derived (exactly) from the rest\n");
}

static int load(const char *path, struct rules **ret)
{
	char *text = NULL;
	size_t len = 0;
	int r = read_full_file(path, RULES_MAX_TEXT, &text, &len);
	if (r < 0) {
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(-r));
		return r;
	}
	struct strbuf err;
	sb_init(&err);
	r = rules_parse(path, text, len, ret, &err);
	if (r < 0)
		fprintf(stderr, "%s%s: rules refused\n", err.buf ? err.buf : "", path);
	sb_free(&err);
	free(text);
	return r;
}

static int eval_main(const char *path, int argc, char **argv)
{
	struct rules_facts f = {0};
	bool has_p = false, has_c = false;
	struct strbuf err;
	sb_init(&err);
	for (int i = 0; i < argc; i++) {
		if (rules_fact_assign(&f, argv[i], &err) < 0) {
			fprintf(stderr, "compartd rules eval: %s\n", err.buf ? err.buf : "");
			sb_free(&err);
			return 2;
		}
		has_p |= !strncmp(argv[i], "peers=", 6);
		has_c |= !strncmp(argv[i], "contacted=", 10);
	}
	sb_free(&err);
	if (!has_p || !has_c || f.contacted > f.peers) {
		fprintf(stderr,
			"compartd rules eval: give peers=N and contacted=N (contacted <= peers)\n");
		return 2;
	}
	struct rules *rs = NULL;
	if (load(path, &rs) < 0)
		return 1;
	int i = rules_eval(rs, &f);
	if (i < 0)
		printf("rule=none profile=none\n");
	else
		printf("rule=%s profile=%s\n", rs->rules[i].name,
		       rules_profile_to_str(rs->rules[i].profile));
	rules_free(rs);
	return i < 0 ? 1 : 0;
}

int rules_cli_main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "check")) {
		struct rules *rs = NULL;
		if (load(argv[2], &rs) < 0)
			return 1;
		printf("%s: %d rules, ok\n", argv[2], rs->n_rules);
		for (int i = 0; i < rs->n_rules; i++)
			printf("  %d. %s (line %d) => %s\n", i + 1, rs->rules[i].name,
			       rs->rules[i].line, rules_profile_to_str(rs->rules[i].profile));
		rules_free(rs);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "eval"))
		return eval_main(argv[2], argc - 3, argv + 3);
	usage(stderr);
	return 2;
}
