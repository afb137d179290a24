/* compartd: one binary, several verbs. As PID 1 of the initramfs it runs the whole
 * bootstrap; otherwise the first argument names what to do. */
#include "agent.h"
#include "config.h"
#include "config_cli.h"
#include "decision.h"
#include "disk_cli.h"
#include "log.h"
#include "pid1.h"
#include "proctitle.h"
#include "storage.h"
#include "version.h"

#include <signal.h>
#include <sodium.h>
#include <string.h>

static int check_config_main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: compartd check-config FILE\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	struct strbuf err, out;
	sb_init(&err);
	sb_init(&out);
	struct cfg *c = NULL;
	int r = cfg_load(argv[1], NULL, 0, &c, &err);
	if (r < 0) {
		fputs(err.buf ? err.buf : "", stderr);
		fprintf(stderr, "%s: configuration refused\n", argv[1]);
	} else {
		cfg_print(c, &out);
		fputs(out.buf, stdout);
	}
	cfg_free(c);
	sb_free(&err);
	sb_free(&out);
	return r < 0 ? 1 : 0;
}

struct verb {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *help;
};

static const struct verb verbs[] = {
    {"run", agent_run_main, "run the agent (--foreground --config F --node N --state-dir D)"},
    {"check-config", check_config_main, "check a cluster.conf and print its normalized form"},
    {"config", config_cli_main,
     "export a pair's configuration as a bundle, or import one (config --help)"},
    {"rules", rules_cli_main, "check a rules file, or evaluate it on given facts (rules --help)"},
    {"disks", disk_cli_main, "plan or apply the disk layout (plan|apply --config F --node N)"},
    {"state", state_cli_main, "show the state journal (show --disk PATH... [--json])"},
    {"storage", storage_cli_main,
     "serve a storage over NBD (serve --config F --node N ...), detach /dev/nbdN"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: compartd VERB [ARGS]   (compartd --help, compartd --version)\n\n");
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		fprintf(f, "  %-14s %s\n", verbs[i].name, verbs[i].help);
	fprintf(f, "\nAs PID 1 (the initramfs's /init) it bootstraps the node; see README.md.\n");
}

int main(int argc, char **argv)
{
	proctitle_init(argc, argv);
	/* A peer gone (the kernel's NBD socket shut down, a portal's TCP reset) is an EPIPE
	 * to handle, not a death: libiscsi writes with writev, which cannot say
	 * MSG_NOSIGNAL, and the agent serving root storage is not PID 1. Every child that
	 * execs gets the default back (spawn.c, pid1.c, raid.c, serial.c). */
	signal(SIGPIPE, SIG_IGN);
	if (pid1_wanted(argv[0]))
		pid1_main(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("compartd %s\n", COMPARTD_VERSION);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (!strcmp(argv[1], verbs[i].name))
			return verbs[i].main(argc - 1, argv + 1);
	fprintf(stderr, "compartd: unknown verb '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
