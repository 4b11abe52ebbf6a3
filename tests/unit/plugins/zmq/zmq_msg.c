/* Unit tests: node message checks (spec 1.3), the routing prefix split at
 * the last colon (spec 3, not BlastBeat's off-by-one), the type table
 * (spec 2.3) and the `headers` response head parser. */
#include "mk_test.h"
#include "plugins/zmq/zmq_msg.c"

#define S(lit) lit, sizeof(lit) - 1

/* ---- routes ------------------------------------------------------------ */

static const struct {
    const char *in;
    size_t len;
    int ret;
    enum zmq_route_kind kind;
    const char *name;       /* expected route bytes (len from name_len) */
    size_t name_len;
    const char *type;
} route_cases[] = {
    { S("websocket"), 0, ZMQ_ROUTE_NONE, "", 0, "websocket" },
    { S(""), 0, ZMQ_ROUTE_NONE, "", 0, "" },
    { S("g1:websocket"), 0, ZMQ_ROUTE_GROUP, "g1", 2, "websocket" },
    { S("room:msg"), 0, ZMQ_ROUTE_GROUP, "room", 4, "msg" },
    /* the split is at the LAST colon: the group name may hold ':' */
    { S("a:b:chunk"), 0, ZMQ_ROUTE_GROUP, "a:b", 3, "chunk" },
    { S("g1::msg"), 0, ZMQ_ROUTE_GROUP, "g1:", 3, "msg" },
    /* BlastBeat's bug read this as group "g1:" + type "websocket" */
    { S("g1:Xwebsocket"), 0, ZMQ_ROUTE_GROUP, "g1", 2, "Xwebsocket" },
    { S("@0123456789abcdef:msg"), 0, ZMQ_ROUTE_SID, "0123456789abcdef", 16,
      "msg" },
    /* sids are raw bytes: ':' and NUL inside, ':' as the last byte */
    { S("@01:3456789abcde:msg"), -1, 0, "", 0, "" },   /* 15 bytes: bad */
    { S("@01:3456789abcdef:msg"), 0, ZMQ_ROUTE_SID, "01:3456789abcdef", 16,
      "msg" },
    { S("@" "::::::::::::::::" ":msg"), 0, ZMQ_ROUTE_SID, "::::::::::::::::",
      16, "msg" },
    { S("@0123456789abcde::websocket"), 0, ZMQ_ROUTE_SID,
      "0123456789abcde:", 16, "websocket" },
    { S("@0123\0" "56789abcdef:msg"), 0, ZMQ_ROUTE_SID,
      "0123\0" "56789abcdef", 16, "msg" },
    /* '@' routes of the wrong length are not group names either */
    { S("@:msg"), -1, 0, "", 0, "" },
    { S("@0123456789abcdefX:msg"), -1, 0, "", 0, "" },
    { S("@abc:msg"), -1, 0, "", 0, "" },
    /* empty parts */
    { S(":msg"), -1, 0, "", 0, "" },
    { S("g1:"), -1, 0, "", 0, "" },
    { S(":"), -1, 0, "", 0, "" },
    { S("@0123456789abcdef:"), -1, 0, "", 0, "" },
    /* group name length 64 ok, 65 not */
    { S("0123456789012345678901234567890123456789012345678901234567890123"
        ":msg"), 0, ZMQ_ROUTE_GROUP,
      "0123456789012345678901234567890123456789012345678901234567890123",
      64, "msg" },
    { S("01234567890123456789012345678901234567890123456789012345678901234"
        ":msg"), -1, 0, "", 0, "" },
};

MK_TEST(routes)
{
    struct zmq_route r;
    size_t i;
    int ret;

    for (i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
        ret = zmq_msg_route(route_cases[i].in, route_cases[i].len, &r);
        if (ret != route_cases[i].ret) {
            fprintf(stderr, "route case %zu: ret %d\n", i, ret);
        }
        CHECK_EQ_INT(ret, route_cases[i].ret);
        if (ret != 0 || route_cases[i].ret != 0) {
            continue;
        }
        CHECK_EQ_INT(r.kind, route_cases[i].kind);
        CHECK_EQ_INT(r.name_len, route_cases[i].name_len);
        CHECK(r.name_len == 0 ||
              memcmp(r.name, route_cases[i].name, r.name_len) == 0);
        CHECK_EQ_MEM(r.type, r.type_len, route_cases[i].type);
        /* borrowed pointers into the input */
        CHECK(r.type >= route_cases[i].in &&
              r.type + r.type_len == route_cases[i].in + route_cases[i].len);
    }
}

