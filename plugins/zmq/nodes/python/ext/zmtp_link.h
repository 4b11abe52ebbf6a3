/* One endpoint of _tremolo.Node spoken natively: a non-blocking stream
 * socket to the gateway's ROUTER with ZMTP 3.0 (zmtp.c) in the calling
 * thread. No Python here; every call is made with the node's lock held. */
#ifndef TX_ZMTP_LINK_H
#define TX_ZMTP_LINK_H

#include <stdint.h>
#include <zmq.h>

#define TX_LINK_HWM        1000     /* queued messages, like ZMQ_SNDHWM */
#define TX_LINK_RETRY_NS   100000000LL   /* like ZMQ_RECONNECT_IVL */

struct tx_link;
struct tx_msg;

/* 0 and *out for a tcp:// or ipc:// endpoint; 1 when the endpoint is of
 * another form (the caller uses libzmq); -1 when out of memory. Connects
 * at the first tx_link_drive. The link's sockets join epoll set epfd;
 * *err_flag is set to 1 whenever tx_link_error has something to say. */
int  tx_link_create(struct tx_link **out, const char *endpoint,
                    const void *id, size_t idlen, int epfd, int *err_flag);
void tx_link_destroy(struct tx_link *l);
/* Make progress: a due (re)connect, the handshake, queued output. */
void tx_link_drive(struct tx_link *l, int64_t now);
#define TX_LINK_FORCE  1   /* a pong: never refused (dropped when the link
                            * is down and full) */
#define TX_LINK_BATCH  2   /* may wait in the buffer while input already
                            * read is pending: see tx_link_uncork */

/* Queue or write one [sid, type, body] message (flags TX_LINK_*).
 * 1 = taken, 0 = the queue is full (errno EAGAIN), -1 = out of memory. */
int  tx_link_send(struct tx_link *l, const void *sid, size_t sidlen,
                  const void *type, size_t typelen, const void *body,
                  size_t bodylen, int flags);
/* Write what TX_LINK_BATCH sends left in the buffer. */
void tx_link_uncork(struct tx_link *l);
/* One whole 3-frame message into m (1), or 0. *heard is set to now when
 * any whole message came, 3 frames or not. */
int  tx_link_recv(struct tx_link *l, struct tx_msg *m, int64_t *heard,
                  int64_t now);
/* Input already read and not yet parsed (epoll will not report it). */
int  tx_link_buffered(const struct tx_link *l);
/* Connecting or in the handshake. */
int  tx_link_starting(const struct tx_link *l);
/* Output not yet written (for close's linger). */
int  tx_link_unsent(const struct tx_link *l);
/* What a blocked sender waits for: *fd (-1: nothing, sleep) and *events
 * for poll, and the longest sensible wait in ms. */
void tx_link_wait(const struct tx_link *l, int64_t now, int *fd,
                  short *events, int *wait_ms);
/* Close the socket (output still queued is dropped). */
void tx_link_shutdown(struct tx_link *l);
/* The reason the last connection was dropped, once, or NULL; cleared by
 * the call. Only protocol faults are reported, and only the first since
 * the last whole message (a peer failing the same way on every reconnect
 * is reported once). */
const char *tx_link_error(struct tx_link *l);
const char *tx_link_endpoint(const struct tx_link *l);

#endif
