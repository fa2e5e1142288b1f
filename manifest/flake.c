/* flake.nix's inputs against flake.lock. A small Nix lexer (comments, strings
 * with interpolation, URIs, paths) and a reader of the top-level attribute set
 * find the inputs nix would: `inputs.<name>...`, `inputs = { <name>... }` and
 * the formal arguments of `outputs` other than self. */
#include "manifest/flake.h"
#include "util/beneath.h"
#include "util/buf.h"
#include "util/error.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLAKE_MAX (4u << 20)
#define LOCK_HINT "run 'nix flake lock' and commit flake.lock (tend builds with " \
	"--no-update-lock-file, so every host uses the same inputs)"

typedef enum {
	T_END, T_ID, T_STR, T_LBRACE, T_RBRACE, T_OPEN, T_CLOSE, T_SEMI, T_EQ, T_DOT,
	T_COMMA, T_QUESTION, T_AT, T_COLON, T_ELLIPSIS, T_OTHER
} tok_kind;

typedef struct {
	tok_kind kind;
	const char *p;         /* T_ID: the name; T_STR: the text between the quotes */
	size_t len;
	int known;             /* T_STR: no interpolation or escape, the text is the value */
	unsigned line, col;
} tok;

typedef struct {
	const char *p, *end;
	unsigned line, col;    /* of p */
	int bad;               /* unterminated string or comment, nesting too deep */
	unsigned nest;         /* interpolations being skipped */
	tok back[2];           /* tokens read and given back, the last first */
	size_t nback;
} lexer;

typedef struct {
	char *name;
	unsigned line, col;    /* where flake.nix names it */
} input;

typedef struct {
	input *inputs;
	size_t n, cap;
	unsigned line, col;    /* the first input */
	unsigned in_line, in_col;   /* the first `inputs`, where the messages point */
	int complete;          /* every input is named above: none computed or hidden */
	int oom;
} scan;

static void adv(lexer *lx)
{
	if (lx->p >= lx->end)
		return;
	if (*lx->p == '\n') {
		lx->line++;
		lx->col = 1;
	} else {
		lx->col++;
	}
	lx->p++;
}

static void adv_n(lexer *lx, size_t n)
{
	while (n--)
		adv(lx);
}

static int at(const lexer *lx, size_t off, char c)
{
	return lx->p + off < lx->end && lx->p[off] == c;
}

static int is_id_start(int c)
{
	return isalpha(c) || c == '_';
}

static int is_id_char(int c)
{
	return isalnum(c) || c == '_' || c == '\'' || c == '-';
}

/* (strchr finds the terminator: a NUL byte is no character of these) */
static int is_path_char(int c)
{
	return c && (isalnum(c) || strchr("._-+", c));
}

/* Nix's URI literal: what may follow "scheme:". */
static int is_uri_char(int c)
{
	return c && (isalnum(c) || strchr("%/?:@&=+$,-_.!~*'", c));
}

static void lex_next(lexer *lx, tok *t);

/* Past the `}` that closes an interpolation or a dynamic attribute whose `${`
 * was just read. */
static void skip_interpolation(lexer *lx)
{
	unsigned depth = 0;
	tok t;

	if (++lx->nest > 64) {
		lx->bad = 1;
		lx->p = lx->end;
		return;
	}
	for (;;) {
		lex_next(lx, &t);
		if (t.kind == T_END) {
			lx->bad = 1;
			break;
		}
		if (t.kind == T_LBRACE) {
			depth++;
		} else if (t.kind == T_RBRACE) {
			if (!depth)
				break;
			depth--;
		}
	}
	lx->nest--;
}

