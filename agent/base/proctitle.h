/* The root-storage-daemon convention (systemd.io/ROOT_STORAGE_DAEMONS): a process run by
 * root whose argv[0] starts with '@' is spared by the killing spree of switch_root and
 * shutdown, like a kernel thread. Only the first byte of argv[0] changes, in the argument
 * memory /proc/PID/cmdline shows; the comm name (/proc/PID/comm) stays. */
#pragma once

/* Remembers main()'s argv (call it first thing in main). */
void proctitle_init(int argc, char **argv);

/* argv[0][0] = '@'. Returns 0, or -ENOENT when there is no argv[0] to mark. */
int proctitle_mark_root_storage(void);
