#ifndef TREMOLO_TLS_WIRE_H
#define TREMOLO_TLS_WIRE_H

/*
 * A TLS connection's bytes on the wire, for mbedTLS's bio callbacks.
 *
 * mbedTLS hands the bio one record at a time and asks for a record's 5-byte
 * header and its body separately: sent and read that way, a resumed
 * handshake cost 5 sends and 9 reads, and the server's first flight
 * (ServerHello, ChangeCipherSpec, Finished) left in three segments. Here a
 * handshake step's records are staged and sent in one call, and reads take
 * what the socket has and hand it out as asked.
 *
 * A worker serves one connection at a time, so it has one buffer each
 * way; what is left in them when a connection's turn ends moves to the
 * connection (rare: a flight the socket would not take, bytes read past
 * the record mbedTLS stopped at).
 */
#include <stddef.h>
#include <stdint.h>

struct tls_wire {
    int fd;
    int staging;                       /* sends go to the worker's stage */
    unsigned char *spill;              /* staged bytes the socket refused */
    uint32_t spill_len, spill_off;
    unsigned char *ahead;              /* read bytes not asked for yet */
    uint32_t ahead_len, ahead_off;
};

/* mbedTLS's f_send and f_recv; ctx is the struct tls_wire. They return
 * a byte count, 0 (recv: end of stream) or an MBEDTLS_ERR_ code. */
int tls_wire_send(void *ctx, const unsigned char *buf, size_t len);
int tls_wire_recv(void *ctx, unsigned char *buf, size_t len);

/* Staging: between begin and end, sends are gathered; end sends them in
 * one call and keeps what the socket does not take. 0 or MBEDTLS_ERR_. */
void tls_wire_stage_begin(struct tls_wire *w);
int tls_wire_stage_end(struct tls_wire *w);

/* Sends what the socket refused earlier: 0 once nothing waits, else
 * MBEDTLS_ERR_SSL_WANT_WRITE or another MBEDTLS_ERR_ code. */
int tls_wire_spill_flush(struct tls_wire *w);

static inline int tls_wire_waits(const struct tls_wire *w)
{
    return w->spill != NULL;
}

/* The connection's turn ends: bytes read ahead move to it. 0, or -1 when
 * there is no memory for them (they are dropped: close the connection). */
int tls_wire_turn_end(struct tls_wire *w);

/* Frees what the connection holds and forgets the descriptor. */
void tls_wire_reset(struct tls_wire *w, int fd);

#endif
