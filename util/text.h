/* Text from peers and probed services made safe for a terminal: control
 * characters (C0, DEL, C1) and bytes that are not UTF-8 replaced, so a status
 * or a probed body cannot move the cursor, retitle or clear a terminal. */
#ifndef TEND_UTIL_TEXT_H
#define TEND_UTIL_TEXT_H

/* In place: every control character, DEL, C1 control (U+0080..U+009F) and
 * byte of an invalid UTF-8 sequence becomes '?'; line feeds and tabs are kept
 * when multiline (else they become '?' too). The text never grows. */
void tend_text_strip_controls(char *s, int multiline);
/* A stripped copy (NULL for NULL or out of memory). */
char *tend_text_clean_dup(const char *s, int multiline);

#endif
