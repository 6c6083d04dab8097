/*
 * fmt.c - formatting and argument parsing shared by the tools.
 *
 * Sizes are printed with binary prefixes and one decimal ("1.1 GiB"), the
 * way pmap readers think; exact figures go to CSV and JSON instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools.h"

char *fmt_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	int i = -1;

	if (bytes < KIB) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	while (v >= 1024.0 && i < 4) {
		v /= 1024.0;
		i++;
	}
	snprintf(buf, len, "%.1f %s", v, unit[i]);
	return buf;
}

pid_t fmt_parse_pid(const char *s)
{
	char *end;
	long v;

	if (!s || !*s || strspn(s, "0123456789") != strlen(s))
		return -1;
	v = strtol(s, &end, 10);
	if (*end || v <= 0 || v > 0x3fffffff)
		return -1;
	return (pid_t)v;
}
