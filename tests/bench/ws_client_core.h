/*
 * ws_client_core.h -- the WebSocket client part shared by the C load tools
 * tests/bench/ws_client.c (websocket.sh) and tests/bench/sio_client.c
 * (socketio.sh): one thread, epoll, non-blocking sockets, libc only.
 * Build a tool with its own file and ws_client_core.c:
 *
 *     cc -O2 -o ws_client tests/bench/ws_client.c tests/bench/ws_client_core.c
 *
 * The core opens nconns connections to addr (at most INFLIGHT in their
 * opening handshake at once so no accept queue overflows), sends the
 * upgrade request for `path` with RFC 6455 1.3's sample key and checks the
 * 101 and its Sec-WebSocket-Accept. Client frames are masked (RFC 6455 5.3)
 * with a fresh key each; server frames may arrive in pieces or several per
 * read, a fragmented message is reassembled, a server ping gets its pong.
 * What the messages mean is the tool's business: it defines the hooks
 * below. Lines on stdin (once the tool adds fd 0 to epfd with STDIN_TAG)
 * are counted in stdin_lines; EOF there sets stop.
 */
#ifndef TREMOLO_BENCH_WS_CLIENT_CORE_H
#define TREMOLO_BENCH_WS_CLIENT_CORE_H

#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define INFLIGHT      256
#define OPEN_TIMEOUT  60000          /* ms for all connections to be ready */
#define ROUND_TIMEOUT 10000          /* ms for a broadcast to reach all */
#define MAX_MSG       (1 << 20)
#define STDIN_TAG     UINT32_MAX

/* The core's states; a tool numbers its own from ST_CLIENT on, between
 * the upgrade (on_upgraded) and ST_READY, which it sets itself. */
enum { ST_FREE, ST_CONNECT, ST_HANDSHAKE, ST_READY, ST_DEAD, ST_CLIENT };

struct buf {
    char *p;
    size_t len, cap;
};

struct conn {
    int fd;
    uint8_t state;
    uint8_t want_out;                /* EPOLLOUT registered */
    uint8_t waiting;                 /* tool: a reply is outstanding */
    uint8_t got_round;               /* tool: this broadcast round arrived */
    uint32_t seq;                    /* tool: a per-connection counter */
    uint64_t sent_ns;                /* tool: when the awaited send left */
    struct buf in;                   /* bytes read, not yet parsed */
    struct buf out;                  /* bytes a write() did not take */
    struct buf msg;                  /* a fragmented message so far */
    char *expect;                    /* tool: what the reply must hold (owned) */
    size_t expect_len;
};

/* Latency samples in ns. */
struct lat {
    uint64_t *v;
    size_t n, cap;
};

/* Set by the tool before client_init(). */
extern const char *host, *path;
extern uint32_t nconns;
/* Kept by the core. */
extern int epfd;
extern struct conn *conns;
extern uint32_t nstarted, nready, ninflight;
extern volatile sig_atomic_t stop;
extern uint64_t stdin_lines;
/* Broadcast rounds: while round_open no new connections are started;
 * round_done() is true once round_got reaches nready. */
extern int round_open;
extern uint32_t round_got;

/* A closed-loop echo run: between t_start (0: no run) and t_end (ns),
 * reply_arrived() counts replies and their latency from c->sent_ns. */
extern uint64_t t_start, t_end, completed;
extern struct lat lat;

/* Hooks the tool defines. */
extern const char client_name[];     /* prefix of messages on stderr */
/* The 101 was right: set the tool's next state, maybe send something. */
void on_upgraded(struct conn *c);
/* One complete text or binary message read at t (ns). */
void on_message(struct conn *c, const char *m, size_t len, uint64_t t);
/* c fails (c->state still the one it failed in): count the error. */
void on_fail(struct conn *c);

uint64_t now_ns(void);               /* CLOCK_MONOTONIC */
void *xrealloc(void *p, size_t n);   /* exits on failure */
void lat_add(struct lat *l, uint64_t v);
int cmp_u64(const void *a, const void *b);      /* for qsort */
double pct_ms(const struct lat *l, double p);   /* of a sorted lat, in ms */
/* Close c and call on_fail; prints `why` for the first 5 failures. */
void conn_fail(struct conn *c, const char *why);
/* One masked frame (FIN set). */
void send_frame(struct conn *c, int opcode, const void *payload, size_t len);
/* The loop (and its top-up of connections) until deadline (ns, 0: none),
 * stop, or done() says so. */
void run(uint64_t deadline, int (*done)(void));
/* c's awaited reply (c->waiting) arrived at t: the first one makes c
 * ready; in a run, one by t_end counts, and send_next(c) sends the next
 * while t_end is not reached. */
void reply_arrived(struct conn *c, uint64_t t, void (*send_next)(struct conn *c));
int all_opened(void);
int round_done(void);
/* Open every connection: the loop until all_opened(), OPEN_TIMEOUT at
 * most. Returns how many are not ready (and says so on stderr). */
uint32_t open_all(void);
/* addr from host and port, the fd limit, signals, conns, epfd. Returns 0,
 * else the exit status (having said why). */
int client_init(long port);

#endif
