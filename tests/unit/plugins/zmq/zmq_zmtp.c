/* Unit tests: the node guard's ZMTP header reader (plugins/zmq/zmq_zmtp.c):
 * every framing libzmq 4.3 accepts, the three caps, and the same verdict
 * whatever way the stream is cut into reads. */
#include "mk_test.h"
#include "plugins/zmq/zmq_zmtp.c"

#define FRAME_MAX 1024
#define STREAM_MAX 4096

struct stream {
    uint8_t b[STREAM_MAX];
    size_t len;
};

static void put(struct stream *s, const void *p, size_t n)
{
    if (s->len + n <= sizeof(s->b)) {
        memcpy(s->b + s->len, p, n);
    }
    s->len += n;
}

static void put_byte(struct stream *s, uint8_t b)
{
    put(s, &b, 1);
}

static void put_be64(struct stream *s, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--) {
        put_byte(s, (uint8_t) (v >> (i * 8)));
    }
}

/* ZMTP 2.0/3.x frame header, then `body` bytes of filler. */
static void frame(struct stream *s, uint64_t size, int more, int command,
                  size_t body)
{
    uint8_t flags = (uint8_t) ((more ? 1 : 0) | (command ? 4 : 0));
    size_t i;

    if (size > 255) {
        put_byte(s, flags | 2);
        put_be64(s, size);
    }
    else {
        put_byte(s, flags);
        put_byte(s, (uint8_t) size);
    }
    for (i = 0; i < body; i++) {
        put_byte(s, 'x');
    }
}

static void frame_full(struct stream *s, size_t size, int more, int command)
{
    frame(s, size, more, command, size);
}

/* n frames of `size` bytes, each with MORE set: a message that goes on. */
static void parts_unended(struct stream *s, size_t size, int n)
{
    while (n-- > 0) {
        frame_full(s, size, 1, 0);
    }
}

/* ZMTP 1.0 frame: the length counts the flags byte. */
static void v1_frame(struct stream *s, size_t size, int more)
{
    size_t i;

    if (size + 1 < 255) {
        put_byte(s, (uint8_t) (size + 1));
    }
    else {
        put_byte(s, 0xff);
        put_be64(s, size + 1);
    }
    put_byte(s, more ? 1 : 0);
    for (i = 0; i < size; i++) {
        put_byte(s, 'y');
    }
}

static void greeting(struct stream *s, uint8_t revision)
{
    static const uint8_t sig[10] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f };
    size_t i;

    put(s, sig, sizeof(sig));
    put_byte(s, revision);
    if (revision <= 1) {
        put_byte(s, 5);                      /* socket type */
        return;
    }
    put_byte(s, 0);                          /* minor */
    put(s, "NULL", 4);
    for (i = 0; i < 16 + 1 + 31; i++) {
        put_byte(s, 0);
    }
}

static void ready(struct stream *s)
{
    frame_full(s, 40, 0, 1);
}

/* A node message of three frames. */
static void message(struct stream *s)
{
    frame_full(s, 16, 1, 0);
    frame_full(s, 4, 1, 0);
    frame_full(s, 300, 0, 0);
}

static enum zmq_zmtp_verdict run(const struct stream *s, size_t step,
                                 struct zmq_zmtp *z)
{
    size_t off;

    zmq_zmtp_init(z, FRAME_MAX, ZMQ_ZMTP_COMMAND_MAX, ZMQ_ZMTP_PARTS_MAX);
    for (off = 0; off < s->len; off += step) {
        size_t n = s->len - off < step ? s->len - off : step;
        zmq_zmtp_feed(z, s->b + off, n);
    }
    return z->verdict;
}

/* The verdict and the frame count do not depend on how reads cut the
 * stream: in one piece, byte by byte, and split at every offset. */
static enum zmq_zmtp_verdict verdict(const struct stream *s)
{
    struct zmq_zmtp whole, bytes, split;
    enum zmq_zmtp_verdict v = run(s, s->len ? s->len : 1, &whole);
    size_t cut;

    CHECK(s->len <= STREAM_MAX);
    CHECK_EQ_INT(run(s, 1, &bytes), v);
    CHECK_EQ_INT(bytes.frames, whole.frames);
    for (cut = 1; cut < s->len; cut++) {
        zmq_zmtp_init(&split, FRAME_MAX, ZMQ_ZMTP_COMMAND_MAX,
                      ZMQ_ZMTP_PARTS_MAX);
        zmq_zmtp_feed(&split, s->b, cut);
        zmq_zmtp_feed(&split, s->b + cut, s->len - cut);
        if (split.verdict != v || split.frames != whole.frames) {
            CHECK_EQ_INT(split.verdict, v);
            CHECK_EQ_INT(split.frames, whole.frames);
            break;
        }
    }
    return v;
}