/* A string whose opening quote (`"` or `''`) was just read. */
static void lex_string(lexer *lx, tok *t, int indented)
{
	t->kind = T_STR;
	t->p = lx->p;
	t->known = 1;
	for (;;) {
		if (lx->p >= lx->end) {
			lx->bad = 1;
			t->len = (size_t)(lx->p - t->p);
			return;
		}
		if (at(lx, 0, '$') && at(lx, 1, '{')) {
			t->known = 0;
			adv_n(lx, 2);
			skip_interpolation(lx);
		} else if (at(lx, 0, '$') && at(lx, 1, '$')) {   /* "$${" is no interpolation */
			adv_n(lx, 2);
		} else if (!indented && at(lx, 0, '\\')) {
			t->known = 0;
			adv_n(lx, 2);
		} else if (!indented && at(lx, 0, '"')) {
			t->len = (size_t)(lx->p - t->p);
			adv(lx);
			return;
		} else if (indented && at(lx, 0, '\'') && at(lx, 1, '\'')) {
			if (at(lx, 2, '\'') || at(lx, 2, '$')) {        /* ''' and ''$ */
				t->known = 0;
				adv_n(lx, 3);
			} else if (at(lx, 2, '\\')) {                   /* ''\n */
				t->known = 0;
				adv_n(lx, 4);
			} else {
				t->len = (size_t)(lx->p - t->p);
				adv_n(lx, 2);
				return;
			}
		} else {
			adv(lx);
		}
	}
}

static void lex_next(lexer *lx, tok *t)
{
	const char *s;
	int c;

	if (lx->nback) {
		*t = lx->back[--lx->nback];
		return;
	}
	while (lx->p < lx->end) {
		if (isspace((unsigned char)*lx->p)) {
			adv(lx);
		} else if (*lx->p == '#') {
			while (lx->p < lx->end && *lx->p != '\n')
				adv(lx);
		} else if (at(lx, 0, '/') && at(lx, 1, '*')) {
			adv_n(lx, 2);
			while (lx->p < lx->end && !(at(lx, 0, '*') && at(lx, 1, '/')))
				adv(lx);
			if (lx->p >= lx->end)
				lx->bad = 1;
			adv_n(lx, 2);
		} else {
			break;
		}
	}
	memset(t, 0, sizeof(*t));
	t->line = lx->line;
	t->col = lx->col;
	t->p = s = lx->p;
	if (lx->p >= lx->end) {
		t->kind = T_END;
		return;
	}
	c = (unsigned char)*s;
	if (c == '"') {
		adv(lx);
		lex_string(lx, t, 0);
		return;
	}
	if (c == '\'' && at(lx, 1, '\'')) {
		adv_n(lx, 2);
		lex_string(lx, t, 1);
		return;
	}
	if (c == '$' && at(lx, 1, '{')) {   /* a dynamic attribute: its name is computed */
		adv_n(lx, 2);
		skip_interpolation(lx);
		t->kind = T_STR;
		t->known = 0;
		return;
	}
	if (is_id_start(c)) {
		const char *e = s;

		/* scheme:rest is one URI token, as nix reads it */
		while (e < lx->end && *e && (isalnum((unsigned char)*e) || strchr("+-.", *e)))
			e++;
		if (e + 1 < lx->end && *e == ':' && is_uri_char((unsigned char)e[1])) {
			e++;
			while (e < lx->end && is_uri_char((unsigned char)*e))
				e++;
			adv_n(lx, (size_t)(e - s));
			t->kind = T_OTHER;
			return;
		}
		for (e = s; e < lx->end && is_id_char((unsigned char)*e); e++)
			;
		if (e + 1 < lx->end && *e == '/' && is_path_char((unsigned char)e[1])) {
			while (e < lx->end && (is_path_char((unsigned char)*e) || *e == '/'))
				e++;
			adv_n(lx, (size_t)(e - s));
			t->kind = T_OTHER;   /* a relative path: a/b */
			return;
		}
		adv_n(lx, (size_t)(e - s));
		t->kind = T_ID;
		t->len = (size_t)(e - s);
		return;
	}
	if ((c == '.' || c == '~' || c == '/') &&
	    ((c == '/' && lx->p + 1 < lx->end && is_path_char((unsigned char)s[1])) ||
	     (c == '~' && at(lx, 1, '/')) || (c == '.' && at(lx, 1, '/')) ||
	     (c == '.' && at(lx, 1, '.') && at(lx, 2, '/')))) {
		const char *e = s + 1;

		while (e < lx->end && (is_path_char((unsigned char)*e) || *e == '/'))
			e++;
		adv_n(lx, (size_t)(e - s));
		t->kind = T_OTHER;
		return;
	}
	if (c == '.' && at(lx, 1, '.') && at(lx, 2, '.')) {
		adv_n(lx, 3);
		t->kind = T_ELLIPSIS;
		return;
	}
	/* two-character operators that hold '=' are not a binding's '=' */
	if (c && strchr("=!<>", c) && at(lx, 1, '=')) {
		adv_n(lx, 2);
		t->kind = T_OTHER;
		return;
	}
	adv(lx);
	switch (c) {
	case '{': t->kind = T_LBRACE; break;
	case '}': t->kind = T_RBRACE; break;
	case '(': case '[': t->kind = T_OPEN; break;
	case ')': case ']': t->kind = T_CLOSE; break;
	case ';': t->kind = T_SEMI; break;
	case '=': t->kind = T_EQ; break;
	case '.': t->kind = T_DOT; break;
	case ',': t->kind = T_COMMA; break;
	case '?': t->kind = T_QUESTION; break;
	case '@': t->kind = T_AT; break;
	case ':': t->kind = T_COLON; break;
	default: t->kind = T_OTHER; break;
	}
}