MK_TEST(group_names)
{
    CHECK(zmq_group_name_is_valid("a", 1));
    CHECK(!zmq_group_name_is_valid("", 0));
    CHECK(!zmq_group_name_is_valid("@a", 2));
    CHECK(zmq_group_name_is_valid("a@", 2));
    CHECK(zmq_group_name_is_valid(
        "0123456789012345678901234567890123456789012345678901234567890123",
        64));
    CHECK(!zmq_group_name_is_valid(
        "01234567890123456789012345678901234567890123456789012345678901234",
        65));
}

/* ---- types ------------------------------------------------------------- */

static const struct {
    const char *name;
    enum zmq_msg_type type;
} type_cases[] = {
    { "pong", ZMQ_MSG_PONG }, { "headers", ZMQ_MSG_HEADERS },
    { "body", ZMQ_MSG_BODY }, { "chunk", ZMQ_MSG_CHUNK },
    { "end", ZMQ_MSG_END }, { "websocket", ZMQ_MSG_WEBSOCKET },
    { "websocket/binary", ZMQ_MSG_WEBSOCKET_BINARY },
    { "websocket/close", ZMQ_MSG_WEBSOCKET_CLOSE },
    { "retry", ZMQ_MSG_RETRY }, { "msg", ZMQ_MSG_MSG },
    { "join", ZMQ_MSG_JOIN }, { "leave", ZMQ_MSG_LEAVE },
    { "noecho", ZMQ_MSG_NOECHO }, { "echo", ZMQ_MSG_ECHO },
    { "cache", ZMQ_MSG_CACHE }, { "fragcache", ZMQ_MSG_FRAGCACHE },
    { "frag", ZMQ_MSG_FRAG }, { "push", ZMQ_MSG_PUSH },
    { "pipe", ZMQ_MSG_PIPE }, { "socket.io/event", ZMQ_MSG_SIO_EVENT },
    { "socket.io/msg", ZMQ_MSG_SIO_MSG },
    { "socket.io/json", ZMQ_MSG_SIO_JSON },
    { "socket.io/end", ZMQ_MSG_SIO_END }, { "uwsgi", ZMQ_MSG_UWSGI },
    /* unknown: case, prefixes, suffixes, the "in development" list */
    { "Pong", ZMQ_MSG_UNKNOWN }, { "ebsocket", ZMQ_MSG_UNKNOWN },
    { "websockets", ZMQ_MSG_UNKNOWN }, { "socket.io", ZMQ_MSG_UNKNOWN },
    { "socket.io/", ZMQ_MSG_UNKNOWN }, { "ping", ZMQ_MSG_UNKNOWN },
    { "spawn", ZMQ_MSG_UNKNOWN }, { "move", ZMQ_MSG_UNKNOWN },
    { "timeout", ZMQ_MSG_UNKNOWN }, { "", ZMQ_MSG_UNKNOWN },
    { "unknown", ZMQ_MSG_UNKNOWN },
};

