/* `compartd disks plan|apply …` and `compartd state show …`. */
#include "bootstrap.h"
#include "disk_cli.h"
#include "log.h"

#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <string.h>

static void usage_disks(FILE *f)
{
	fprintf(f, "usage: compartd disks plan|apply --config FILE --node NAME [--disk PATH]...\n"
		   "           [--approve-wipe SERIAL|WWN|PATH]... [--state PATH] [--raid]\n"
		   "           [--mdadm PATH] [--json]\n");
}

struct disks_args {
	const char *config, *node;
	const char *disks[DISK_MAX];
	int n_disks;
	const char *approve[CFG_MAX_WIPES];
	int n_approve;
	const char *state, *mdadm;
	bool json, raid;
};

static int parse_disks_args(int argc, char **argv, struct disks_args *a)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"node", required_argument, NULL, 'n'},
					     {"disk", required_argument, NULL, 'd'},
					     {"approve-wipe", required_argument, NULL, 'w'},
					     {"state", required_argument, NULL, 's'},
					     {"mdadm", required_argument, NULL, 'm'},
					     {"raid", no_argument, NULL, 'r'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->config = optarg;
			break;
		case 'n':
			a->node = optarg;
			break;
		case 'd':
			if (a->n_disks == DISK_MAX)
				return -E2BIG;
			a->disks[a->n_disks++] = optarg;
			break;
		case 'w':
			if (a->n_approve == CFG_MAX_WIPES)
				return -E2BIG;
			a->approve[a->n_approve++] = optarg;
			break;
		case 's':
			a->state = optarg;
			break;
		case 'm':
			a->mdadm = optarg;
			break;
		case 'r':
			a->raid = true;
			break;
		case 'j':
			a->json = true;
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

int disk_cli_main(int argc, char **argv)
{
	if (argc < 2 || (strcmp(argv[1], "plan") && strcmp(argv[1], "apply"))) {
		usage_disks(stderr);
		return 2;
	}
	bool apply = !strcmp(argv[1], "apply");
	struct disks_args a = {0};
	if (parse_disks_args(argc - 1, argv + 1, &a) < 0 || !a.config || !a.node ||
	    optind != argc - 1) {
		usage_disks(stderr);
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	struct strbuf err, out;
	sb_init(&err);
	sb_init(&out);
	struct cfg *c = NULL;
	int r = cfg_load(a.config, NULL, 0, &c, &err);
	if (r < 0) {
		fprintf(stderr, "%s%s: configuration refused\n", err.buf ? err.buf : "", a.config);
		sb_free(&err);
		return 1;
	}
	int self = cfg_find_node(c, a.node);
	struct disk_bootstrap_result *res = calloc(1, sizeof(*res));
	if (self < 0 || !res) {
		fprintf(stderr, "compartd disks: %s\n",
			self < 0 ? "no such node in the configuration" : "out of memory");
		free(res);
		cfg_free(c);
		sb_free(&err);
		return 1;
	}
	struct disk_bootstrap_opts o = {
	    .disks = a.disks,
	    .n_disks = a.n_disks,
	    .approve = a.approve,
	    .n_approve = a.n_approve,
	    .apply = apply,
	    .raid = a.raid,
	    .mdadm = a.mdadm,
	    .state_path = a.state,
	};
	r = disk_bootstrap(c, self, &o, res);
	disk_bootstrap_format(res, a.json, &out);
	if (a.raid && !a.json)
		disk_bootstrap_format_raid(res, false, &out);
	fputs(out.buf ? out.buf : "", stdout);
	fflush(stdout);
	free(res);
	cfg_free(c);
	sb_free(&err);
	sb_free(&out);
	return r < 0 ? 1 : 0;
}

/* ---- state show ---- */

static const char *slot_status(int s)
{
	return s == 0	       ? "valid"
	       : s == -ENODATA ? "empty"
	       : s == -EBADMSG ? "corrupt"
			       : "unreadable";
}

/* The cmpt-state area of a disk, or the whole file/device when it has no such partition. */
static int state_area(const char *path, struct journal_dev *j)
{
	struct disk_info *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	int r = disk_probe(path, d);
	snprintf(j->path, sizeof(j->path), "%s", path);
	if (r >= 0) {
		r = -ENOENT;
		for (int i = 0; i < d->n_parts; i++)
			if (!strcmp(d->parts[i].name, disk_part_name(DISK_PART_STATE))) {
				j->offset = d->parts[i].start;
				j->size = d->parts[i].size;
				r = 0;
			}
		if (r < 0 && !d->pttype[0]) {
			j->offset = 0;
			j->size = d->size;
			r = 0;
		}
	}
	free(d);
	return r;
}

int state_cli_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"disk", required_argument, NULL, 'd'}, {"json", no_argument, NULL, 'j'}, {0}};
	struct journal_dev devs[DISK_MAX];
	int n = 0, c;
	bool json = false;
	if (argc < 2 || strcmp(argv[1], "show")) {
		fprintf(stderr, "usage: compartd state show --disk PATH... [--json]\n");
		return 2;
	}
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 'd' && n < DISK_MAX) {
			int r = state_area(optarg, &devs[n]);
			if (r < 0) {
				fprintf(stderr, "%s: no cmpt-state partition (%s)\n", optarg,
					strerror(-r));
				return 1;
			}
			n++;
		} else {
			fprintf(stderr, "usage: compartd state show --disk PATH... [--json]\n");
			return 2;
		}
	}
	if (n == 0 || sodium_init() < 0) {
		fprintf(stderr, "usage: compartd state show --disk PATH... [--json]\n");
		return 2;
	}
	struct journal_state *s = calloc(2, sizeof(*s));
	struct strbuf out;
	sb_init(&out);
	if (!s)
		return 1;
	int r = journal_load(devs, n, s);
	sb_puts(&out, json ? "{\"slots\":[" : "");
	for (int i = 0; i < n; i++) {
		struct journal_slot_info info[2] = {{-ENODATA, 0}, {-ENODATA, 0}};
		journal_read_dev(&devs[i], info, &s[1]);
		for (int k = 0; k < 2; k++) {
			if (json) {
				sb_printf(&out, "%s{\"dev\":", i || k ? "," : "");
				sb_json_str(&out, devs[i].path);
				sb_printf(&out,
					  ",\"slot\":\"%c\",\"status\":\"%s\",\"seq\":%" PRIu64 "}",
					  k ? 'B' : 'A', slot_status(info[k].status), info[k].seq);
			} else {
				sb_printf(&out, "%s slot %c: %s, seq %" PRIu64 "\n", devs[i].path,
					  k ? 'B' : 'A', slot_status(info[k].status), info[k].seq);
			}
		}
	}
	if (json) {
		sb_puts(&out, "],\"journal\":");
		if (r == 0)
			journal_format(&s[0], true, &out);
		else
			sb_puts(&out, "null");
		sb_puts(&out, "}\n");
	} else if (r == 0) {
		journal_format(&s[0], false, &out);
	} else {
		sb_puts(&out, "no valid journal slot\n");
	}
	fputs(out.buf ? out.buf : "", stdout);
	sb_free(&out);
	free(s);
	return r == 0 || r == -ENODATA ? 0 : 1;
}