/* Give t back: the next lex_next returns it. Two at most (lex_peek is one). */
static void lex_unget(lexer *lx, const tok *t)
{
	if (lx->nback < sizeof(lx->back) / sizeof(lx->back[0]))
		lx->back[lx->nback++] = *t;
}

static const tok *lex_peek(lexer *lx)
{
	tok t;

	if (!lx->nback) {
		lex_next(lx, &t);
		lex_unget(lx, &t);
	}
	return &lx->back[lx->nback - 1];
}

static int is_word(const tok *t, const char *w)
{
	return t->kind == T_ID && t->len == strlen(w) && !memcmp(t->p, w, t->len);
}

/* An attribute name's value when the text says it: an identifier, or a string
 * without interpolation or escape. */
static int name_known(const tok *t)
{
	return t->kind == T_ID || (t->kind == T_STR && t->known);
}

static int name_is(const tok *t, const char *w)
{
	return name_known(t) && t->len == strlen(w) && !memcmp(t->p, w, t->len);
}

/* Skip an expression up to the `;` (stop_comma: or `,`) that ends it at this
 * level, consumed; a closing bracket of the enclosing level or the end is left
 * in place. `let` bindings and `with e;` / `assert e;` have semicolons of their
 * own. Returns the kind it stopped at. */
static tok_kind skip_expr(lexer *lx, int stop_comma)
{
	unsigned depth = 0, lets = 0, owed = 0;
	tok t;

	for (;;) {
		const tok *p = lex_peek(lx);

		if (p->kind == T_END)
			return T_END;
		if (!depth && (p->kind == T_RBRACE || p->kind == T_CLOSE))
			return p->kind;
		lex_next(lx, &t);
		if (t.kind == T_LBRACE || t.kind == T_OPEN) {
			depth++;
		} else if (t.kind == T_RBRACE || t.kind == T_CLOSE) {
			depth--;
		} else if (depth) {
			continue;
		} else if (is_word(&t, "let")) {
			if (lex_peek(lx)->kind != T_LBRACE)   /* not the old `let { ... }` */
				lets++;
		} else if (is_word(&t, "in") && lets) {
			lets--;
		} else if (is_word(&t, "with") || is_word(&t, "assert")) {
			owed++;
		} else if (t.kind == T_SEMI) {
			if (owed)
				owed--;
			else if (!lets)
				return T_SEMI;
		} else if (t.kind == T_COMMA && stop_comma && !lets) {
			return T_COMMA;
		}
	}
}