MK_TEST(zmtp3_node)
{
    struct stream s = { .len = 0 };
    struct zmq_zmtp z;
    int i;

    greeting(&s, 3);
    ready(&s);
    for (i = 0; i < 5; i++) {
        message(&s);
    }
    frame_full(&s, 2 + 4 + 2, 0, 1);          /* PING between messages */
    message(&s);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_OK);
    run(&s, s.len, &z);
    CHECK_EQ_INT(z.frames, 1 + 18 + 1);
    CHECK_EQ_INT(z.state, ZMQ_ZMTP_V2_FLAGS);   /* at the next header */
    CHECK_EQ_INT(z.parts, 0);
}

MK_TEST(parts_cap)
{
    struct stream s = { .len = 0 };
    struct zmq_zmtp z;

    greeting(&s, 3);
    ready(&s);
    message(&s);
    frame_full(&s, 16, 1, 0);
    frame_full(&s, 4, 1, 0);
    frame_full(&s, 8, 1, 0);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_OK);   /* 3 frames, MORE still on */
    frame(&s, 1, 0, 0, 0);                    /* the 4th: refused at its header */
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_PARTS);
    /* sticky: more bytes change nothing */
    run(&s, s.len, &z);
    CHECK_EQ_INT(zmq_zmtp_feed(&z, (const uint8_t *) "\0\0", 2),
                 ZMQ_ZMTP_PARTS);
    CHECK_EQ_INT(z.state, ZMQ_ZMTP_FAILED);
}

MK_TEST(frame_cap_at_the_header)
{
    struct stream s = { .len = 0 };

    greeting(&s, 3);
    ready(&s);
    frame_full(&s, FRAME_MAX, 0, 0);          /* the largest legal frame */
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_OK);
    frame(&s, FRAME_MAX + 1, 0, 0, 0);        /* header only, no payload */
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_FRAME_SIZE);

    s.len = 0;
    greeting(&s, 3);
    ready(&s);
    frame(&s, UINT64_C(8) << 30, 0, 0, 0);    /* 8 GiB announced */
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_FRAME_SIZE);

    s.len = 0;
    greeting(&s, 3);
    frame(&s, UINT64_MAX, 1, 0, 0);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_FRAME_SIZE);
}

MK_TEST(command_cap)
{
    struct stream s = { .len = 0 };
    struct zmq_zmtp z;
    uint8_t head[9] = { 4 | 2, 0, 0, 0, 0, 0, 0, 0x20, 0x01 };  /* 8193 */

    greeting(&s, 3);
    frame(&s, ZMQ_ZMTP_COMMAND_MAX, 0, 1, 0);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_OK);
    zmq_zmtp_init(&z, UINT64_MAX, ZMQ_ZMTP_COMMAND_MAX, ZMQ_ZMTP_PARTS_MAX);
    s.len = 0;
    greeting(&s, 3);
    zmq_zmtp_feed(&z, s.b, s.len);
    CHECK_EQ_INT(zmq_zmtp_feed(&z, head, sizeof(head)), ZMQ_ZMTP_COMMAND_SIZE);
    /* the frame cap is not the command cap */
    s.len = 0;
    greeting(&s, 3);
    ready(&s);
    frame(&s, ZMQ_ZMTP_COMMAND_MAX + 1, 0, 1, 0);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_COMMAND_SIZE);
}

MK_TEST(commands_count_as_frames)
{
    struct stream s = { .len = 0 };

    greeting(&s, 3);
    frame_full(&s, 10, 1, 1);
    frame_full(&s, 10, 1, 1);
    frame_full(&s, 10, 1, 1);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_OK);
    frame_full(&s, 10, 0, 1);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_PARTS);
}

MK_TEST(empty_frames)
{
    struct stream s = { .len = 0 };
    struct zmq_zmtp z;
    int i;

    greeting(&s, 3);
    ready(&s);
    for (i = 0; i < 10; i++) {
        frame_full(&s, 0, 1, 0);
        frame_full(&s, 0, 1, 0);
        frame_full(&s, 0, 0, 0);
    }
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_OK);
    run(&s, s.len, &z);
    CHECK_EQ_INT(z.frames, 31);
    parts_unended(&s, 0, 4);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_PARTS);
}

/* libzmq 3.x: 12-byte greeting, ZMTP 2.0 framing, an identity message. */
MK_TEST(zmtp2_node)
{
    struct stream s = { .len = 0 };
    struct zmq_zmtp z;

    greeting(&s, 1);
    frame_full(&s, 5, 0, 0);                  /* identity */
    message(&s);
    message(&s);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_OK);
    run(&s, s.len, &z);
    CHECK_EQ_INT(z.v1, 0);
    CHECK_EQ_INT(z.frames, 7);
    parts_unended(&s, 1, 4);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_PARTS);
}

