/* Unit tests: the TLS layer's wire (staged flights, read-ahead, spill)
 * over socketpairs, one of them with a send buffer too small for a
 * flight. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mk_test.h"
#include "plugins/tls/tls_wire.c"

static void pair(int sv[2], int sndbuf)
{
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    if (sndbuf) {
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    }
}

/* Everything the peer can read now, appended to out at *len. */
static void drain(int fd, unsigned char *out, size_t *len, size_t cap)
{
    ssize_t n;

    while (*len < cap && (n = read(fd, out + *len, cap - *len)) > 0) {
        *len += (size_t) n;
    }
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char) (seed + i * 7 + (i >> 8));
    }
}

MK_TEST(staged_flight_leaves_in_one_piece)
{
    int sv[2];
    struct tls_wire w = { 0 };
    unsigned char a[300], b[6], c[40], got[400];
    size_t len = 0;

    pair(sv, 0);
    tls_wire_reset(&w, sv[0]);
    fill(a, sizeof(a), 1);
    fill(b, sizeof(b), 2);
    fill(c, sizeof(c), 3);
    tls_wire_stage_begin(&w);
    CHECK_EQ_INT(tls_wire_send(&w, a, sizeof(a)), sizeof(a));
    CHECK_EQ_INT(tls_wire_send(&w, b, sizeof(b)), sizeof(b));
    CHECK_EQ_INT(tls_wire_send(&w, c, sizeof(c)), sizeof(c));
    drain(sv[1], got, &len, sizeof(got));
    CHECK_EQ_INT(len, 0);                  /* nothing left before the end */
    CHECK_EQ_INT(tls_wire_stage_end(&w), 0);
    CHECK(!tls_wire_waits(&w));
    drain(sv[1], got, &len, sizeof(got));
    CHECK_EQ_INT(len, sizeof(a) + sizeof(b) + sizeof(c));
    CHECK(memcmp(got, a, sizeof(a)) == 0);
    CHECK(memcmp(got + sizeof(a), b, sizeof(b)) == 0);
    CHECK(memcmp(got + sizeof(a) + sizeof(b), c, sizeof(c)) == 0);
    /* not staging: straight through */
    CHECK_EQ_INT(tls_wire_send(&w, b, sizeof(b)), sizeof(b));
    len = 0;
    drain(sv[1], got, &len, sizeof(got));
    CHECK_EQ_INT(len, sizeof(b));
    tls_wire_reset(&w, -1);
    close(sv[0]);
    close(sv[1]);
}

MK_TEST(stage_overflow_sends_in_order)
{
    int sv[2];
    struct tls_wire w = { 0 };
    static unsigned char a[12000], b[12000], got[30000];
    size_t len = 0;

    pair(sv, 0);
    tls_wire_reset(&w, sv[0]);
    fill(a, sizeof(a), 4);
    fill(b, sizeof(b), 5);
    tls_wire_stage_begin(&w);
    CHECK_EQ_INT(tls_wire_send(&w, a, sizeof(a)), sizeof(a));
    CHECK_EQ_INT(tls_wire_send(&w, b, sizeof(b)), sizeof(b)); /* a goes */
    CHECK_EQ_INT(tls_wire_stage_end(&w), 0);
    drain(sv[1], got, &len, sizeof(got));
    CHECK_EQ_INT(len, sizeof(a) + sizeof(b));
    CHECK(memcmp(got, a, sizeof(a)) == 0);
    CHECK(memcmp(got + sizeof(a), b, sizeof(b)) == 0);
    tls_wire_reset(&w, -1);
    close(sv[0]);
    close(sv[1]);
}

MK_TEST(refused_flight_is_kept_and_sent_first)
{
    int sv[2], ret, rounds = 0;
    struct tls_wire w = { 0 };
    static unsigned char flight[18000], tail[10], got[20000];
    size_t len = 0;

    pair(sv, 4096);                        /* far less than the flight */
    tls_wire_reset(&w, sv[0]);
    fill(flight, sizeof(flight), 6);
    memcpy(tail, "after-it!!", sizeof(tail));
    tls_wire_stage_begin(&w);
    CHECK_EQ_INT(tls_wire_send(&w, flight, 9000), 9000);
    CHECK_EQ_INT(tls_wire_send(&w, flight + 9000, 9000), 9000);
    CHECK_EQ_INT(tls_wire_stage_end(&w), 0);
    CHECK(tls_wire_waits(&w));             /* the socket took only part */
    CHECK(w.spill_len > 0 && w.spill_len < sizeof(flight));
    /* later records wait behind it */
    CHECK_EQ_INT(tls_wire_send(&w, tail, sizeof(tail)),
                 MBEDTLS_ERR_SSL_WANT_WRITE);
    while ((ret = tls_wire_spill_flush(&w)) != 0 && rounds++ < 1000) {
        CHECK_EQ_INT(ret, MBEDTLS_ERR_SSL_WANT_WRITE);
        drain(sv[1], got, &len, sizeof(got));
    }
    CHECK_EQ_INT(ret, 0);
    CHECK(!tls_wire_waits(&w));
    CHECK_EQ_INT(tls_wire_send(&w, tail, sizeof(tail)), sizeof(tail));
    drain(sv[1], got, &len, sizeof(got));
    CHECK_EQ_INT(len, sizeof(flight) + sizeof(tail));
    CHECK(memcmp(got, flight, sizeof(flight)) == 0);
    CHECK(memcmp(got + sizeof(flight), tail, sizeof(tail)) == 0);
    tls_wire_reset(&w, -1);
    close(sv[0]);
    close(sv[1]);
}