MK_TEST(types)
{
    size_t i;
    enum zmq_msg_type t;

    /* the gateway applies these; everything else belongs to plugins */
    for (t = ZMQ_MSG_UNKNOWN; t < ZMQ_MSG_TYPE_COUNT; t++) {
        CHECK_EQ_INT(zmq_msg_type_is_http(t),
                     t == ZMQ_MSG_HEADERS || t == ZMQ_MSG_BODY ||
                     t == ZMQ_MSG_CHUNK || t == ZMQ_MSG_END);
    }
    CHECK(!zmq_msg_type_is_http(ZMQ_MSG_WEBSOCKET));

    for (i = 0; i < sizeof(type_cases) / sizeof(type_cases[0]); i++) {
        t = zmq_msg_type(type_cases[i].name, strlen(type_cases[i].name));
        if (t != type_cases[i].type) {
            fprintf(stderr, "type case \"%s\"\n", type_cases[i].name);
        }
        CHECK_EQ_INT(t, type_cases[i].type);
    }
    /* length, not NUL, ends the name */
    CHECK_EQ_INT(zmq_msg_type("endX", 3), ZMQ_MSG_END);
    CHECK_EQ_INT(zmq_msg_type("end\0", 4), ZMQ_MSG_UNKNOWN);
    /* every known type maps back through its own name */
    for (i = 1; i < ZMQ_MSG_TYPE_COUNT; i++) {
        const char *n = zmq_msg_type_name((enum zmq_msg_type) i);
        CHECK_EQ_INT(zmq_msg_type(n, strlen(n)), i);
    }
    CHECK_EQ_STR(zmq_msg_type_name(ZMQ_MSG_TYPE_COUNT), "unknown");
}

/* ---- frame checks ------------------------------------------------------ */

#define SID "0123456789abcdef"

static enum zmq_reject check4(const char *id, size_t idl, const char *sid,
                              size_t sidl, const char *type, size_t tl,
                              const char *body, size_t bl, size_t max,
                              struct zmq_node_msg *m)
{
    struct zmq_frame f[5] = {
        { id, idl }, { sid, sidl }, { type, tl }, { body, bl }, { "x", 1 },
    };
    return zmq_msg_check(f, 4, max, m);
}