/* A versioned ZMTP 1.0 greeting (revision 0) then ZMTP 1.0 framing. */
MK_TEST(zmtp1_versioned)
{
    struct stream s = { .len = 0 };
    struct zmq_zmtp z;

    greeting(&s, 0);
    v1_frame(&s, 5, 0);
    v1_frame(&s, 16, 1);
    v1_frame(&s, 4, 1);
    v1_frame(&s, 400, 0);                     /* a long length */
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_OK);
    run(&s, s.len, &z);
    CHECK_EQ_INT(z.v1, 1);
    CHECK_EQ_INT(z.frames, 4);
    v1_frame(&s, FRAME_MAX + 1, 0);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_FRAME_SIZE);
}

/* libzmq 2.x: no greeting at all, recognised by the first byte. */
MK_TEST(zmtp1_unversioned)
{
    struct stream s = { .len = 0 };
    struct zmq_zmtp z;
    int i;

    v1_frame(&s, 5, 0);                       /* identity, short length */
    for (i = 0; i < 3; i++) {
        v1_frame(&s, 16, 1);
        v1_frame(&s, 4, 1);
        v1_frame(&s, 0, 0);
    }
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_OK);
    run(&s, s.len, &z);
    CHECK_EQ_INT(z.v1, 1);
    CHECK_EQ_INT(z.frames, 10);
    v1_frame(&s, 1, 1);
    v1_frame(&s, 1, 1);
    v1_frame(&s, 1, 1);
    v1_frame(&s, 1, 1);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_PARTS);

    /* a long first frame: 0xff, the length, flags with bit 0 clear */
    s.len = 0;
    v1_frame(&s, 300, 0);
    v1_frame(&s, 3, 0);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_OK);
    run(&s, s.len, &z);
    CHECK_EQ_INT(z.v1, 1);
    CHECK_EQ_INT(z.frames, 2);
    s.len = 0;
    v1_frame(&s, FRAME_MAX + 1, 0);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_FRAME_SIZE);
}

MK_TEST(zmtp1_zero_length)
{
    struct stream s = { .len = 0 };

    put_byte(&s, 0);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_MALFORMED);
    s.len = 0;
    v1_frame(&s, 5, 0);
    put_byte(&s, 0xff);
    put_be64(&s, 0);
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_MALFORMED);
    s.len = 0;
    put_byte(&s, 0xff);
    put_be64(&s, 0);
    put_byte(&s, 0);                          /* unversioned, long, 0 */
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_MALFORMED);
}

/* Revisions libzmq reads as ZMTP 3.x (2, 4 and up) have 64-byte
 * greetings; a partial greeting is no verdict yet. */
MK_TEST(greetings)
{
    struct stream s = { .len = 0 };
    struct zmq_zmtp z;
    uint8_t rev;

    for (rev = 2; rev < 8; rev++) {
        s.len = 0;
        greeting(&s, 3);
        s.b[10] = rev;
        ready(&s);
        message(&s);
        CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_OK);
        run(&s, s.len, &z);
        CHECK_EQ_INT(z.frames, 4);
    }
    s.len = 0;
    greeting(&s, 3);
    s.len = 30;
    CHECK_EQ_INT(verdict(&s), ZMQ_ZMTP_OK);
    run(&s, s.len, &z);
    CHECK_EQ_INT(z.state, ZMQ_ZMTP_SKIP);
    CHECK_EQ_INT(z.frames, 0);
}

/* A ZMTP 3.x property: name length, name, 4-byte value length, value. */
static size_t property(uint8_t *b, const char *name, const char *value,
                       size_t vlen)
{
    size_t nl = strlen(name);

    b[0] = (uint8_t) nl;
    memcpy(b + 1, name, nl);
    b[1 + nl] = (uint8_t) (vlen >> 24);
    b[2 + nl] = (uint8_t) (vlen >> 16);
    b[3 + nl] = (uint8_t) (vlen >> 8);
    b[4 + nl] = (uint8_t) vlen;
    memcpy(b + 5 + nl, value, vlen);
    return 5 + nl + vlen;
}

/* A READY command frame with Socket-Type DEALER, `pad` bytes of an
 * X-Pad property first when pad > 0, then Identity (when id != NULL). */
static void ready_id(struct stream *s, const char *idname, const char *id,
                     size_t pad)
{
    static char filler[1024];
    uint8_t b[2048];
    size_t n = 0;

    memset(filler, 'p', sizeof(filler));
    b[n++] = 5;
    memcpy(b + n, "READY", 5);
    n += 5;
    n += property(b + n, "Socket-Type", "DEALER", 6);
    if (pad) {
        n += property(b + n, "X-Pad", filler, pad);
    }
    if (id) {
        n += property(b + n, idname, id, strlen(id));
    }
    frame(s, n, 0, 1, 0);
    put(s, b, n);
}

