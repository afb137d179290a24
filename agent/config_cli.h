/* `compartd config export|import` (SPEC §2a, listed in agent/main.c). */
#pragma once

int config_cli_main(int argc, char **argv);
