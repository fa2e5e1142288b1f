/* The allowed_signers file (git's gpg.ssh.allowedSignersFile, the format of
 * ssh-keygen(1) ALLOWED SIGNERS): which keys may sign commits, optionally
 * limited to namespaces and a validity window. */
#include "source/sshsig.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <ctype.h>
#include <fnmatch.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LINE 8192
#define MAX_TOKENS 4

typedef struct {
	unsigned char *blob;
	size_t blob_len;
	char *namespaces;      /* NULL: any */
	int64_t valid_after;   /* INT64_MIN: no bound */
	int64_t valid_before;  /* INT64_MAX: no bound */
	unsigned line;
} signer;

struct tend_allowed_signers {
	char *name;
	signer *v;
	size_t n, cap;
};

void tend_allowed_signers_free(tend_allowed_signers *as)
{
	size_t i;

	if (!as)
		return;
	for (i = 0; i < as->n; i++) {
		free(as->v[i].blob);
		free(as->v[i].namespaces);
	}
	free(as->v);
	free(as->name);
	free(as);
}

size_t tend_allowed_signers_count(const tend_allowed_signers *as)
{
	return as ? as->n : 0;
}

/* Split at unquoted whitespace; double quotes group (and are kept). */
static size_t tokenize(char *line, char **tok, size_t max)
{
	size_t n = 0;
	char *p = line;

	while (*p && n < max) {
		int quoted = 0;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		tok[n++] = p;
		while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
			if (*p == '"')
				quoted = !quoted;
			p++;
		}
		if (*p)
			*p++ = '\0';
	}
	/* Anything left is the comment (after the key) and is ignored. */
	return n;
}

static int is_keytype(const char *s)
{
	return !strncmp(s, "ssh-", 4) || !strncmp(s, "ecdsa-", 6) || !strncmp(s, "sk-", 3);
}

static int digits(const char *s, size_t off, size_t n)
{
	int v = 0;
	size_t k;

	for (k = 0; k < n; k++)
		v = v * 10 + (s[off + k] - '0');
	return v;
}

