#ifndef TREMOLO_SIO_PACKET_H
#define TREMOLO_SIO_PACKET_H

/*
 * Socket.IO v5 packets (https://socket.io/docs/v4/socket-io-protocol/)
 * and their node-side form (spec 7.8): a client packet is checked and
 * turned into the JSON body a node gets; a node's JSON body is turned
 * into the packet (and binary attachments) its client gets.
 *
 *   <type>[<attachments>-][<nsp>,][<id>][<JSON payload>]
 *
 * Binary attachments travel inside node JSON as {"_binary":"<base64>"},
 * in place of the packet's {"_placeholder":true,"num":N}.
 */
#include <stddef.h>
#include <stdint.h>

#include "mk_core/mk_buf.h"
#include "mk_core/mk_string.h"

enum sio_type {
    SIO_CONNECT = 0,
    SIO_DISCONNECT = 1,
    SIO_EVENT = 2,
    SIO_ACK = 3,
    SIO_CONNECT_ERROR = 4,
    SIO_BINARY_EVENT = 5,
    SIO_BINARY_ACK = 6,
};

#define SIO_NSP_MAX          256        /* bytes of a namespace name */
#define SIO_ATTACHMENTS_MAX  10         /* per packet: socket.io-client 4
                                         * refuses more (maxAttachments) */

/* A decoded client packet; spans borrow the packet text. */
struct sio_packet {
    enum sio_type type;
    unsigned attachments;               /* BINARY_*: how many follow */
    struct mk_ptr nsp;                  /* "/" when the packet names none */
    int has_id;
    uint64_t id;                        /* < 2^53 */
    struct mk_ptr data;                 /* the JSON payload, may be empty */
};

/* Checks and splits a client packet as the socket.io server does: type
 * 0-6 (CONNECT_ERROR is the server's only: refused), attachments only on
 * BINARY_* (1..SIO_ATTACHMENTS_MAX), nsp starting with "/" and at most
 * SIO_NSP_MAX bytes, an id of decimal digits below 2^53, a payload that
 * is valid JSON of the kind the type allows (CONNECT: an object or none;
 * DISCONNECT: none; EVENT: a non-empty array whose first element is a
 * string that is not a reserved event name, or a number; ACK: an array).
 * 0, or -1 for a malformed packet. */
int sio_packet_decode(const char *p, size_t len, struct sio_packet *out);

/* ---- Client packet -> node body (spec 7.8; default keys omitted) ---- */

/* EVENT / BINARY_EVENT: {"name":..,"args":[..],"nsp":"/x","id":7};
 * ACK / BINARY_ACK: {"id":7,"args":[..],"nsp":"/x"}. att[0..natt) are
 * the packet's attachments, put in place of its placeholders as
 * {"_binary":"<base64>"}; a placeholder whose num is not below natt, or
 * natt != pk->attachments, fails. 0 or -1. */
int sio_node_body(struct mk_buf *out, const struct sio_packet *pk,
                  const struct mk_ptr *att, size_t natt);
/* CONNECT: {"nsp":"/x","auth":{..}} (auth only when the packet had one). */
int sio_node_connect(struct mk_buf *out, struct mk_ptr nsp,
                     struct mk_ptr auth);
/* {"nsp":"/x"}, or {} for "/". */
int sio_node_nsp(struct mk_buf *out, struct mk_ptr nsp);

/* ---- Node body -> client packet ---- */

/* A node's JSON object (socket.io/event, /ack, /connect,
 * /connect_error, /end), members found: spans borrow the body. */
struct sio_node_msg {
    char nsp[SIO_NSP_MAX];              /* decoded, NUL-terminated; "/" */
    size_t nsp_len;
    struct mk_ptr name;                 /* the JSON string or number, raw */
    struct mk_ptr args;                 /* raw JSON value, or {NULL,0} */
    int has_id;
    uint64_t id;
    struct mk_ptr data;                 /* raw JSON value, or {NULL,0} */
    struct mk_ptr message;              /* raw JSON string, or {NULL,0} */
};
/* 0, or -1: not a JSON object, a member of the wrong kind (nsp not a
 * string starting with "/", id not an integer below 2^53, name not a
 * string or number). An empty body is an object with no members. */
int sio_node_parse(const char *body, size_t len, struct sio_node_msg *m);

/* An outgoing packet: its text, then its binary attachments, each one
 * WebSocket binary frame (or "b"-prefixed polling packet). */
struct sio_out {
    struct mk_buf text;
    struct mk_buf bin;                  /* the attachments, back to back */
    size_t att_len[SIO_ATTACHMENTS_MAX];
    unsigned natt;
};
void sio_out_init(struct sio_out *o);
void sio_out_reset(struct sio_out *o);  /* empty, keeps the memory */
void sio_out_release(struct sio_out *o);

/* EVENT (BINARY_EVENT when args hold {"_binary":..} objects) for an
 * event from a node: name, then args (an array's elements; any other
 * value is one argument; none when absent), ack id if it has one. */
int sio_encode_event(struct sio_out *o, const struct sio_node_msg *m);
/* ACK (BINARY_ACK) for a node's acknowledgement (it must have an id). */
int sio_encode_ack(struct sio_out *o, const struct sio_node_msg *m);
/* BlastBeat's socket.io/msg (text: one string argument) and
 * socket.io/json (a JSON value: one argument, checked), as event
 * "message" on namespace "/". */
int sio_encode_message(struct sio_out *o, const char *body, size_t len,
                       int is_json);
/* CONNECT answer {"sid":"<sid>"} plus the members of data when it is an
 * object; CONNECT_ERROR {"message":..,"data":..}; DISCONNECT. */
int sio_encode_connect(struct sio_out *o, const char *nsp, size_t nsp_len,
                       const char *sid, struct mk_ptr data);
int sio_encode_connect_error(struct sio_out *o, const char *nsp,
                             size_t nsp_len, struct mk_ptr message,
                             struct mk_ptr data);
int sio_encode_disconnect(struct sio_out *o, const char *nsp,
                          size_t nsp_len);

#endif
