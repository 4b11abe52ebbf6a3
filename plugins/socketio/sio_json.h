#ifndef TREMOLO_SIO_JSON_H
#define TREMOLO_SIO_JSON_H

/*
 * A strict JSON (RFC 8259) scanner that finds values without building
 * them. Tremolo forwards the arguments of socket.io events between
 * browsers and nodes without interpreting them: it needs to validate a
 * packet's JSON, find the spans of a few members (an event's name, a
 * node message's "nsp", "id", "args") and splice them into new text. A
 * DOM library (Debian's jansson, json-c) would allocate a tree per
 * message and re-serialise every argument, changing how numbers are
 * spelled (jansson refuses integers past int64 that JavaScript's
 * JSON.stringify writes), so the bytes a browser sent would not be the
 * bytes the node gets. The scanner copies nothing and bounds nesting.
 */
#include <stddef.h>
#include <stdint.h>

#include "mk_core/mk_buf.h"
#include "mk_core/mk_string.h"

#define SIO_JSON_DEPTH_MAX 32

enum sio_json_kind {
    SIO_JSON_INVALID = 0,
    SIO_JSON_OBJECT,
    SIO_JSON_ARRAY,
    SIO_JSON_STRING,
    SIO_JSON_NUMBER,
    SIO_JSON_TRUE,
    SIO_JSON_FALSE,
    SIO_JSON_NULL,
};

/* The length of the one JSON value that starts at p[0] (no leading
 * whitespace), or -1 when it is not a valid value within len bytes
 * (strings must be valid UTF-8; nesting at most SIO_JSON_DEPTH_MAX). */
long sio_json_value_len(const char *p, size_t len);
/* Whether the whole text is exactly one valid value (whitespace around
 * it allowed); its kind, or SIO_JSON_INVALID. */
enum sio_json_kind sio_json_check(const char *p, size_t len);
/* The kind of a value already known to be valid, from its first byte. */
enum sio_json_kind sio_json_kind(const char *p);

/* Walks the elements of a valid array, or the members of a valid object:
 * init with the whole value (brackets included); each call gives the
 * next element (its exact span, no whitespace) and returns 1, 0 at the
 * end. For objects, key is the member name's span with its quotes. */
struct sio_json_iter {
    const char *p;
    size_t len;
    size_t pos;
};
void sio_json_iter_init(struct sio_json_iter *it, struct mk_ptr value);
int  sio_json_array_next(struct sio_json_iter *it, struct mk_ptr *elem);
int  sio_json_object_next(struct sio_json_iter *it, struct mk_ptr *key,
                          struct mk_ptr *value);
/* The member of a valid object whose (decoded) name is `name`, or
 * {NULL, 0}. */
struct mk_ptr sio_json_member(struct mk_ptr object, const char *name);

/* Decodes a valid JSON string (span with its quotes) into out (no NUL
 * added); the decoded length, or -1 when it does not fit. */
long sio_json_string_decode(struct mk_ptr str, char *out, size_t outlen);
/* Whether the valid JSON string `str` decodes to exactly s[0..len). */
int  sio_json_string_equals(struct mk_ptr str, const char *s, size_t len);
/* Appends s[0..len) as a JSON string (quotes, escapes); 0 or -1. */
int  sio_json_append_string(struct mk_buf *b, const char *s, size_t len);
/* A valid JSON number that is a non-negative integer below 2^53, in *out;
 * 0, or -1 for anything else. */
int  sio_json_uint(struct mk_ptr num, uint64_t *out);

#endif
