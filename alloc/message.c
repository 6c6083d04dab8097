/*
 * message.c - error and warning output that never allocates.
 *
 * ebb_snprintf is a small printf subset (%s %c %d %u %ld %lu %lld %llu %zu
 * %x %lx %llx %p %%) formatting into a caller's buffer; messages go to
 * stderr with one write(2), prefixed "ebbmalloc: ". Used on error and
 * assert paths, where stdio (which may allocate) is off limits.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "os.h"

static size_t put_u(char *buf, size_t pos, size_t len, unsigned long long v, unsigned base)
{
	char tmp[24];
	int n = 0;
	do {
		unsigned d = (unsigned)(v % base);
		tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	while (n > 0 && pos + 1 < len)
		buf[pos++] = tmp[--n];
	return pos;
}

static int vformat(char *buf, size_t len, const char *fmt, va_list ap)
{
	size_t pos = 0;
	if (len == 0)
		return 0;
	for (const char *f = fmt; *f && pos + 1 < len; f++) {
		if (*f != '%') {
			buf[pos++] = *f;
			continue;
		}
		f++;
		int lng = 0, sz = 0;
		unsigned width = 0;
		while (*f >= '0' && *f <= '9')
			width = width * 10 + (unsigned)(*f++ - '0');
		size_t start = pos;
		while (*f == 'l') { lng++; f++; }
		if (*f == 'z') { sz = 1; f++; }
		switch (*f) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			while (*s && pos + 1 < len)
				buf[pos++] = *s++;
			break;
		}
		case 'c':
			buf[pos++] = (char)va_arg(ap, int);
			break;
		case 'd': {
			long long v = lng >= 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int);
			if (v < 0) {
				buf[pos++] = '-';
				v = -v;
			}
			pos = put_u(buf, pos, len, (unsigned long long)v, 10);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v = sz ? va_arg(ap, size_t)
				: lng >= 2 ? va_arg(ap, unsigned long long)
				: lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
			pos = put_u(buf, pos, len, v, *f == 'x' ? 16 : 10);
			break;
		}
		case 'p':
			if (pos + 3 < len) {
				buf[pos++] = '0';
				buf[pos++] = 'x';
			}
			pos = put_u(buf, pos, len, (uintptr_t)va_arg(ap, void *), 16);
			break;
		case '%':
			buf[pos++] = '%';
			break;
		default:
			buf[pos++] = '?';
			break;
		}
		/* right-align within width */
		size_t w = pos - start;
		if (width > w && pos + (width - w) + 1 < len) {
			size_t pad = width - w;
			memmove(buf + start + pad, buf + start, w);
			memset(buf + start, ' ', pad);
			pos += pad;
		}
	}
	buf[pos] = 0;
	return (int)pos;
}

int ebb_snprintf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vformat(buf, len, fmt, ap);
	va_end(ap);
	return n;
}

void ebb_message(const char *fmt, ...)
{
	char buf[512];
	size_t n = 11;
	memcpy(buf, "ebbmalloc: ", n);
	va_list ap;
	va_start(ap, fmt);
	n += (size_t)vformat(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	os_write_stderr(buf, n);
}

void ebb_assert_fail(const char *expr, const char *file, int line)
{
	ebb_message("internal error: %s (%s:%d)", expr, file, line);
	abort();
}

void ebb_fatal_ptr(const char *fn, const char *what, const void *p)
{
	ebb_message("%s(): %s %p", fn, what, p);
	abort();
}