MK_TEST(frames)
{
    struct zmq_node_msg m;
    struct zmq_frame f[5] = {
        { "node1", 5 }, { SID, 16 }, { "body", 4 }, { "hi", 2 }, { "", 0 },
    };
    char big[300];
    size_t n;

    memset(big, 'n', sizeof(big));
    /* exactly 4 frames: 0..3 and 5 are refused (spec 10.2) */
    for (n = 0; n < 6; n++) {
        if (n != 4) {
            CHECK_EQ_INT(zmq_msg_check(f, n, 0, &m), ZMQ_REJECT_FRAME_COUNT);
        }
    }
    CHECK_EQ_INT(zmq_msg_check(f, 4, 0, &m), ZMQ_REJECT_NONE);
    CHECK_EQ_MEM(m.identity, m.identity_len, "node1");
    CHECK(m.sid == f[1].data);
    CHECK_EQ_MEM(m.body, m.body_len, "hi");
    CHECK_EQ_INT(m.is_pong, 0);
    CHECK_EQ_INT(m.type, ZMQ_MSG_BODY);
    CHECK_EQ_INT(m.route.kind, ZMQ_ROUTE_NONE);

    /* pong: exact, any sid (empty, short, 16) */
    CHECK_EQ_INT(check4(S("n"), "", 0, S("pong"), "", 0, 0, &m),
                 ZMQ_REJECT_NONE);
    CHECK_EQ_INT(m.is_pong, 1);
    CHECK_EQ_INT(m.type, ZMQ_MSG_PONG);
    CHECK(m.sid == NULL);
    CHECK_EQ_INT(check4(S("n"), "abc", 3, S("pong"), "zz", 2, 0, &m),
                 ZMQ_REJECT_NONE);
    CHECK_EQ_INT(m.is_pong, 1);
    /* a routed or padded pong is not a health answer and needs a sid */
    CHECK_EQ_INT(check4(S("n"), "", 0, S("g:pong"), "", 0, 0, &m),
                 ZMQ_REJECT_SID);
    CHECK_EQ_INT(check4(S("n"), SID, 16, S("g:pong"), "", 0, 0, &m),
                 ZMQ_REJECT_NONE);
    CHECK_EQ_INT(m.is_pong, 0);
    CHECK_EQ_INT(m.type, ZMQ_MSG_PONG);
    CHECK_EQ_INT(check4(S("n"), "", 0, S("pong "), "", 0, 0, &m),
                 ZMQ_REJECT_SID);
    CHECK_EQ_INT(check4(S("n"), "", 0, S("PONG"), "", 0, 0, &m),
                 ZMQ_REJECT_SID);

    /* sid must be 16 bytes */
    CHECK_EQ_INT(check4(S("n"), SID, 15, S("body"), "", 0, 0, &m),
                 ZMQ_REJECT_SID);
    CHECK_EQ_INT(check4(S("n"), SID "X", 17, S("body"), "", 0, 0, &m),
                 ZMQ_REJECT_SID);
    CHECK_EQ_INT(check4(S("n"), "", 0, S("end"), "", 0, 0, &m),
                 ZMQ_REJECT_SID);

    /* identity 1..255 */
    CHECK_EQ_INT(check4("", 0, SID, 16, S("body"), "", 0, 0, &m),
                 ZMQ_REJECT_IDENTITY);
    CHECK_EQ_INT(check4(big, 255, SID, 16, S("body"), "", 0, 0, &m),
                 ZMQ_REJECT_NONE);
    CHECK_EQ_INT(check4(big, 256, SID, 16, S("body"), "", 0, 0, &m),
                 ZMQ_REJECT_IDENTITY);

    /* frame size limit applies to every frame, boundary inclusive */
    CHECK_EQ_INT(check4(S("n"), SID, 16, S("body"), big, 100, 100, &m),
                 ZMQ_REJECT_NONE);
    CHECK_EQ_INT(check4(S("n"), SID, 16, S("body"), big, 101, 100, &m),
                 ZMQ_REJECT_FRAME_SIZE);
    CHECK_EQ_INT(check4(big, 20, SID, 16, S("body"), "", 0, 19, &m),
                 ZMQ_REJECT_FRAME_SIZE);
    CHECK_EQ_INT(check4(S("n"), SID, 16, big, 200, "", 0, 150, &m),
                 ZMQ_REJECT_FRAME_SIZE);
    /* even a pong */
    CHECK_EQ_INT(check4(S("n"), "", 0, S("pong"), big, 101, 100, &m),
                 ZMQ_REJECT_FRAME_SIZE);

    /* routes */
    CHECK_EQ_INT(check4(S("n"), SID, 16, S("g1:websocket"), "x", 1, 0, &m),
                 ZMQ_REJECT_NONE);
    CHECK_EQ_INT(m.route.kind, ZMQ_ROUTE_GROUP);
    CHECK_EQ_MEM(m.route.name, m.route.name_len, "g1");
    CHECK_EQ_INT(m.type, ZMQ_MSG_WEBSOCKET);
    CHECK_EQ_INT(check4(S("n"), SID, 16, S("@" SID ":msg"), "x", 1, 0, &m),
                 ZMQ_REJECT_NONE);
    CHECK_EQ_INT(m.route.kind, ZMQ_ROUTE_SID);
    CHECK_EQ_INT(m.type, ZMQ_MSG_MSG);
    CHECK_EQ_INT(check4(S("n"), SID, 16, S("@short:msg"), "", 0, 0, &m),
                 ZMQ_REJECT_ROUTE);
    CHECK_EQ_INT(check4(S("n"), SID, 16, S("g1:"), "", 0, 0, &m),
                 ZMQ_REJECT_ROUTE);
    /* unknown types are accepted (they count as liveness), then ignored */
    CHECK_EQ_INT(check4(S("n"), SID, 16, S("timer"), "", 0, 0, &m),
                 ZMQ_REJECT_NONE);
    CHECK_EQ_INT(m.type, ZMQ_MSG_UNKNOWN);

    for (n = 0; n < ZMQ_REJECT_COUNT; n++) {
        CHECK(strcmp(zmq_reject_name((enum zmq_reject) n), "unknown") != 0);
    }
    CHECK_EQ_STR(zmq_reject_name(ZMQ_REJECT_COUNT), "unknown");
}

/* ---- response head ----------------------------------------------------- */

