/* Test support: temporary directories, files, and running commands (git,
 * ssh-keygen, age, nix, the tend binary) for tests that use the real tools. */
#ifndef TEND_TEST_SUPPORT_H
#define TEND_TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/buf.h"
#include "util/proc.h"

/* A fresh directory under $TMPDIR (or /tmp), removed by test_tmpdir_remove. */
char *test_tmpdir_make(const char *label);
void test_tmpdir_remove(char *dir);

/* Write a file (creating parent directories); asserts on failure. */
void test_write_file(const char *dir, const char *rel, const char *content);
/* Read a whole file into a malloc'd NUL-terminated string; NULL if absent. */
char *test_read_file(const char *path);

/* Run a shell command line (sh -c) in cwd with a 120 s limit; returns the exit
 * code. stdout+stderr go into out when given (caller disposes). */
int test_sh(tend_buf *out, const char *cwd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same with a time limit of its own (seconds) and the arguments as a va_list. */
int test_shv(tend_buf *out, const char *cwd, int timeout_s, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
/* Run the tend binary with argv (NULL-terminated, without "tend"). */
int test_tend(tend_proc_result *res, const char *cwd, const char *const *args);

/* Stop every process whose command line contains `needle` (a test's own temp
 * directory): SIGTERM, wait up to 10 s, then SIGKILL. For stand-in services a
 * test started through scripts, which may not have written a pid file yet. */
void test_kill_matching(const char *needle);

/* A TCP port on 127.0.0.1 that the kernel just considered free. */
int test_free_port(void);
/* A socket listening on an ephemeral 127.0.0.1 port (*out_port) that nobody
 * accepts or answers on: a server that connects and then stays silent. */
int test_listen_silent(int *out_port);

/* 1 if a command is on PATH (to skip, loudly, tests whose tool is missing outside CI). */
int test_have(const char *tool);

/* Commit everything in the work tree at repo (`git add -A`, author op) with
 * message (no single quotes); asserts; returns the full hash (caller frees). */
char *test_git_commit_all(const char *repo, const char *message);

#endif