/* YYYYMMDD[HHMM[SS]][Z]: UTC with Z, local time otherwise (as ssh-keygen). */
static int parse_time(int64_t *out, const char *s)
{
	struct tm tm;
	size_t len = strlen(s), i;
	int utc = 0;
	time_t t;

	if (len > 0 && (s[len - 1] == 'Z' || s[len - 1] == 'z')) {
		utc = 1;
		len--;
	}
	if (len != 8 && len != 12 && len != 14)
		return -1;
	for (i = 0; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = digits(s, 0, 4) - 1900;
	tm.tm_mon = digits(s, 4, 2) - 1;
	tm.tm_mday = digits(s, 6, 2);
	if (len >= 12) {
		tm.tm_hour = digits(s, 8, 2);
		tm.tm_min = digits(s, 10, 2);
	}
	if (len == 14)
		tm.tm_sec = digits(s, 12, 2);
	if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_isdst = -1;
	t = utc ? timegm(&tm) : mktime(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = (int64_t)t;
	return 0;
}

/* Strip one pair of surrounding double quotes in place. */
static char *unquote(char *s)
{
	size_t len = strlen(s);

	if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
		s[len - 1] = '\0';
		return s + 1;
	}
	return s;
}

static int parse_options(signer *sg, char *opts, const char *name, unsigned line)
{
	char *p = opts;

	while (*p) {
		char *start = p, *val;
		int quoted = 0;

		while (*p && (quoted || *p != ',')) {
			if (*p == '"')
				quoted = !quoted;
			p++;
		}
		if (*p)
			*p++ = '\0';
		val = strchr(start, '=');
		if (val)
			*val++ = '\0';
		if (!strcasecmp(start, "cert-authority")) {
			tend_error_set("%s:%u: cert-authority entries are not supported", name, line);
			return TEND_EINVALID;
		}
		if (!val) {
			tend_error_set("%s:%u: unknown option '%s'", name, line, start);
			return TEND_EINVALID;
		}
		val = unquote(val);
		if (!strcasecmp(start, "namespaces")) {
			free(sg->namespaces);
			if (!(sg->namespaces = strdup(val)))
				return -1;
		} else if (!strcasecmp(start, "valid-after")) {
			if (parse_time(&sg->valid_after, val) < 0) {
				tend_error_set("%s:%u: invalid valid-after time '%s' (YYYYMMDD[HHMM[SS]][Z])", name, line, val);
				return TEND_EINVALID;
			}
		} else if (!strcasecmp(start, "valid-before")) {
			if (parse_time(&sg->valid_before, val) < 0) {
				tend_error_set("%s:%u: invalid valid-before time '%s' (YYYYMMDD[HHMM[SS]][Z])", name, line, val);
				return TEND_EINVALID;
			}
		} else {
			tend_error_set("%s:%u: unknown option '%s'", name, line, start);
			return TEND_EINVALID;
		}
	}
	return 0;
}

static int parse_line(tend_allowed_signers *as, char *line, unsigned lineno)
{
	char *tok[MAX_TOKENS];
	size_t n = tokenize(line, tok, MAX_TOKENS), k = 1, type_len, b64_len;
	signer sg = { NULL, 0, NULL, INT64_MIN, INT64_MAX, lineno };
	const unsigned char *kt;
	size_t kt_len;
	const char *b64_end;
	int error = TEND_EINVALID;

	if (n == 0 || tok[0][0] == '#')
		return 0;
	if (n >= 2 && !is_keytype(tok[1])) {
		if ((error = parse_options(&sg, tok[1], as->name, lineno)) < 0)
			goto out;
		error = TEND_EINVALID;
		k = 2;
	}
	if (n < k + 2) {
		tend_error_set("%s:%u: expected 'principals [options] keytype key'", as->name, lineno);
		goto out;
	}
	if (!is_keytype(tok[k])) {
		tend_error_set("%s:%u: unknown key type '%.40s'", as->name, lineno, tok[k]);
		goto out;
	}
	b64_len = strlen(tok[k + 1]);
	if (!(sg.blob = malloc(b64_len + 1))) {
		error = -1;
		goto out;
	}
	if (sodium_base642bin(sg.blob, b64_len + 1, tok[k + 1], b64_len, NULL, &sg.blob_len, &b64_end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || b64_end != tok[k + 1] + b64_len ||
	    sg.blob_len < 4) {
		tend_error_set("%s:%u: invalid base64 key", as->name, lineno);
		goto out;
	}
	/* The blob starts with its own type, which must agree with the field. */
	kt_len = (size_t)sg.blob[0] << 24 | (size_t)sg.blob[1] << 16 | (size_t)sg.blob[2] << 8 | sg.blob[3];
	kt = sg.blob + 4;
	type_len = strlen(tok[k]);
	if (kt_len != type_len || kt_len > sg.blob_len - 4 || memcmp(kt, tok[k], type_len) != 0) {
		tend_error_set("%s:%u: key data does not match key type %s", as->name, lineno, tok[k]);
		goto out;
	}
	if (as->n >= TEND_ALLOWED_SIGNERS_MAX_KEYS) {
		tend_error_set("%s:%u: more than %d keys", as->name, lineno, TEND_ALLOWED_SIGNERS_MAX_KEYS);
		error = TEND_ELIMIT;
		goto out;
	}
	if (as->n == as->cap) {
		size_t cap = as->cap ? as->cap * 2 : 8;
		signer *nv = realloc(as->v, cap * sizeof(*nv));

		if (!nv) {
			error = -1;
			goto out;
		}
		as->v = nv;
		as->cap = cap;
	}
	as->v[as->n++] = sg;
	return 0;
out:
	free(sg.blob);
	free(sg.namespaces);
	return error;
}

int tend_allowed_signers_parse(tend_allowed_signers **out, const char *name, const char *text, size_t len)
{
	tend_allowed_signers *as = NULL;
	char line[MAX_LINE];
	size_t pos = 0;
	unsigned lineno = 0;
	int error = -1;

	*out = NULL;
	if (sodium_init() < 0)
		return -1;
	if (len > TEND_ALLOWED_SIGNERS_MAX_FILE) {
		tend_error_set("%s: larger than %d bytes", name, TEND_ALLOWED_SIGNERS_MAX_FILE);
		return TEND_ELIMIT;
	}
	if (!(as = calloc(1, sizeof(*as))) || !(as->name = strdup(name)))
		goto out;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - (text + pos)) : len - pos;

		lineno++;
		if (l >= sizeof(line)) {
			tend_error_set("%s:%u: line longer than %d bytes", name, lineno, MAX_LINE);
			error = TEND_ELIMIT;
			goto out;
		}
		memcpy(line, text + pos, l);
		line[l] = '\0';
		if (l > 0 && line[l - 1] == '\r')
			line[l - 1] = '\0';
		if (memchr(text + pos, '\0', l)) {
			tend_error_set("%s:%u: NUL byte", name, lineno);
			error = TEND_EINVALID;
			goto out;
		}
		if ((error = parse_line(as, line, lineno)) < 0)
			goto out;
		error = -1;
		pos += l + (nl ? 1 : 0);
	}
	*out = as;
	as = NULL;
	error = 0;
out:
	tend_allowed_signers_free(as);
	return error;
}

