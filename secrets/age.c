/* age v1 decryption: strict header and armor parsing (canonical base64 only,
 * as the C2SP spec and the CCTV vectors demand), stanza unwrapping for
 * X25519, ssh-ed25519 and scrypt, the header MAC and the STREAM payload. */
#include "secrets/age.h"
#include "secrets/hkdf.h"
#include "secrets/identity_priv.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#define INTRO "age-encryption.org/v1\n"
#define ARMOR_BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"
#define ARMOR_END "-----END AGE ENCRYPTED FILE-----"
#define CHUNK 65536
#define TAGLEN 16
#define MAX_WHITESPACE 1024

static void limits_fill(tend_age_limits *l, const tend_age_limits *in)
{
	memset(l, 0, sizeof(*l));
	if (in)
		*l = *in;
	if (!l->max_payload)
		l->max_payload = 64u << 20;
	if (!l->max_header)
		l->max_header = 64u << 10;
	if (!l->max_stanzas)
		l->max_stanzas = 128;
	/* 2^22 is age's own ceiling (4 GiB of scrypt memory): never more */
	if (!l->max_scrypt_log_n || l->max_scrypt_log_n > 22)
		l->max_scrypt_log_n = 22;
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int tend_age_detect(const char *data, size_t len)
{
	size_t i = 0;

	if (len >= strlen(INTRO) - 1 && !memcmp(data, INTRO, strlen(INTRO) - 1))
		return 1;
	while (i < len && i < MAX_WHITESPACE && is_space((unsigned char)data[i]))
		i++;
	if (len - i >= strlen(ARMOR_BEGIN) && !memcmp(data + i, ARMOR_BEGIN, strlen(ARMOR_BEGIN)))
		return 2;
	return 0;
}

/* Strict base64 (canonical, no CR/LF). padded: the armor's alphabet with '='. */
static int b64_decode(unsigned char *out, size_t out_max, size_t *out_len,
		      const char *in, size_t in_len, int padded)
{
	if (in_len == 0) {
		*out_len = 0;
		return 0;
	}
	return sodium_base642bin(out, out_max, in, in_len, NULL, out_len, NULL,
				 padded ? sodium_base64_VARIANT_ORIGINAL
					: sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

/* One line of the armor: [p, nl) without "\n" and one trailing "\r". Returns
 * 0 when a line was found; *has_nl tells whether it ended with "\n". */
static int next_line(const char *data, size_t len, size_t *pos, const char **line,
		     size_t *line_len, int *has_nl)
{
	const char *p = data + *pos, *nl;

	if (*pos >= len)
		return -1;
	nl = memchr(p, '\n', len - *pos);
	*line = p;
	if (nl) {
		*line_len = (size_t)(nl - p);
		*pos += *line_len + 1;
		*has_nl = 1;
	} else {
		*line_len = len - *pos;
		*pos = len;
		*has_nl = 0;
	}
	if (*line_len && p[*line_len - 1] == '\r')
		(*line_len)--;
	return 0;
}

static int line_is(const char *line, size_t len, const char *what)
{
	return len == strlen(what) && !memcmp(line, what, len);
}

int tend_age_dearmor(tend_buf *out, const char *data, size_t len)
{
	size_t pos = 0, i, n, line_len;
	const char *line;
	int has_nl, error = TEND_EINVALID, ended = 0;
	unsigned char bin[48];

	while (pos < len && is_space((unsigned char)data[pos])) {
		if (++pos > MAX_WHITESPACE) {
			tend_error_set("armor: too much leading whitespace");
			goto out;
		}
	}
	if (next_line(data, len, &pos, &line, &line_len, &has_nl) < 0 ||
	    !line_is(line, line_len, ARMOR_BEGIN) || !has_nl) {
		tend_error_set("armor: the first line is not '" ARMOR_BEGIN "'");
		goto out;
	}
	for (;;) {
		if (next_line(data, len, &pos, &line, &line_len, &has_nl) < 0) {
			tend_error_set("armor: missing '" ARMOR_END "' line");
			goto out;
		}
		if (line_is(line, line_len, ARMOR_END))
			break;
		if (ended) {
			tend_error_set("armor: a short line must be the last before the end line");
			goto out;
		}
		if (line_len == 0 || line_len > 64 || !has_nl) {
			tend_error_set("armor: invalid line length %zu (1 to 64 columns)", line_len);
			goto out;
		}
		if (b64_decode(bin, sizeof(bin), &n, line, line_len, 1) != 0) {
			tend_error_set("armor: invalid base64 line");
			goto out;
		}
		if ((error = tend_buf_put(out, bin, n)) < 0)
			goto out;
		error = TEND_EINVALID;
		if (n < 48)
			ended = 1;
	}
	for (i = pos; i < len; i++) {
		if (!is_space((unsigned char)data[i])) {
			tend_error_set("armor: data after the end line");
			goto out;
		}
		if (i - pos >= MAX_WHITESPACE) {
			tend_error_set("armor: too much trailing whitespace");
			goto out;
		}
	}
	error = 0;
out:
	sodium_memzero(bin, sizeof(bin));
	return error;
}

static int valid_arg(const char *s, size_t len)
{
	size_t i;

	if (!len)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126)
			return 0;
	return 1;
}

void tend_age_header_dispose(tend_age_header *hdr)
{
	size_t i, j;

	if (!hdr)
		return;
	for (i = 0; i < hdr->count; i++) {
		tend_age_stanza *s = &hdr->stanzas[i];
		free(s->type);
		for (j = 0; j < s->nargs; j++)
			free(s->args[j]);
		free(s->args);
		if (s->body)
			sodium_memzero(s->body, s->body_len);
		free(s->body);
	}
	free(hdr->stanzas);
	memset(hdr, 0, sizeof(*hdr));
}

/* Split "prefix a b c" on single spaces; args are copied. */
static int split_args(tend_age_stanza *s, const char *line, size_t len)
{
	size_t start = 0, i, n = 0;
	char **args = NULL;

	for (i = 0; i <= len; i++) {
		if (i == len || line[i] == ' ') {
			if (!valid_arg(line + start, i - start))
				goto fail;
			if (!(args = realloc(s->args, (n + 1) * sizeof(*args))))
				goto fail;
			s->args = args;
			if (!(args[n] = strndup(line + start, i - start)))
				goto fail;
			n++;
			s->nargs = n;
			start = i + 1;
		}
	}
	return 0;
fail:
	return -1;
}

int tend_age_header_parse(tend_age_header *out, const unsigned char *data, size_t len,
			  const tend_age_limits *limits_in)
{
	tend_age_limits limits;
	const char *p = (const char *)data;
	size_t pos, nl_at, line_len, n;
	const char *nl;
	int error = TEND_EINVALID;

	limits_fill(&limits, limits_in);
	memset(out, 0, sizeof(*out));
	out->raw = data;
	if (len < strlen(INTRO) || memcmp(p, INTRO, strlen(INTRO))) {
		tend_error_set("header: not an age v1 file (missing 'age-encryption.org/v1' line)");
		goto out;
	}
	pos = strlen(INTRO);
	for (;;) {
		if (pos > limits.max_header) {
			tend_error_set("header: larger than %zu bytes", limits.max_header);
			error = TEND_ELIMIT;
			goto out;
		}
		if (!(nl = memchr(p + pos, '\n', len - pos))) {
			tend_error_set("header: unexpected end of file");
			goto out;
		}
		nl_at = (size_t)(nl - p);
		line_len = nl_at - pos;
		if (nl_at > limits.max_header) {
			tend_error_set("header: larger than %zu bytes", limits.max_header);
			error = TEND_ELIMIT;
			goto out;
		}
		if (line_len >= 3 && !memcmp(p + pos, "---", 3)) {
			/* "--- <mac>" exactly */
			if (line_len < 4 || p[pos + 3] != ' ' ||
			    b64_decode(out->mac, sizeof(out->mac), &n, p + pos + 4, line_len - 4, 0) != 0 ||
			    n != 32 || memchr(p + pos + 4, '\r', line_len - 4)) {
				tend_error_set("header: malformed MAC line");
				goto out;
			}
			out->mac_covered = pos + 3;
			pos = nl_at + 1;
			break;
		}
		{
			tend_age_stanza *st, *grown;
			if (out->count >= limits.max_stanzas) {
				tend_error_set("header: more than %zu stanzas", limits.max_stanzas);
				error = TEND_ELIMIT;
				goto out;
			}
			if (!(grown = realloc(out->stanzas, (out->count + 1) * sizeof(*grown)))) {
				tend_error_set("out of memory");
				error = TEND_ERROR;
				goto out;
			}
			out->stanzas = grown;
			st = &out->stanzas[out->count++];
			memset(st, 0, sizeof(*st));
			if (line_len < 3 || memcmp(p + pos, "-> ", 3) ||
			    split_args(st, p + pos + 3, line_len - 3) < 0) {
				tend_error_set("header: malformed stanza opening line");
				goto out;
			}
			/* the first split item is the type */
			st->type = st->args[0];
			memmove(st->args, st->args + 1, (st->nargs - 1) * sizeof(char *));
			st->nargs--;
			pos = nl_at + 1;
			for (;;) {
				unsigned char bin[48];
				unsigned char *body;
				if (!(nl = memchr(p + pos, '\n', len - pos))) {
					tend_error_set("header: unexpected end of file in a stanza body");
					goto out;
				}
				nl_at = (size_t)(nl - p);
				line_len = nl_at - pos;
				if (nl_at > limits.max_header) {
					tend_error_set("header: larger than %zu bytes", limits.max_header);
					error = TEND_ELIMIT;
					goto out;
				}
				if (line_len > 64 || memchr(p + pos, '\r', line_len) ||
				    b64_decode(bin, sizeof(bin), &n, p + pos, line_len, 0) != 0) {
					tend_error_set("header: malformed stanza body line");
					goto out;
				}
				if (!(body = realloc(st->body, st->body_len + n + 1))) {
					tend_error_set("out of memory");
					error = TEND_ERROR;
					goto out;
				}
				st->body = body;
				memcpy(st->body + st->body_len, bin, n);
				st->body_len += n;
				sodium_memzero(bin, sizeof(bin));
				pos = nl_at + 1;
				if (n < 48)
					break;
			}
		}
	}
	if (len - pos < 16) {
		tend_error_set("header: missing payload nonce");
		goto out;
	}
	memcpy(out->nonce, p + pos, 16);
	out->payload = data + pos + 16;
	out->payload_len = len - pos - 16;
	error = 0;
out:
	if (error < 0)
		tend_age_header_dispose(out);
	return error;
}

static int aead_unwrap(unsigned char file_key[16], const unsigned char key[32],
		       const tend_age_stanza *s)
{
	static const unsigned char zero_nonce[12];
	unsigned long long n;

	return crypto_aead_chacha20poly1305_ietf_decrypt(file_key, &n, NULL, s->body, s->body_len,
							 NULL, 0, zero_nonce, key) == 0 && n == 16
		       ? 0 : -1;
}

/* 0: file key found; TEND_ENOMATCH: not for this identity; other: header failure. */
static int unwrap_x25519(unsigned char file_key[16], const tend_age_identity *id,
			 const tend_age_stanza *s)
{
	static const char label[] = "age-encryption.org/v1/X25519";
	unsigned char share[32], shared[32], salt[64], key[32];
	size_t n;
	int error = TEND_EINVALID;

	if (strcmp(s->type, "X25519"))
		return TEND_ENOMATCH;
	if (s->nargs != 1 || b64_decode(share, sizeof(share), &n, s->args[0], strlen(s->args[0]), 0) != 0 ||
	    n != 32 || s->body_len != 32) {
		tend_error_set("header: invalid X25519 stanza");
		goto out;
	}
	if (crypto_scalarmult(shared, id->secret, share) != 0) {
		tend_error_set("header: X25519 stanza with a low-order share");
		goto out;
	}
	memcpy(salt, share, 32);
	memcpy(salt + 32, id->pub, 32);
	tend_hkdf_sha256(key, 32, salt, 64, shared, 32, (const unsigned char *)label, strlen(label));
	error = aead_unwrap(file_key, key, s) == 0 ? 0 : TEND_ENOMATCH;
out:
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(key, sizeof(key));
	return error;
}

static int unwrap_ssh_ed25519(unsigned char file_key[16], const tend_age_identity *id,
			      const tend_age_stanza *s)
{
	static const char label[] = "age-encryption.org/v1/ssh-ed25519";
	unsigned char share[32], shared[32], tweaked[32], salt[64], key[32];
	size_t n;
	int error = TEND_EINVALID;

	if (strcmp(s->type, "ssh-ed25519"))
		return TEND_ENOMATCH;
	if (s->nargs != 2 || b64_decode(share, sizeof(share), &n, s->args[1], strlen(s->args[1]), 0) != 0 ||
	    n != 32 || s->body_len != 32) {
		tend_error_set("header: invalid ssh-ed25519 stanza");
		goto out;
	}
	if (strcmp(s->args[0], id->tag))
		return TEND_ENOMATCH;
	if (crypto_scalarmult(shared, id->secret, share) != 0 ||
	    crypto_scalarmult(tweaked, id->tweak, shared) != 0) {
		tend_error_set("header: ssh-ed25519 stanza with a low-order share");
		goto out;
	}
	memcpy(salt, share, 32);
	memcpy(salt + 32, id->pub, 32);
	tend_hkdf_sha256(key, 32, salt, 64, tweaked, 32, (const unsigned char *)label, strlen(label));
	error = aead_unwrap(file_key, key, s) == 0 ? 0 : TEND_ENOMATCH;
out:
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(tweaked, sizeof(tweaked));
	sodium_memzero(key, sizeof(key));
	return error;
}

static int unwrap_scrypt(unsigned char file_key[16], const tend_age_identity *id,
			 const tend_age_stanza *s, unsigned max_log_n)
{
	static const char label[] = "age-encryption.org/v1/scrypt";
	unsigned char salt[sizeof(label) - 1 + 16], key[32];
	const char *w;
	unsigned long log_n = 0;
	size_t n, i;
	int error = TEND_EINVALID;

	if (strcmp(s->type, "scrypt"))
		return TEND_ENOMATCH;
	memcpy(salt, label, sizeof(label) - 1);
	if (s->nargs != 2 ||
	    b64_decode(salt + sizeof(label) - 1, 16, &n, s->args[0], strlen(s->args[0]), 0) != 0 ||
	    n != 16 || s->body_len != 32) {
		tend_error_set("header: invalid scrypt stanza");
		goto out;
	}
	/* decimal, no sign, no leading zero, no overflow */
	w = s->args[1];
	if (w[0] < '1' || w[0] > '9' || strlen(w) > 2) {
		tend_error_set("header: invalid scrypt work factor");
		goto out;
	}
	for (i = 0; w[i]; i++) {
		if (w[i] < '0' || w[i] > '9') {
			tend_error_set("header: invalid scrypt work factor");
			goto out;
		}
		log_n = log_n * 10 + (unsigned long)(w[i] - '0');
	}
	if (log_n > max_log_n) {
		tend_error_set("header: scrypt work factor %lu is above the limit of %u", log_n, max_log_n);
		goto out;
	}
	if (crypto_pwhash_scryptsalsa208sha256_ll((const uint8_t *)id->pass, id->pass_len, salt,
						  sizeof(salt), (uint64_t)1 << log_n, 8, 1,
						  key, sizeof(key)) != 0) {
		tend_error_set("scrypt: out of memory");
		error = TEND_ERROR;
		goto out;
	}
	error = aead_unwrap(file_key, key, s) == 0 ? 0 : TEND_ENOMATCH;
out:
	sodium_memzero(key, sizeof(key));
	return error;
}

/* "no identity matched" plus what the file was encrypted to. */
static void set_no_match(const tend_age_header *hdr, const tend_age_identities *ids)
{
	tend_buf b = TEND_BUF_INIT;
	size_t i;

	tend_buf_puts(&b, "no identity matched; the file has ");
	for (i = 0; i < hdr->count; i++) {
		const tend_age_stanza *s = &hdr->stanzas[i];
		if (i)
			tend_buf_puts(&b, ", ");
		if (!strcmp(s->type, "ssh-ed25519") && s->nargs >= 1)
			tend_buf_printf(&b, "an ssh-ed25519 stanza for key tag %.16s", s->args[0]);
		else if (!strcmp(s->type, "mlkem768x25519"))
			tend_buf_puts(&b, "an mlkem768x25519 stanza (post-quantum age1pq recipient: not supported)");
		else if (!strcmp(s->type, "X25519") || !strcmp(s->type, "scrypt"))
			tend_buf_printf(&b, "an %s stanza", s->type);
		else
			tend_buf_printf(&b, "a '%.32s' stanza", s->type);
	}
	if (!hdr->count)
		tend_buf_puts(&b, "no stanzas");
	tend_buf_printf(&b, "; tried %zu identit%s", ids ? tend_age_identities_count(ids) : 0,
			ids && tend_age_identities_count(ids) == 1 ? "y" : "ies");
	for (i = 0; ids && i < ids->count && i < 8; i++)
		tend_buf_printf(&b, "%s%s", i ? ", " : ": ", ids->items[i].describe);
	tend_error_set("%s", b.ptr ? b.ptr : "no identity matched");
	tend_buf_dispose(&b);
}

int tend_age_header_unwrap(unsigned char file_key[16], const tend_age_header *hdr,
			   const tend_age_identities *ids, const tend_age_limits *limits_in)
{
	tend_age_limits limits;
	unsigned char mac_key[32], mac[32];
	size_t i, j;
	int error = TEND_ENOMATCH, found = 0;

	limits_fill(&limits, limits_in);
	for (i = 0; i < hdr->count; i++) {
		if (!strcmp(hdr->stanzas[i].type, "scrypt") && hdr->count != 1) {
			tend_error_set("header: an scrypt stanza must be the only one");
			return TEND_EINVALID;
		}
	}
	for (i = 0; ids && i < ids->count && !found; i++) {
		const tend_age_identity *id = &ids->items[i];
		for (j = 0; j < hdr->count && !found; j++) {
			const tend_age_stanza *s = &hdr->stanzas[j];
			switch (id->kind) {
			case TEND_AGE_ID_X25519:
				error = unwrap_x25519(file_key, id, s);
				break;
			case TEND_AGE_ID_SSH_ED25519:
				error = unwrap_ssh_ed25519(file_key, id, s);
				break;
			case TEND_AGE_ID_SCRYPT:
				error = unwrap_scrypt(file_key, id, s, limits.max_scrypt_log_n);
				break;
			default:
				error = TEND_ENOMATCH;
			}
			if (error == 0)
				found = 1;
			else if (error != TEND_ENOMATCH)
				goto out;
		}
	}
	if (!found) {
		set_no_match(hdr, ids);
		error = TEND_ENOMATCH;
		goto out;
	}
	tend_hkdf_sha256(mac_key, 32, NULL, 0, file_key, 16, (const unsigned char *)"header", 6);
	tend_hmac_sha256(mac, mac_key, 32, hdr->raw, hdr->mac_covered);
	if (sodium_memcmp(mac, hdr->mac, 32) != 0) {
		tend_error_set("header MAC mismatch: the header was modified");
		error = TEND_EAUTH;
		goto out;
	}
	error = 0;
out:
	if (error < 0)
		sodium_memzero(file_key, 16);
	sodium_memzero(mac_key, sizeof(mac_key));
	return error;
}

int tend_age_payload_decrypt(const unsigned char file_key[16], const tend_age_header *hdr,
			     const tend_age_limits *limits_in, tend_age_sink sink, void *ctx)
{
	tend_age_limits limits;
	unsigned char key[32], nonce[12], *plain = NULL;
	const unsigned char *p = hdr->payload;
	size_t left = hdr->payload_len, total = 0, i, plain_cap;
	unsigned long long n;
	int error = TEND_EAUTH, last = 0, first = 1;

	/* Plain heap, sized to the payload (most secrets are one short chunk) and
	 * wiped before free: sodium_malloc's mmap+mlock+guard pages cost more than
	 * the decryption of a small file, and the sink copies into the heap anyway. */
	plain_cap = left < CHUNK + TAGLEN ? (left > TAGLEN ? left - TAGLEN : 1) : CHUNK;
	limits_fill(&limits, limits_in);
	tend_hkdf_sha256(key, 32, hdr->nonce, 16, file_key, 16, (const unsigned char *)"payload", 7);
	memset(nonce, 0, sizeof(nonce));
	if (!(plain = malloc(plain_cap))) {
		tend_error_set("out of memory");
		error = TEND_ERROR;
		goto out;
	}
	if (left == 0) {
		tend_error_set("payload: no chunks (truncated file)");
		goto out;
	}
	while (!last) {
		size_t take;
		if (left == 0) {
			tend_error_set("payload: truncated (no final chunk)");
			goto out;
		}
		if (left < TAGLEN) {
			tend_error_set("payload: truncated chunk");
			goto out;
		}
		take = left > CHUNK + TAGLEN ? CHUNK + TAGLEN : left;
		if (take < CHUNK + TAGLEN) {
			/* a short chunk is the last one, and empty only as the only one */
			last = 1;
			if (take == TAGLEN && !first) {
				tend_error_set("payload: empty final chunk");
				goto out;
			}
			nonce[11] = 1;
			if (crypto_aead_chacha20poly1305_ietf_decrypt(plain, &n, NULL, p, take, NULL, 0,
								      nonce, key) != 0) {
				tend_error_set("payload: chunk authentication failed");
				goto out;
			}
		} else if (crypto_aead_chacha20poly1305_ietf_decrypt(plain, &n, NULL, p, take, NULL, 0,
								     nonce, key) != 0) {
			/* a full-size chunk may be the last one */
			nonce[11] = 1;
			if (crypto_aead_chacha20poly1305_ietf_decrypt(plain, &n, NULL, p, take, NULL, 0,
								      nonce, key) != 0) {
				tend_error_set("payload: chunk authentication failed");
				goto out;
			}
			/* trailing data is reported after this chunk is released, like age does */
			last = 1;
		}
		if (total + n > limits.max_payload) {
			tend_error_set("payload: plaintext larger than %zu bytes", limits.max_payload);
			error = TEND_ELIMIT;
			goto out;
		}
		total += (size_t)n;
		if (sink && n && sink(ctx, plain, (size_t)n) != 0) {
			error = TEND_ERROR;
			goto out;
		}
		p += take;
		left -= take;
		first = 0;
		/* big-endian 11-byte counter */
		for (i = 11; i-- > 0;) {
			if (++nonce[i])
				break;
		}
		if (i == (size_t)-1 && !last) {
			tend_error_set("payload: too many chunks");
			goto out;
		}
	}
	if (left) {
		tend_error_set("payload: data after the final chunk");
		goto out;
	}
	error = 0;
out:
	if (plain) {
		sodium_memzero(plain, plain_cap);
		free(plain);
	}
	sodium_memzero(key, sizeof(key));
	return error;
}

static int buf_sink(void *ctx, const unsigned char *data, size_t len)
{
	return tend_buf_put(ctx, data, len);
}

int tend_age_decrypt(tend_buf *out, const char *data, size_t len, const char *display,
		     const tend_age_identities *ids, const tend_age_limits *limits)
{
	tend_buf bin = TEND_BUF_INIT;
	tend_age_header hdr;
	unsigned char file_key[16];
	size_t start = out->size;
	int error, have_hdr = 0;

	if (!display)
		display = "age file";
	if (tend_age_detect(data, len) == 2) {
		if ((error = tend_age_dearmor(&bin, data, len)) < 0)
			goto out;
		data = bin.ptr;
		len = bin.size;
	}
	if ((error = tend_age_header_parse(&hdr, (const unsigned char *)data, len, limits)) < 0)
		goto out;
	have_hdr = 1;
	if ((error = tend_age_header_unwrap(file_key, &hdr, ids, limits)) < 0)
		goto out;
	error = tend_age_payload_decrypt(file_key, &hdr, limits, buf_sink, out);
	sodium_memzero(file_key, sizeof(file_key));
out:
	if (error < 0) {
		tend_error_prefix("%s: ", display);
		if (out->ptr && out->size > start)
			sodium_memzero(out->ptr + start, out->size - start);
		out->size = start;
		if (out->ptr)
			out->ptr[start] = '\0';
	}
	if (have_hdr)
		tend_age_header_dispose(&hdr);
	tend_buf_dispose_secure(&bin);
	return error;
}
