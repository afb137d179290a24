/* compartd as PID 1 of the initramfs (SPEC §1 step 1): mounts, kernel modules, the serial
 * console, then the agent with its network brought up from the node's configuration. It
 * never exits: on a fatal error it says what happened and what to do on the console, and a
 * rescue shell stays one command away. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct agent;

/* True when this process should run as init: PID 1, or started as /init. */
bool pid1_wanted(const char *argv0);

/* The init: never returns. */
_Noreturn void pid1_main(int argc, char **argv);

/* Called by the agent in PID 1 mode once it knows which node it is and its loop runs:
 * brings the node's network up (rtnetlink; DHCP through busybox udhcpc) at once, and while
 * a configured interface is missing, without carrier or without its DHCP lease, waits from
 * the loop (agent/base/waiter.h: `event=boot stage=network waiting="link down on …"`),
 * applying the plan again when an interface appears. Never fatal. */
int pid1_network(struct agent *a);
void pid1_network_free(struct agent *a);

/* The disks stage (partitions/bootstrap.h): lays out the node's disks and assembles its
 * mirrors; registers `disks`, `raid` and approve-wipe. A failure leaves the node running. */
int pid1_disks(struct agent *a);
/* Exports the verified cmpt-guest to the compartment's infrastructural instances (SPEC §3a). */
int pid1_guest(struct agent *a);

/* What init does on the signals busybox reboot/poweroff/halt send it: SIGTERM and SIGINT
 * (also Ctrl-Alt-Del) reboot, SIGUSR2 powers off, SIGUSR1 halts; after a sync. */
_Noreturn void pid1_shutdown(int signo);

/* The serial console device PID 1 took (console=, compartd.console=), or NULL. */
const char *pid1_console_device(void);

/* The operator console on the serial line PID 1 took (agent/serial.h: line editing, live
 * events, `sh`/`shell` for a rescue shell), and the reboot/poweroff/halt signals. */
int pid1_serial_start(struct agent *a);

/* Root storage (a `root = yes` storage the node reaches): PID 1 stays a small init that
 * reaps orphans, reboots/powers off on the signals busybox sends, and offers the rescue
 * prompt if the agent ends; the agent goes on in a child, which a later switch_root (the
 * real init exec'd as PID 1) leaves running. Returns 0 in the child; the parent never
 * returns. A failed fork returns -errno and the agent stays PID 1. */
int pid1_fork_agent(void);