int tend_allowed_signers_load(tend_allowed_signers **out, const char *path)
{
	tend_buf b = TEND_BUF_INIT;
	int error;

	*out = NULL;
	if ((error = tend_file_read(&b, path, TEND_ALLOWED_SIGNERS_MAX_FILE)) == 0)
		error = tend_allowed_signers_parse(out, path, b.ptr ? b.ptr : "", b.size);
	tend_buf_dispose(&b);
	return error;
}

/* ssh's pattern lists: comma-separated globs, '!' negates and wins. */
static int namespace_allowed(const char *list, const char *ns)
{
	char *copy = strdup(list), *save = NULL, *pat;
	int allowed = 0;

	if (!copy)
		return 0;
	for (pat = strtok_r(copy, ",", &save); pat; pat = strtok_r(NULL, ",", &save)) {
		while (*pat == ' ')
			pat++;
		if (*pat == '!') {
			if (fnmatch(pat + 1, ns, 0) == 0) {
				allowed = 0;
				break;
			}
		} else if (fnmatch(pat, ns, 0) == 0) {
			allowed = 1;
		}
	}
	free(copy);
	return allowed;
}

int tend_allowed_signers_check(const tend_allowed_signers *as, const unsigned char *blob, size_t len,
			       const char *ns, int64_t when, int64_t now)
{
	char fp[TEND_SSH_FINGERPRINT_SIZE];
	const char *why = NULL;
	unsigned why_line = 0;
	size_t i;

	for (i = 0; i < as->n; i++) {
		const signer *sg = &as->v[i];

		if (sg->blob_len != len || memcmp(sg->blob, blob, len) != 0)
			continue;
		if (sg->namespaces && !namespace_allowed(sg->namespaces, ns))
			why = "not for namespace";
		else if (when < sg->valid_after)
			why = "not yet valid (valid-after) at the commit time";
		else if (when >= sg->valid_before)
			why = "expired (valid-before) at the commit time";
		else if (now < sg->valid_after)
			why = "not yet valid (valid-after) by this host's clock";
		else if (now >= sg->valid_before)
			why = "expired (valid-before) by this host's clock";
		else
			return 0;
		why_line = sg->line;
	}
	tend_ssh_fingerprint(fp, blob, len);
	if (why) {
		if (!strcmp(why, "not for namespace"))
			tend_error_set("key %s is in %s:%u but not allowed for namespace \"%s\"", fp, as->name, why_line, ns);
		else
			tend_error_set("key %s in %s:%u is %s", fp, as->name, why_line, why);
		return TEND_EREFUSED;
	}
	tend_error_set("signed by a key not in allowed_signers (%s)", fp);
	return TEND_ENOMATCH;
}
