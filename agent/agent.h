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
	const char *console;    /* a serial console device (host mode: a pty), or NULL */
	const char *state;      /* a state area file (host mode: journal + config copy), or NULL */
	bool foreground;
	bool pid1;
};

struct agent;
struct health_paths;
struct health_export;
struct hs;
struct decision;
struct disk_module;

/* Calls across modules go through these; the module that owns the behaviour fills its
 * pointer when it starts, the console calls it. NULL means "not available on this node"
 * and the console says so. Each returns 0 or a negative errno with a sentence in `msg`. */
/* A hook's outcome delivered later, from the loop: r as the hook would have returned it. */
typedef void (*agent_done_fn)(int r, struct strbuf *msg, void *ud);
#define AGENT_LATER 1

struct agent_hooks {
	/* disks: authorize wiping the foreign disk named by path, serial or WWN (used once),
	 * and run the disks stage again to lay it out. Returns <0 refused, 0 done (the outcome
	 * in msg), or AGENT_LATER: the stage runs in the background and `done` gets the
	 * outcome (its own msg) when it has. */
	int (*approve_wipe)(struct agent *a, const char *disk, struct strbuf *msg,
			    agent_done_fn done, void *ud);
	/* decision: release the wait-operator profile. */
	int (*operator_continue)(struct agent *a, struct strbuf *msg);
	/* election: operator promote/demote of this node for one instance kind; refused when
	 * unsafe, with the reason in msg. */
	int (*promote)(struct agent *a, enum cfg_kind kind, struct strbuf *msg);
	int (*demote)(struct agent *a, enum cfg_kind kind, struct strbuf *msg);
	/* console: answer a cluster query (`status|health|paths|raid`) locally, for a peer. */
	int (*query_local)(struct agent *a, const char *what, bool json, struct strbuf *out);
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
	struct agent_hooks hooks;
	/* Module state, added by each module as it lands. */
	struct health_paths *health_paths; /* health_paths.h: one component per iSCSI path */
	struct hs *hs;             /* handshake (hs.h) */
	struct decision *decision; /* boot decision (decision.h) */
	struct disk_module *disks; /* partitions/bootstrap.h */
	struct config_lkg *lkg;    /* last-known-good configuration (partitions/config_store.h) */
	struct elect_drv *elect;   /* election (elect_drv.h) */
	struct health *health;       /* health engine: modules health_register() here */
	struct serial *serial;       /* the serial console, when one is open */
	struct query_engine *query;  /* cluster queries */
	struct health_checks *health_checks; /* the built-in checks' state */
	struct storage *storage;   /* iscsi/storage.h */
	struct health_export *health_export; /* health_export.h: one component per NBD export */
	const char *root_storage;  /* the storage holding the root fs, or NULL (storage_root_name) */
};

struct health;
struct serial;
struct query_engine;
struct health_checks;

/* Re-reads the configuration file. A file with errors, or one that changes the set of
 * pairs, compartments, nodes, storage or handshake addresses (which running modules index),
 * is refused and the running config stays; otherwise values are replaced in place. */
int agent_reload_config(struct agent *a, struct strbuf *msg);

/* Emits event=boot stage=… and records the stage. */
void agent_set_stage(struct agent *a, enum agent_stage s);


/* Registers the agent's own console commands (status, log). */
void agent_register_commands(struct agent *a);

/* `compartd run …` */
int agent_run_main(int argc, char **argv);
