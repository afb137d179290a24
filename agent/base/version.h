#pragma once
#define COMPARTD_VERSION "0.1.0"