static void add_input(scan *sc, const tok *t)
{
	size_t i;

	for (i = 0; i < sc->n; i++)
		if (strlen(sc->inputs[i].name) == t->len && !memcmp(sc->inputs[i].name, t->p, t->len))
			return;
	if (sc->n == sc->cap) {
		size_t ncap = sc->cap ? sc->cap * 2 : 8;
		input *n = realloc(sc->inputs, ncap * sizeof(*n));

		if (!n) {
			sc->oom = 1;
			return;
		}
		sc->inputs = n;
		sc->cap = ncap;
	}
	if (!(sc->inputs[sc->n].name = strndup(t->p, t->len))) {
		sc->oom = 1;
		return;
	}
	sc->inputs[sc->n].line = t->line;
	sc->inputs[sc->n].col = t->col;
	if (!sc->n) {
		sc->line = t->line;
		sc->col = t->col;
	}
	sc->n++;
}

/* Read an attribute path up to its `=` (consumed): *first and *second are its
 * first two names (second's kind T_END when there is none). 0 when it is not
 * an attribute path (its binding then skipped). */
static int read_attrpath(lexer *lx, const tok *start, tok *first, tok *second)
{
	tok t;
	size_t n = 1;

	*first = *start;
	second->kind = T_END;
	for (;;) {
		lex_next(lx, &t);
		if (t.kind == T_EQ)
			return 1;
		if (t.kind != T_DOT)
			break;
		lex_next(lx, &t);
		if (t.kind != T_ID && t.kind != T_STR)
			break;
		if (n++ == 1)
			*second = t;
	}
	lex_unget(lx, &t);   /* not a binding: what follows decides nothing */
	if (t.kind != T_RBRACE && t.kind != T_END)
		skip_expr(lx, 0);
	return 0;
}

/* The bindings of a set whose `{` was read, up to its `}` (consumed). In the
 * top-level set (inputs_set 0) `inputs` and `outputs` are looked at; in
 * `inputs = { ... }` (inputs_set 1) each binding's first name is an input. */
static void read_bindings(lexer *lx, scan *sc, int inputs_set);

static void read_inputs_value(lexer *lx, scan *sc)
{
	if (lex_peek(lx)->kind != T_LBRACE) {   /* computed: nix refuses it, we cannot tell */
		sc->complete = 0;
		skip_expr(lx, 0);
		return;
	}
	lex_next(lx, &(tok){ 0 });
	read_bindings(lx, sc, 1);
	if (lex_peek(lx)->kind == T_SEMI) {
		lex_next(lx, &(tok){ 0 });
	} else {   /* { ... } // something */
		sc->complete = 0;
		skip_expr(lx, 0);
	}
}

/* Formal arguments after their `{`, up to the `}` (consumed). 0 when this is
 * not a list of formals. */
static int read_formals(lexer *lx, tok **out, size_t *n)
{
	tok t;

	*out = NULL;
	*n = 0;
	for (;;) {
		lex_next(lx, &t);
		if (t.kind == T_RBRACE)
			return 1;
		if (t.kind == T_COMMA || t.kind == T_ELLIPSIS)
			continue;
		if (t.kind != T_ID)
			return 0;
		if (lex_peek(lx)->kind == T_EQ || lex_peek(lx)->kind == T_DOT)
			return 0;   /* a binding: this is a set */
		{
			tok *nt = realloc(*out, (*n + 1) * sizeof(*nt));

			if (!nt)
				return 0;
			*out = nt;
			nt[(*n)++] = t;
		}
		if (lex_peek(lx)->kind == T_QUESTION) {
			lex_next(lx, &t);
			if (skip_expr(lx, 1) == T_END)
				return 0;
		}
	}
}

/* outputs = <value>: the formals of a literal function are inputs (nix looks
 * them up in the flake registry when no `inputs` names them). */
