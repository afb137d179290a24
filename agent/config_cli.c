/* `compartd config export|import`: the files around the pure bundle code
 * (agent/config/bundle*.c). An import writes its file only when the result passes
 * check-config, by an atomic rename. */
#include "config_cli.h"

#include "bundle.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fputs("usage: compartd config export --config FILE --pair P [--rules FILE] > BUNDLE\n"
	      "       compartd config import BUNDLE --pair P --into FILE [--rules FILE]\n"
	      "              [--map-node OLD=NEW]... [--map-compartment OLD=NEW]...\n"
	      "              [--map-storage OLD=NEW]... [--map-iqn OLD=NEW]...\n"
	      "              [--map-net OLD/LEN=NEW/LEN]... [--map-mac OLD=NEW]...\n"
	      "export: the pair's configuration and the rules file (default: the cluster's\n"
	      "rules path) as a hash-protected bundle. import: re-creates it as pair P in\n"
	      "FILE (created when missing); every name, MAC and address must be mapped.\n",
	      f);
}

static int read_or_say(const char *path, char **text, size_t *len)
{
	int r = read_full_file(path, CFG_MAX_TEXT, text, len);
	if (r < 0)
		fprintf(stderr, "%s: %s\n", path, strerror(-r));
	return r;
}

static int export_main(int argc, char **argv)
{
	const char *conf = NULL, *pair = NULL, *rules = NULL;
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"pair", required_argument, NULL, 'p'},
	    {"rules", required_argument, NULL, 'r'},
	    {0},
	};
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		if (o == 'c')
			conf = optarg;
		else if (o == 'p')
			pair = optarg;
		else if (o == 'r')
			rules = optarg;
		else
			return usage(stderr), 2;
	}
	if (!conf || !pair || optind != argc)
		return usage(stderr), 2;
	struct strbuf err, out;
	sb_init(&err), sb_init(&out);
	struct cfg *c = NULL;
	_cleanup_free_ char *rt = NULL;
	size_t rl = 0;
	int r = cfg_load(conf, NULL, 0, &c, &err);
	if (r >= 0)
		r = read_or_say(rules ? rules : c->rules_file, &rt, &rl);
	if (r >= 0)
		r = bundle_export(c, pair, rt, rl, &out, &err);
	if (r >= 0 && write_all(STDOUT_FILENO, out.buf, out.len) < 0)
		r = -EIO;
	fputs(err.buf ? err.buf : "", stderr);
	if (r < 0)
		fprintf(stderr, "%s: no bundle written\n", conf);
	cfg_free(c);
	sb_free(&err), sb_free(&out);
	return r < 0 ? 1 : 0;
}

/* FILE.tmp.PID, fsync, rename over FILE. */
struct import_args {
	const char *bundle, *pair, *into, *rules;
	struct bundle_map map;
};

static int import_args(int argc, char **argv, struct import_args *a)
{
	static const struct option opts[] = {
	    {"pair", required_argument, NULL, 'p'},
	    {"into", required_argument, NULL, 'i'},
	    {"rules", required_argument, NULL, 'r'},
	    {"map-node", required_argument, NULL, 'N'},
	    {"map-compartment", required_argument, NULL, 'C'},
	    {"map-storage", required_argument, NULL, 'S'},
	    {"map-iqn", required_argument, NULL, 'Q'},
	    {"map-net", required_argument, NULL, 'A'},
	    {"map-mac", required_argument, NULL, 'M'},
	    {0},
	};
	struct strbuf err;
	sb_init(&err);
	int r = 0;
	for (int o, li; r >= 0 && (o = getopt_long(argc, argv, "", opts, &li)) != -1;) {
		if (o == 'p')
			a->pair = optarg;
		else if (o == 'i')
			a->into = optarg;
		else if (o == 'r')
			a->rules = optarg;
		else if (o != '?')
			r = bundle_map_add(&a->map, opts[li].name + 4, optarg, &err);
		else
			r = -EINVAL;
	}
	fputs(err.buf ? err.buf : "", stderr);
	sb_free(&err);
	if (r >= 0 && optind == argc - 1)
		a->bundle = argv[optind];
	if (r < 0 || !a->bundle || !a->pair || !a->into)
		return usage(stderr), -EINVAL;
	return 0;
}

/* The target's rules file, to compare with the bundle's: --rules, else the path its
 * configuration names when that is readable here. */
static void target_rules(const struct import_args *a, const char *target, size_t len, char **ret,
			 size_t *ret_len)
{
	struct cfg *c = NULL;
	const char *path = a->rules;
	if (!path && target && cfg_parse(a->into, target, len, NULL, 0, &c, NULL) >= 0)
		path = c->rules_file;
	if (path && read_full_file(path, CFG_MAX_TEXT, ret, ret_len) < 0) {
		if (a->rules)
			fprintf(stderr, "%s: cannot read; rules not compared\n", path);
		*ret = NULL;
	}
	cfg_free(c);
}

static int do_import(const struct import_args *a, const struct bundle *b, struct strbuf *err)
{
	_cleanup_free_ char *target = NULL, *rules = NULL;
	size_t tl = 0, rl = 0;
	int r = read_full_file(a->into, CFG_MAX_TEXT, &target, &tl);
	if (r < 0 && r != -ENOENT) {
		sb_printf(err, "%s: %s\n", a->into, strerror(-r));
		return r;
	}
	target_rules(a, target, tl, &rules, &rl);
	struct strbuf out;
	sb_init(&out);
	r = bundle_import(b, a->pair, &a->map, a->into, target, tl, rules, rl, &out, err);
	if (r >= 0) {
		r = write_file_atomic(a->into, out.buf, out.len);
		if (r < 0)
			sb_printf(err, "%s: %s\n", a->into, strerror(-r));
	}
	sb_free(&out);
	return r;
}

static int import_main(int argc, char **argv)
{
	_cleanup_free_ struct import_args *a = calloc(1, sizeof(*a));
	if (!a || import_args(argc, argv, a) < 0)
		return 2;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (read_or_say(a->bundle, &text, &len) < 0)
		return 1;
	struct strbuf err;
	sb_init(&err);
	struct bundle b = {0};
	int r = bundle_parse(text, len, &b, &err);
	if (r >= 0)
		r = do_import(a, &b, &err);
	fputs(err.buf ? err.buf : "", stderr);
	if (r < 0)
		fprintf(stderr, "%s: import refused; %s unchanged\n", a->bundle, a->into);
	else
		printf("%s: pair %s imported as %s\n", a->into, b.pair, a->pair);
	bundle_clear(&b);
	sb_free(&err);
	return r < 0 ? 1 : 0;
}

int config_cli_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help"))
		return usage(argc < 2 ? stderr : stdout), argc < 2 ? 2 : 0;
	if (sodium_init() < 0)
		return 1;
	if (!strcmp(argv[1], "export"))
		return export_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "import"))
		return import_main(argc - 1, argv + 1);
	fprintf(stderr, "compartd config: unknown action '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
