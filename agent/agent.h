/* The wiring: the one place that creates the modules in boot order (SPEC §1), hands each
 * the node's environment (node_env.h) to attach to, and tears them down in reverse. */
#pragma once

#include "cmdline.h"
#include "config.h"
#include "console.h"
#include "loop.h"
#include "node_env.h"

struct agent_opts {
	const char *config;    /* cluster.conf */
	const char *node;      /* explicit identity, or NULL */
	const char *state_dir; /* console socket and host-mode state */
	const char *cmdline;   /* a kernel command line file to read, or NULL */
	const char *console;   /* a serial console device (host mode: a pty), or NULL */
	const char *state;     /* a state area file (host mode: journal + config copy), or NULL */
	bool foreground;
	bool pid1;
};

struct agent;
struct hs;
struct decision;
struct disk_module;
struct guest;

struct agent {
	struct agent_opts opts;
	struct node_env env; /* what the modules are given */
	uint64_t start_us;
	struct kcmdline kcmd;
	char sock_path[CFG_PATH_MAX];
	/* The modules, created in boot order. */
	struct hs *hs;		    /* handshake (hs.h) */
	struct cfgsync *cfgsync;    /* configuration transfer (cfgsync.h, agent/config_sync.c) */
	struct decision *decision;  /* boot decision (decision.h) */
	struct disk_module *disks;  /* partitions/bootstrap.h */
	struct config_lkg *lkg;	    /* last-known-good configuration (partitions/config_store.h) */
	struct guest *guest;	    /* the guest partition's iSCSI export (partitions/guest.h) */
	struct elect_drv *elect;    /* election (elect_drv.h) */
	struct serial *serial;	    /* the serial console, when one is open */
	struct query_engine *query; /* cluster queries */
	struct health_checks *health_checks;	   /* the built-in checks' state */
	struct storage *storage;		   /* iscsi/storage.h */
	struct storage_attached *storage_attached; /* its console command and health checks */
	const char *root_storage; /* the storage holding the root fs, or NULL (storage_root_name) */
	/* Waits of the boot (base/waiter.h): the handshake address to be bindable; PID 1's
	 * configured interfaces (pid1.c). */
	struct waiter *hs_wait;
	struct waiter *net_wait;
	/* When the handshake started waiting for carrier, or 0. */
	uint64_t hs_carrier_since;
	uint8_t *hs_key; /* the cluster key until hs_new took it (hs_key_free) */
	int net_fd;	 /* rtnetlink link/address changes wake the waits, or -1 */
	struct watch *net_watch;
	struct config_probation *probation; /* a new configuration version on probation */
	/* A version written over the running file that waits for a restart (a change of
	 * topology, pushed here or fetched): `config` shows it; version 0 when none. */
	struct {
		uint64_t version;
		uint8_t hash[32];
		char reason[160];
	} pending;
	int judged_profile; /* the profile whose hooks agent_config_judge saw last, -1 */
	bool config_rerun;  /* the hooks run again because a version changed them */
};

struct health;
struct serial;
struct query_engine;
struct health_checks;

/* Re-reads the configuration file. A file with errors, or one that changes the set of
 * pairs, compartments, nodes, storage or handshake addresses (which running modules index),
 * is refused and the running config stays; otherwise values are replaced in place. */
int agent_reload_config(struct agent *a, struct strbuf *msg);

/* The `log [N]` console command (ud: the agent). */
struct console_req;
int agent_cmd_log(struct console_req *req, void *ud);

/* Registers the agent's own console commands (status, log). */
void agent_register_commands(struct agent *a);

/* `compartd run …` */
int agent_run_main(int argc, char **argv);