static void read_outputs_value(lexer *lx, scan *sc)
{
	tok t, *formals = NULL;
	size_t n = 0, i;
	int ok = 0;

	lex_next(lx, &t);
	if (t.kind == T_ID && lex_peek(lx)->kind == T_COLON) {
		ok = 1;   /* inputs: ... */
	} else if (t.kind == T_ID && lex_peek(lx)->kind == T_AT) {
		lex_next(lx, &t);
		lex_next(lx, &t);
		ok = t.kind == T_LBRACE && read_formals(lx, &formals, &n) &&
		     lex_peek(lx)->kind == T_COLON;
	} else if (t.kind == T_LBRACE) {
		ok = read_formals(lx, &formals, &n);
		if (ok && lex_peek(lx)->kind == T_AT) {
			lex_next(lx, &t);
			lex_next(lx, &t);
			ok = t.kind == T_ID;
		}
		ok = ok && lex_peek(lx)->kind == T_COLON;
	} else {
		lex_unget(lx, &t);
	}
	if (ok) {
		for (i = 0; i < n; i++)
			if (!is_word(&formals[i], "self"))
				add_input(sc, &formals[i]);
	} else {
		sc->complete = 0;
	}
	free(formals);
	if (lex_peek(lx)->kind != T_RBRACE)
		skip_expr(lx, 0);
}

static void read_bindings(lexer *lx, scan *sc, int inputs_set)
{
	tok t, first, second;

	for (;;) {
		lex_next(lx, &t);
		if (t.kind == T_RBRACE)
			return;
		if (t.kind == T_END) {
			sc->complete = 0;
			return;
		}
		if (is_word(&t, "inherit")) {
			if (inputs_set)
				sc->complete = 0;
			skip_expr(lx, 0);
			continue;
		}
		if (t.kind != T_ID && t.kind != T_STR) {
			sc->complete = 0;
			lex_unget(lx, &t);
			if (t.kind == T_CLOSE)
				lex_next(lx, &t);   /* a stray closer: step over it */
			else if (skip_expr(lx, 0) == T_CLOSE)
				lex_next(lx, &t);
			continue;
		}
		if (!read_attrpath(lx, &t, &first, &second)) {
			sc->complete = 0;
			continue;
		}
		if (inputs_set) {
			if (name_known(&first))
				add_input(sc, &first);
			else
				sc->complete = 0;
			skip_expr(lx, 0);
		} else if (name_is(&first, "inputs")) {
			if (!sc->in_line) {
				sc->in_line = first.line;
				sc->in_col = first.col;
			}
			if (second.kind == T_END) {
				read_inputs_value(lx, sc);
				continue;
			}
			if (name_known(&second))
				add_input(sc, &second);
			else
				sc->complete = 0;
			skip_expr(lx, 0);
		} else if (name_is(&first, "outputs") && second.kind == T_END) {
			read_outputs_value(lx, sc);
		} else {
			if (!name_known(&first))
				sc->complete = 0;   /* ${...} = could be anything */
			skip_expr(lx, 0);
		}
	}
}

/* 1 when the text is a literal attribute set nix can read as a flake, with
 * sc filled; 0 when it is something else (nothing can be said). */
static int scan_flake(scan *sc, const char *text, size_t len)
{
	lexer lx = { text, text + len, 1, 1, 0, 0, { { 0 } }, 0 };
	tok t;

	memset(sc, 0, sizeof(*sc));
	sc->complete = 1;
	lex_next(&lx, &t);
	if (is_word(&t, "rec"))
		lex_next(&lx, &t);
	if (t.kind != T_LBRACE)
		return 0;
	read_bindings(&lx, sc, 0);
	if (lx.bad)
		sc->complete = 0;
	return 1;
}

static void scan_dispose(scan *sc)
{
	size_t i;

	for (i = 0; i < sc->n; i++)
		free(sc->inputs[i].name);
	free(sc->inputs);
}

static int declared(const scan *sc, const char *name)
{
	size_t i;

	for (i = 0; i < sc->n; i++)
		if (!strcmp(sc->inputs[i].name, name))
			return 1;
	return 0;
}

