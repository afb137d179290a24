/* The running agent: configuration, identity, the event loop and the console, plus
 * the state each module hangs on it as its issue lands. */
#pragma once

#include "cmdline.h"
#include "config.h"
#include "console.h"
#include "loop.h"

enum agent_stage {
	AGENT_STAGE_EARLY,
	AGENT_STAGE_IDENTITY,
	AGENT_STAGE_DISKS,
	AGENT_STAGE_RAID,
	AGENT_STAGE_STORAGE,
	AGENT_STAGE_HANDSHAKE,
	AGENT_STAGE_DECISION,
	AGENT_STAGE_ELECTION,
	AGENT_STAGE_READY,
	_AGENT_STAGE_MAX
};
const char *agent_stage_to_str(enum agent_stage s);

struct agent_opts {
	const char *config;     /* cluster.conf */
	const char *node;       /* explicit identity, or NULL */
	const char *state_dir;  /* console socket and host-mode state */
	const char *cmdline;    /* a kernel command line file to read, or NULL */
	bool foreground;
	bool pid1;
};

struct agent {
	struct agent_opts opts;
	struct loop *loop;
	struct cfg *cfg;
	int self; /* index of this node in cfg->nodes */
	uint8_t boot_id[16];
	uint64_t start_us;
	enum agent_stage stage;
	struct kcmdline kcmd;
	struct console *console;
	char sock_path[CFG_PATH_MAX];
};

/* Emits event=boot stage=… and records the stage. */
void agent_set_stage(struct agent *a, enum agent_stage s);

/* `compartd run …` */
int agent_run_main(int argc, char **argv);