/* The identity read from `s`, the same however reads cut the stream;
 * `want` NULL: none (anonymous or not found). */
static void check_identity(const struct stream *s, const char *want)
{
    struct zmq_zmtp z;
    const uint8_t *id;
    size_t len, step;

    for (step = 1; step <= s->len; step += step < 8 ? 1 : 61) {
        CHECK_EQ_INT(run(s, step, &z), ZMQ_ZMTP_OK);
        id = zmq_zmtp_identity(&z, &len);
        if (!want) {
            CHECK_EQ_INT(z.id_state, ZMQ_ZMTP_ID_NONE);
            CHECK(id == NULL);
            continue;
        }
        CHECK_EQ_INT(z.id_state, ZMQ_ZMTP_ID_KNOWN);
        CHECK(id != NULL);
        if (id) {
            CHECK_EQ_MEM(id, len, want);
        }
    }
}

/* ZMTP 3.x: the Identity property of READY, whatever precedes it in the
 * kept head; empty, absent or past the head is none. */
MK_TEST(identity_zmtp3)
{
    struct stream s = { .len = 0 };
    struct zmq_zmtp z;
    char big[256];

    greeting(&s, 3);
    ready_id(&s, "Identity", "node-1", 0);
    message(&s);
    check_identity(&s, "node-1");

    s.len = 0;
    greeting(&s, 3);
    ready_id(&s, "identity", "node-2", 100);     /* names ignore case */
    check_identity(&s, "node-2");

    memset(big, 'i', 255);
    big[255] = '\0';
    s.len = 0;
    greeting(&s, 3);
    ready_id(&s, "Identity", big, 0);             /* the longest */
    check_identity(&s, big);

    s.len = 0;
    greeting(&s, 3);
    ready_id(&s, "Identity", "", 0);              /* anonymous */
    message(&s);
    check_identity(&s, NULL);

    s.len = 0;
    greeting(&s, 3);
    ready_id(&s, "Identity", NULL, 0);            /* no Identity at all */
    check_identity(&s, NULL);

    s.len = 0;
    greeting(&s, 3);
    ready_id(&s, "Identity", "far", 600);         /* past the kept head */
    check_identity(&s, NULL);

    s.len = 0;
    greeting(&s, 3);
    ready(&s);                                    /* not a READY */
    message(&s);
    check_identity(&s, NULL);

    /* pending until the first frame is whole */
    s.len = 0;
    greeting(&s, 3);
    ready_id(&s, "Identity", "node-1", 0);
    s.len -= 1;
    run(&s, s.len, &z);
    CHECK_EQ_INT(z.id_state, ZMQ_ZMTP_ID_PENDING);
}

/* ZMTP 2.0 and 1.0: the first frame is the identity. */
MK_TEST(identity_zmtp2_zmtp1)
{
    struct stream s = { .len = 0 };
    uint8_t one[] = { 4, 0, 'n', 'o', 'd' };

    greeting(&s, 1);
    put_byte(&s, 0);
    put_byte(&s, 6);
    put(&s, "node-9", 6);
    message(&s);
    check_identity(&s, "node-9");

    s.len = 0;
    greeting(&s, 1);
    frame_full(&s, 0, 0, 0);                      /* anonymous */
    message(&s);
    check_identity(&s, NULL);

    s.len = 0;
    greeting(&s, 0);
    put(&s, one, sizeof(one));
    check_identity(&s, "nod");

    s.len = 0;
    put(&s, one, sizeof(one));                    /* unversioned */
    v1_frame(&s, 16, 0);
    check_identity(&s, "nod");
}

MK_TEST(names)
{
    CHECK_EQ_STR(zmq_zmtp_verdict_name(ZMQ_ZMTP_PARTS),
                 "a message of more than 3 frames");
    CHECK_EQ_STR(zmq_zmtp_verdict_name(ZMQ_ZMTP_FRAME_SIZE),
                 "a frame larger than MaxFrameSize");
    CHECK_EQ_STR(zmq_zmtp_verdict_name((enum zmq_zmtp_verdict) 99),
                 "unknown");
}

int main(void)
{
    RUN(zmtp3_node);
    RUN(parts_cap);
    RUN(frame_cap_at_the_header);
    RUN(command_cap);
    RUN(commands_count_as_frames);
    RUN(empty_frames);
    RUN(zmtp2_node);
    RUN(zmtp1_versioned);
    RUN(zmtp1_unversioned);
    RUN(zmtp1_zero_length);
    RUN(greetings);
    RUN(identity_zmtp3);
    RUN(identity_zmtp2_zmtp1);
    RUN(names);
    return mk_test_done();
}