static void check_lock(tend_diags *diags, const scan *sc, const char *lock, size_t lock_len)
{
	tend_pos lpos = { "flake.lock", 0, 0 };
	json_error_t jerr;
	json_t *root, *node, *inputs;
	const char *root_name, *key;
	json_t *v;
	size_t i;

	if (!(root = json_loadb(lock, lock_len, 0, &jerr))) {
		lpos.line = jerr.line > 0 ? (unsigned)jerr.line : 0;
		lpos.col = jerr.line > 0 && jerr.column > 0 ? (unsigned)jerr.column : 0;
		tend_diags_add(diags, TEND_DIAG_ERROR, &lpos, "not valid JSON (%s): %s", jerr.text,
			       LOCK_HINT);
		return;
	}
	root_name = json_string_value(json_object_get(root, "root"));
	if (!root_name)
		root_name = "root";
	node = json_object_get(json_object_get(root, "nodes"), root_name);
	if (!json_is_object(node)) {
		tend_diags_add(diags, TEND_DIAG_ERROR, &lpos, "no nodes.%s: not a lock file nix "
			       "wrote: %s", root_name, LOCK_HINT);
		json_decref(root);
		return;
	}
	inputs = json_object_get(node, "inputs");
	for (i = 0; i < sc->n; i++)
		if (!json_object_get(inputs, sc->inputs[i].name))
			tend_diags_add(diags, TEND_DIAG_ERROR, &lpos, "input '%s' (flake.nix:%u:%u) is "
				       "not locked: %s", sc->inputs[i].name, sc->inputs[i].line,
				       sc->inputs[i].col, LOCK_HINT);
	/* an input locked but gone from flake.nix: nix wants to change the lock
	 * just the same, when we know every input flake.nix has */
	if (sc->complete && json_is_object(inputs))
		json_object_foreach(inputs, key, v)
			if (!declared(sc, key))
				tend_diags_add(diags, TEND_DIAG_ERROR, &lpos, "input '%s' is locked but "
					       "flake.nix does not declare it: %s", key, LOCK_HINT);
	json_decref(root);
}

int tend_manifest_check_flake_text(tend_diags *diags, const char *nix, size_t nix_len,
				   const char *lock, size_t lock_len)
{
	tend_pos npos = { "flake.nix", 0, 0 };
	scan sc;
	int error = 0;

	if (!scan_flake(&sc, nix, nix_len))
		goto out;
	if (sc.oom) {
		tend_error_set("out of memory");
		error = TEND_ERROR;
		goto out;
	}
	if (!lock) {
		if (sc.n) {
			npos.line = sc.in_line ? sc.in_line : sc.line;
			npos.col = sc.in_line ? sc.in_col : sc.col;
			tend_diags_add(diags, TEND_DIAG_ERROR, &npos, "the flake has inputs but no "
				       "flake.lock: %s", LOCK_HINT);
		}
		goto out;
	}
	check_lock(diags, &sc, lock, lock_len);
out:
	scan_dispose(&sc);
	return error;
}

int tend_manifest_check_flake(tend_diags *diags, const char *repo_dir)
{
	tend_buf nix = TEND_BUF_INIT, lock = TEND_BUF_INIT;
	tend_pos lpos = { "flake.lock", 0, 0 };
	int rc, error = 0, have_lock = 0;

	rc = tend_beneath_read(&nix, repo_dir, "flake.nix", FLAKE_MAX);
	if (rc < 0) {
		/* no flake.nix, or one tend does not read (a link, too large): nix
		 * says what it makes of it when it builds */
		tend_error_clear();
		goto out;
	}
	rc = tend_beneath_read(&lock, repo_dir, "flake.lock", FLAKE_MAX);
	if (rc == 0) {
		have_lock = 1;
	} else if (rc == TEND_ENOTFOUND) {
		tend_error_clear();
	} else if (rc == TEND_EREFUSED) {
		tend_error_clear();
		tend_diags_add(diags, TEND_DIAG_ERROR, &lpos, "a symbolic link (or one on its path): "
			       "tend follows no link in the repository");
		goto out;
	} else {
		tend_diags_add(diags, TEND_DIAG_ERROR, &lpos, "%s", tend_error_last());
		tend_error_clear();
		goto out;
	}
	error = tend_manifest_check_flake_text(diags, nix.ptr ? nix.ptr : "", nix.size,
					       have_lock ? (lock.ptr ? lock.ptr : "") : NULL, lock.size);
out:
	tend_buf_dispose(&nix);
	tend_buf_dispose(&lock);
	return error;
}