static const struct {
    const char *in;
    int ret;
    int status, minor;
    long long cl;
    int close, keep, chunked, nonpers, nh;
} head_cases[] = {
    { "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n",
      0, 200, 1, -1, 0, 0, 0, 0, 1 },
    { "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
      0, 200, 1, 12, 0, 0, 0, 0, 1 },
    { "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
      0, 200, 0, 0, 0, 0, 0, 1, 1 },
    { "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n",
      0, 200, 0, -1, 0, 1, 0, 0, 1 },
    { "HTTP/1.1 404 Not Found\r\nconnection: upgrade, CLOSE\r\n\r\n",
      0, 404, 1, -1, 1, 0, 0, 1, 1 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      0, 200, 1, -1, 0, 0, 1, 0, 1 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      0, 200, 1, -1, 0, 0, 0, 0, 1 },
    { "HTTP/1.1 204\r\n\r\n", 0, 204, 1, -1, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 500 \r\n\r\n", 0, 500, 1, -1, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nX: \r\nY:a b\t\r\n\r\n",
      0, 200, 1, -1, 0, 0, 0, 0, 2 },
    { "HTTP/1.1 200 OK\r\nContent-Length:  7  \r\n\r\nbody...",
      0, 200, 1, 7, 0, 0, 0, 0, 1 },
    /* errors */
    { "", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },   /* no end */
    { "HTTP/1.1 200 OK\r\nA: b\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nA: b\r\n\r", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\n\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },   /* bare LF */
    { "HTTP/1.1 200 OK\r\nA: b\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nA b: c\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nA : c\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\n: c\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nA: \x01\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/2.0 200 OK\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.2 200 OK\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 99 OK\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 600 OK\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 2000 OK\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1  200 OK\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "http/1.1 200 OK\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 O\x7fK\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
      -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
      -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
      -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
      -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
      -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
      "Transfer-Encoding: chunked\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      -1, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
      "Transfer-Encoding: chunked\r\n\r\n", -1, 0, 0, 0, 0, 0, 0, 0, 0 },
};

MK_TEST(resp_heads)
{
    struct zmq_resp_head h;
    size_t i;
    int ret;

    for (i = 0; i < sizeof(head_cases) / sizeof(head_cases[0]); i++) {
        memset(&h, 0x5a, sizeof(h));
        ret = zmq_resp_head_parse(head_cases[i].in, strlen(head_cases[i].in),
                                  64, &h);
        if (ret != head_cases[i].ret) {
            fprintf(stderr, "head case %zu: ret %d\n", i, ret);
        }
        CHECK_EQ_INT(ret, head_cases[i].ret);
        if (ret != 0 || head_cases[i].ret != 0) {
            continue;
        }
        CHECK_EQ_INT(h.status, head_cases[i].status);
        CHECK_EQ_INT(h.minor, head_cases[i].minor);
        CHECK_EQ_INT(h.content_length, head_cases[i].cl);
        CHECK_EQ_INT(h.conn_close, head_cases[i].close);
        CHECK_EQ_INT(h.conn_keep_alive, head_cases[i].keep);
        CHECK_EQ_INT(h.chunked, head_cases[i].chunked);
        CHECK_EQ_INT(h.non_persistent, head_cases[i].nonpers);
        CHECK_EQ_INT(h.n_headers, head_cases[i].nh);
    }
}

MK_TEST(resp_head_len_and_limits)
{
    static const char two[] = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\nrest";
    struct zmq_resp_head h;

    CHECK_EQ_INT(zmq_resp_head_parse(two, strlen(two), 2, &h), 0);
    CHECK_EQ_INT(h.head_len, strlen(two) - 4);
    CHECK_EQ_INT(zmq_resp_head_parse(two, strlen(two), 1, &h), -1);
    CHECK_EQ_INT(zmq_resp_head_parse(two, strlen(two), 0, &h), -1);
    /* every truncation of the head is incomplete */
    for (size_t l = 0; l < strlen(two) - 4; l++) {
        CHECK_EQ_INT(zmq_resp_head_parse(two, l, 2, &h), -1);
    }
    /* a NUL byte is a control character, not an end */
    CHECK_EQ_INT(zmq_resp_head_parse("HTTP/1.1 200 O\0K\r\n\r\n", 20, 2, &h),
                 -1);
    /* a large length survives the overflow guard */
    CHECK_EQ_INT(zmq_resp_head_parse(
        "HTTP/1.1 200 OK\r\nContent-Length: 4503599627370496\r\n\r\n",
        53, 2, &h), 0);
    CHECK_EQ_INT(h.content_length, 4503599627370496LL);
}