MK_TEST(read_ahead_is_kept_across_turns)
{
    int a[2], b[2];
    struct tls_wire w1 = { 0 }, w2 = { 0 };
    unsigned char buf[64];

    pair(a, 0);
    pair(b, 0);
    tls_wire_reset(&w1, a[0]);
    tls_wire_reset(&w2, b[0]);
    CHECK(write(a[1], "HDR01body-one|HDR02xyz", 22) == 22);
    CHECK(write(b[1], "other", 5) == 5);

    CHECK_EQ_INT(tls_wire_recv(&w1, buf, 5), 5);     /* one recv for all */
    CHECK_EQ_MEM(buf, 5, "HDR01");
    CHECK_EQ_INT(tls_wire_recv(&w1, buf, 9), 9);
    CHECK_EQ_MEM(buf, 9, "body-one|");
    CHECK_EQ_INT(tls_wire_turn_end(&w1), 0);         /* 8 bytes move */
    CHECK_EQ_INT(w1.ahead_len, 8);

    /* another connection's turn reuses the worker's buffer */
    CHECK_EQ_INT(tls_wire_recv(&w2, buf, sizeof(buf)), 5);
    CHECK_EQ_MEM(buf, 5, "other");
    CHECK_EQ_INT(tls_wire_recv(&w2, buf, sizeof(buf)),
                 MBEDTLS_ERR_SSL_WANT_READ);
    CHECK_EQ_INT(tls_wire_turn_end(&w2), 0);
    CHECK(w2.ahead == NULL);

    CHECK_EQ_INT(tls_wire_recv(&w1, buf, 5), 5);
    CHECK_EQ_MEM(buf, 5, "HDR02");
    CHECK_EQ_INT(tls_wire_recv(&w1, buf, sizeof(buf)), 3);  /* no more */
    CHECK_EQ_MEM(buf, 3, "xyz");
    CHECK(w1.ahead == NULL);
    CHECK_EQ_INT(tls_wire_recv(&w1, buf, sizeof(buf)),
                 MBEDTLS_ERR_SSL_WANT_READ);
    shutdown(a[1], SHUT_WR);
    CHECK_EQ_INT(tls_wire_recv(&w1, buf, sizeof(buf)), 0);  /* EOF */
    CHECK_EQ_INT(tls_wire_turn_end(&w1), 0);
    tls_wire_reset(&w1, -1);
    tls_wire_reset(&w2, -1);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
}

MK_TEST(a_record_larger_than_one_read)
{
    int sv[2];
    struct tls_wire w = { 0 };
    static unsigned char rec[40000], got[40000];
    size_t len = 0;
    int n, tries = 0;

    pair(sv, 0);
    tls_wire_reset(&w, sv[0]);
    fill(rec, sizeof(rec), 9);
    CHECK(write(sv[1], rec, sizeof(rec)) == (ssize_t) sizeof(rec));
    while (len < sizeof(rec) && tries++ < 100) {
        n = tls_wire_recv(&w, got + len, sizeof(got) - len);
        if (n <= 0) {
            break;
        }
        len += (size_t) n;
        CHECK(n <= TLS_WIRE_BUF);
    }
    CHECK_EQ_INT(len, sizeof(rec));
    CHECK(memcmp(got, rec, sizeof(rec)) == 0);
    CHECK_EQ_INT(tls_wire_turn_end(&w), 0);
    tls_wire_reset(&w, -1);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    RUN(staged_flight_leaves_in_one_piece);
    RUN(stage_overflow_sends_in_order);
    RUN(refused_flight_is_kept_and_sent_first);
    RUN(read_ahead_is_kept_across_turns);
    RUN(a_record_larger_than_one_read);
    return mk_test_done();
}
