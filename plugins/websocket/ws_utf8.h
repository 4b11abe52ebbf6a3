#ifndef WS_UTF8_H
#define WS_UTF8_H

/*
 * Incremental UTF-8 validation for text messages (RFC 6455 8.1), which
 * arrive in fragments and each fragment in pieces: the state carries a
 * partial character from one piece to the next. Strict RFC 3629: no
 * overlong forms, no surrogates (U+D800-DFFF), nothing above U+10FFFF.
 */
#include <stddef.h>
#include <stdint.h>

struct ws_utf8 {
    uint32_t state;   /* DFA state; 0 = at a character boundary, valid so far */
    uint32_t extra;   /* unused, zero: keeps room without an ABI change */
};

void ws_utf8_init(struct ws_utf8 *u);

/* Feeds the next bytes. Returns 0 while the text is valid so far (it may
 * end inside a character), -1 as soon as it cannot be valid UTF-8
 * (overlong forms, surrogates U+D800-DFFF, code points > U+10FFFF, bad
 * continuation bytes, 0xC0/0xC1/0xF5-0xFF) -- fail fast, RFC 6455 8.1:
 * -1 comes from the piece holding the first impossible byte, and every
 * later call returns -1 too. */
int ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t n);

/* 1 if the text fed so far is valid and ends on a character boundary (a
 * message may only end there). */
int ws_utf8_done(const struct ws_utf8 *u);

/* 1 if p[0..n) is complete, valid UTF-8 (a close reason, say). */
int ws_utf8_is_valid(const uint8_t *p, size_t n);

#endif
