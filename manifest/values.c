/* Syntax of manifest values: durations ("1m30s"), octal modes, URLs, DNS
 * names, IP addresses, CIDRs and names. Each returns 0 when the text is valid. */
#include "manifest/internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int tend_parse_duration(uint64_t *out_ms, const char *s)
{
	uint64_t total = 0;

	if (!s || !*s)
		return -1;
	if (!strcmp(s, "0")) {
		*out_ms = 0;
		return 0;
	}
	while (*s) {
		uint64_t n = 0, unit;
		int digits = 0;
		while (isdigit((unsigned char)*s)) {
			if (n > (UINT64_MAX - 9) / 10)
				return -1;
			n = n * 10 + (uint64_t)(*s++ - '0');
			digits++;
		}
		if (!digits)
			return -1;
		if (!strncmp(s, "ms", 2)) {
			unit = 1;
			s += 2;
		} else if (*s == 's') {
			unit = 1000;
			s++;
		} else if (*s == 'm') {
			unit = 60 * 1000;
			s++;
		} else if (*s == 'h') {
			unit = 3600 * 1000;
			s++;
		} else {
			return -1;
		}
		/* a week is far beyond any probe; refusing more keeps arithmetic safe */
		if (n > 7ull * 24 * 3600 * 1000 || n * unit > 7ull * 24 * 3600 * 1000)
			return -1;
		total += n * unit;
		if (total > 7ull * 24 * 3600 * 1000)
			return -1;
	}
	*out_ms = total;
	return 0;
}

int tend_parse_mode(unsigned *out, const char *s)
{
	unsigned v = 0;
	size_t len = s ? strlen(s) : 0, i;

	if (len < 3 || len > 4)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '7')
			return -1;
		v = v * 8 + (unsigned)(s[i] - '0');
	}
	if (v > 0777)
		return -1;
	*out = v;
	return 0;
}

static int check_port_text(const char *p, size_t len)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 5)
		return -1;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	return v >= 1 && v <= 65535 ? 0 : -1;
}

int tend_check_url(const char *s, const char *const *schemes)
{
	const char *p, *host, *end;
	size_t i;
	int ok = 0;

	if (!s)
		return -1;
	for (p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return -1;
	if (!(p = strstr(s, "://")))
		return -1;
	for (i = 0; schemes[i]; i++)
		if (strlen(schemes[i]) == (size_t)(p - s) && !strncasecmp(s, schemes[i], (size_t)(p - s)))
			ok = 1;
	if (!ok)
		return -1;
	host = p + 3;
	end = host + strcspn(host, "/?#");
	if (end == host)
		return -1;
	if (memchr(host, '@', (size_t)(end - host)))
		return -1;
	if (*host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));
		char buf[64];
		struct in6_addr a6;
		if (!close || (size_t)(close - host - 1) >= sizeof(buf))
			return -1;
		memcpy(buf, host + 1, (size_t)(close - host - 1));
		buf[close - host - 1] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			return -1;
		p = close + 1;
		if (p == end)
			return 0;
		if (*p != ':')
			return -1;
		return check_port_text(p + 1, (size_t)(end - p - 1));
	} else {
		const char *colon = memchr(host, ':', (size_t)(end - host));
		char buf[256];
		size_t hlen = colon ? (size_t)(colon - host) : (size_t)(end - host);
		if (hlen == 0 || hlen >= sizeof(buf))
			return -1;
		memcpy(buf, host, hlen);
		buf[hlen] = '\0';
		if (tend_check_address(buf) < 0)
			return -1;
		if (colon)
			return check_port_text(colon + 1, (size_t)(end - colon - 1));
	}
	return 0;
}

/* RFC 1123 host names: labels of letters, digits and inner hyphens (and '_'
 * which real fleets use in internal names), 63 per label, 253 in all. */
int tend_check_dns_name(const char *s)
{
	size_t len = s ? strlen(s) : 0, label = 0, i;

	if (len == 0 || len > 253)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return -1;
			label = 0;
			continue;
		}
		if (!isalnum(ch) && ch != '-' && ch != '_')
			return -1;
		if (ch == '-' && label == 0)
			return -1;
		if (++label > 63)
			return -1;
	}
	/* a trailing dot (absolute name) would not match a Host header */
	if (s[len - 1] == '-' || s[len - 1] == '.')
		return -1;
	return 0;
}

int tend_check_address(const char *s)
{
	struct in_addr a4;
	struct in6_addr a6;
	int all_numeric = 1;
	const char *p;

	if (!s || !*s)
		return -1;
	if (inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1)
		return 0;
	/* "10.0.0.300" is a typo of an address, not a host name */
	for (p = s; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			all_numeric = 0;
	if (all_numeric)
		return -1;
	return tend_check_dns_name(s);
}

int tend_check_cidr(const char *s)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	char buf[64];
	struct in_addr a4;
	struct in6_addr a6;
	int max, bits = 0;
	const char *p;

	if (!slash || (size_t)(slash - s) >= sizeof(buf) || !slash[1] || strlen(slash + 1) > 3)
		return -1;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	if (inet_pton(AF_INET, buf, &a4) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, buf, &a6) == 1)
		max = 128;
	else
		return -1;
	for (p = slash + 1; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		bits = bits * 10 + (*p - '0');
	}
	return bits <= max ? 0 : -1;
}

/* Host and service names end up in file names, systemd units and Nix
 * attribute names: a letter or digit, then letters, digits, '-', '_' or '.'. */
int tend_check_name(const char *s)
{
	size_t len = s ? strlen(s) : 0, i;

	if (len == 0 || len > 63 || !isalnum((unsigned char)s[0]))
		return -1;
	for (i = 1; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return -1;
	return 0;
}
