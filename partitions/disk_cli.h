/* Command-line verbs of the disks module (listed in agent/main.c). */
#pragma once

int disk_cli_main(int argc, char **argv);  /* compartd disks plan|apply … */
int state_cli_main(int argc, char **argv); /* compartd state show --disk PATH… */
