/* Internal to util/yaml.c and its tests: the two parsers behind
 * tend_yaml_parse. The fast one reads the plain block YAML manifests are
 * written in and declines everything else; libyaml reads the rest and makes
 * every error message. */
#ifndef TEND_UTIL_YAML_FAST_H
#define TEND_UTIL_YAML_FAST_H

#include "util/arena.h"
#include "util/yaml.h"

struct tend_yaml_doc {
	tend_arena *arena;
	const char *file;
	tend_yaml_node *root;
};

/* 0 with *out the tree libyaml would build for the same bytes (positions,
 * styles, values, counts and weights alike); TEND_YAML_DECLINED when the
 * document is outside the subset (anything non-ASCII, tabs, CR, anchors,
 * aliases, tags, block scalars, multi-line scalars or flow collections,
 * documents markers, duplicate keys, errors, a cap reached), nothing set; or
 * a negative code when out of memory. */
#define TEND_YAML_DECLINED 1
int tend_yaml__parse_fast(tend_yaml_doc **out, const char *file, const char *data, size_t len,
			  const tend_yaml_limits *limits);
/* The libyaml parser alone (what tend_yaml_parse falls back to). */
int tend_yaml__parse_libyaml(tend_yaml_doc **out, const char *file, const char *data, size_t len,
			     const tend_yaml_limits *limits, tend_yaml_error *err);

#endif
