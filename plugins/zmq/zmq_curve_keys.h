#ifndef TREMOLO_ZMQ_CURVE_KEYS_H
#define TREMOLO_ZMQ_CURVE_KEYS_H

/*
 * CurveKeys, the allow-list of node public keys (docs/configuration.md):
 * one Z85 key per line, then the node identities that key may use, then
 * an optional comment:
 *
 *     <40 Z85 characters>   web-* node-7   # rack 3
 *
 * An identity is an exact name or a glob, matched as a site's Node list
 * matches (fnmatch when it holds * ? or [). A key with no identity list
 * may use any identity: that is what such a line meant before the lists
 * existed, and the loader warns about it; `*` says so on purpose. A word
 * that starts with `#` starts the comment (no Z85 key does: its first
 * character stands for the top of a 32-bit number, at most 82 of 85).
 *
 * Parsing and matching only, no socket: the ZAP handler and the check of
 * every node message are in zmq_curve.c (gateway thread).
 */
#include <stddef.h>
#include <stdint.h>

#include "mk_core/mk_hash.h"

#define ZMQ_CURVE_KEY_LEN 32
#define ZMQ_CURVE_Z85_LEN 40
/* Identities listed for one key: every node message is matched against
 * its key's list, so the list stays short. */
#define ZMQ_CURVE_IDS_MAX 64
#define ZMQ_CURVE_FILE_MAX (16 * 1024 * 1024)

struct zmq_curve_key {
    uint8_t key[ZMQ_CURVE_KEY_LEN];
    int line;                        /* in the file */
    size_t count;                    /* identities listed; 0: any */
    char *ids;                       /* count NUL-terminated words, back to
                                      * back (owned); NULL when count is 0 */
};

struct zmq_curve_keys {
    struct zmq_curve_key *keys;      /* file order */
    size_t count, size;
    struct mk_hash *by_key;          /* 32-byte key -> index + 1 */
};

/* One line of the file, without its newline. Returns 1 with *out filled
 * (out->ids owned by the caller: zmq_curve_key_release), 0 for a blank or
 * comment line, -1 with the reason in err. Sets no line number. */
int  zmq_curve_key_parse(const char *line, size_t len,
                         struct zmq_curve_key *out, char *err, size_t errlen);
void zmq_curve_key_release(struct zmq_curve_key *k);
/* Whether key k may use identity id (len bytes, opaque). */
int  zmq_curve_key_permits(const struct zmq_curve_key *k, const char *id,
                           size_t len);

/* Reads the file; errors read `path:line: reason`. A key listed twice is
 * an error (which of its lines would count?). On error *ks is left empty. */
int  zmq_curve_keys_load(struct zmq_curve_keys *ks, const char *path,
                         char *err, size_t errlen);
/* The index of a 32-byte public key, or -1 if it is not listed. */
long zmq_curve_keys_find(const struct zmq_curve_keys *ks, const uint8_t *key);
void zmq_curve_keys_release(struct zmq_curve_keys *ks);

#endif
