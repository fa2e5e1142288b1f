/* The fleet flake's lock: tend builds every host with --no-update-lock-file, so
 * a flake.nix with inputs needs a flake.lock that locks each of them. Checked
 * from the text of both files (nix is not run here; docs/manifest.md). */
#ifndef TEND_MANIFEST_FLAKE_H
#define TEND_MANIFEST_FLAKE_H

#include <stddef.h>
#include "manifest/manifest.h"

/* Diagnostics for repo_dir's flake.nix and flake.lock (both at the root, read
 * without following a link): an input flake.nix declares (an `inputs`
 * attribute, or an argument of `outputs` other than self) and no flake.lock,
 * positioned at flake.nix's `inputs`; an input missing from flake.lock, an
 * input locked that flake.nix no longer declares, a flake.lock that is not
 * JSON, positioned in flake.lock. Nothing when there is no flake.nix, or for
 * what the text does not say for sure. Returns 0, or a negative code (error
 * set) when a file cannot be read for another reason than its absence. */
int tend_manifest_check_flake(tend_diags *diags, const char *repo_dir);

/* The same on the texts (lock NULL: there is no flake.lock). */
int tend_manifest_check_flake_text(tend_diags *diags, const char *nix, size_t nix_len,
				   const char *lock, size_t lock_len);

#endif