/* A head after which the server closes says so, once, whatever the node
 * wrote; the rest of it goes out as the node wrote it. */
MK_TEST(resp_head_close)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n"
          "\r\n" },
        { "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nA: b\r\n\r\n",
          "HTTP/1.1 200 OK\r\nA: b\r\nConnection: close\r\n\r\n" },
        { "HTTP/1.0 404 No\r\nconnection: Keep-Alive, x\r\n"
          "CONNECTION: close\r\nConnectionx: y\r\n\r\n",
          "HTTP/1.0 404 No\r\nConnectionx: y\r\nConnection: close\r\n\r\n" },
        { "HTTP/1.1 204 Connection: keep-alive\r\n\r\n",
          "HTTP/1.1 204 Connection: keep-alive\r\nConnection: close\r\n\r\n" },
    };
    struct zmq_resp_head h;
    char out[256];
    size_t i, n, len;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        len = strlen(cases[i].in);
        CHECK_EQ_INT(zmq_resp_head_parse(cases[i].in, len, 8, &h), 0);
        n = zmq_resp_head_close(cases[i].in, len, out);
        CHECK(n <= len + ZMQ_RESP_HEAD_CLOSE_EXTRA);
        CHECK_EQ_INT(n, strlen(cases[i].out));
        CHECK(memcmp(out, cases[i].out, n) == 0);
        CHECK_EQ_INT(zmq_resp_head_parse(out, n, 8, &h), 0);
        CHECK(h.conn_close && !h.conn_keep_alive && h.head_len == n);
    }
}

/* ---- the structured fallback: fields without the hop-by-hop ones ------- */

static int collect_field(void *ctx, const char *name, size_t nl,
                         const char *value, size_t vl)
{
    char *out = ctx;
    size_t o = strlen(out);

    snprintf(out + o, 512 - o, "%.*s=%.*s|", (int) nl, name, (int) vl, value);
    return strncmp(name, "X-Stop", nl) == 0 ? 7 : 0;
}

MK_TEST(resp_head_fields_drop_the_hop_by_hop_ones)
{
    static const char head[] =
        "HTTP/1.1 201 Created\r\n"
        "Connection: keep-alive, Upgrade\r\n"
        "Content-Type: text/plain\r\n"
        "Keep-Alive: timeout=5\r\n"
        "transfer-encoding: chunked\r\n"
        "Set-Cookie: a=1\r\n"
        "UPGRADE: h2c\r\n"
        "Proxy-Connection: close\r\n"
        "Set-Cookie: b=2\r\n"
        "X-Spaced: \t spaced out \t\r\n"
        "\r\n";
    static const char with_length[] =
        "HTTP/1.0 200 OK\r\nContent-Length: 5\r\nX-Stop: 1\r\n"
        "X-After: 2\r\n\r\n";
    struct zmq_resp_head h;
    char out[512] = "";

    CHECK(zmq_resp_head_parse(S(head), 64, &h) == 0);
    CHECK(zmq_resp_head_fields(S(head), collect_field, out) == 0);
    CHECK_EQ_STR(out, "Content-Type=text/plain|Set-Cookie=a=1|"
                      "Set-Cookie=b=2|X-Spaced=spaced out|");
    /* Content-Length goes through the response API, not as a field; a
     * non-zero return stops the walk and is passed back */
    out[0] = '\0';
    CHECK(zmq_resp_head_fields(S(with_length), collect_field, out) == 7);
    CHECK_EQ_STR(out, "X-Stop=1|");
}

int main(void)
{
    RUN(routes);
    RUN(group_names);
    RUN(types);
    RUN(frames);
    RUN(resp_heads);
    RUN(resp_head_len_and_limits);
    RUN(resp_head_close);
    RUN(resp_head_fields_drop_the_hop_by_hop_ones);
    return mk_test_done();
}
