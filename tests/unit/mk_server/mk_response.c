/* The response writer's last guard on header values: no CR/LF, and no
 * Location a browser would follow to another site. Only the header store
 * is exercised: nothing is queued, so a bare request and connection do. */
#include <stdlib.h>
#include <string.h>

#include "mk_test.h"
#include "mk_server/mk_conn.h"

static struct mk_conn test_conn;
static struct mk_stream test_req;

static struct mk_stream *fresh_request(void)
{
    memset(&test_conn, 0, sizeof(test_conn));
    memset(&test_req, 0, sizeof(test_req));
    test_conn.ev.fd = -1;
    test_req.conn = &test_conn;
    return &test_req;
}

static int set_location(const char *name, const char *value, size_t len)
{
    return mk_response_header_n(fresh_request(), name, value, len);
}

#define LOC(s) set_location("Location", (s), sizeof(s) - 1)

MK_TEST(location_to_another_site_refused)
{
    CHECK_EQ_INT(LOC("//evil.example/"), -1);
    CHECK_EQ_INT(LOC("/\\evil.example/"), -1);
    /* URL parsers drop leading blanks and controls and every tab */
    CHECK_EQ_INT(LOC(" //evil.example/"), -1);
    CHECK_EQ_INT(LOC("\t/\\evil.example/"), -1);
    CHECK_EQ_INT(LOC("/\t/evil.example/"), -1);
    CHECK_EQ_INT(LOC("\x01/\t\t\\evil.example/"), -1);
    /* whatever the name's case */
    CHECK_EQ_INT(set_location("location", "//evil", 6), -1);
    CHECK_EQ_INT(set_location("LOCATION", "/\\evil", 6), -1);
    CHECK_EQ_INT(test_req.resp.field_count, 0);
}

MK_TEST(location_on_site_or_absolute_kept)
{
    struct mk_ptr name, value;
    size_t it = 0;

    CHECK_EQ_INT(LOC("/sub/"), 0);
    CHECK_EQ_INT(mk_response_field_next(&test_req, &it, &name, &value, NULL),
                 1);
    CHECK_EQ_MEM(name.data, name.len, "Location");
    CHECK_EQ_MEM(value.data, value.len, "/sub/");
    CHECK_EQ_INT(mk_response_field_next(&test_req, &it, &name, &value, NULL),
                 0);
    CHECK_EQ_INT(LOC("/"), 0);
    CHECK_EQ_INT(LOC("/%5Cevil.example/"), 0);
    CHECK_EQ_INT(LOC("/a//b/"), 0);                /* not at the start */
    CHECK_EQ_INT(LOC("https://example.org/"), 0);  /* said outright */
    CHECK_EQ_INT(LOC("sub/"), 0);
    CHECK_EQ_INT(LOC(""), 0);
    /* other headers may hold anything but CR/LF */
    CHECK_EQ_INT(set_location("Link", "//cdn.example/x", 15), 0);
    CHECK_EQ_INT(set_location("X-Locations", "//x", 3), 0);
}

MK_TEST(crlf_refused)
{
    CHECK_EQ_INT(LOC("/a\r\nSet-Cookie: x=1"), -1);
    CHECK_EQ_INT(set_location("X-A", "a\nb", 3), -1);
}

/* The room is counted as HTTP/1.1 text, "Name: value\r\n", as before the
 * fields were structured: exactly 1024 bytes fit. */
MK_TEST(field_room_counted_as_head_text)
{
    static char big[MK_RESPONSE_FIELDS_ROOM];
    struct mk_stream *r = fresh_request();

    memset(big, 'v', sizeof(big));
    CHECK_EQ_INT(mk_response_header_n(r, "X", big, 1024 - 4), -1);
    CHECK_EQ_INT(mk_response_header_n(r, "X", big, 1024 - 5), 0);
    CHECK_EQ_INT(mk_response_header_n(r, "Y", big, 0), -1);
    CHECK_EQ_INT(r->resp.field_count, 1);
}

MK_TEST(trailers_listed_after_fields_and_refused_once_ended)
{
    struct mk_stream *r = fresh_request();
    struct mk_ptr name, value;
    size_t it = 0;
    int trailer = -1;

    CHECK_EQ_INT(mk_response_header(r, "A", "1"), 0);
    CHECK_EQ_INT(mk_response_trailer(r, "T", "2", 1), 0);
    CHECK_EQ_INT(mk_response_trailer(r, "T2", "a\r\nb", 4), -1);
    CHECK_EQ_INT(mk_response_field_next(r, &it, &name, &value, &trailer), 1);
    CHECK_EQ_INT(trailer, 0);
    CHECK_EQ_INT(mk_response_field_next(r, &it, &name, &value, &trailer), 1);
    CHECK_EQ_MEM(name.data, name.len, "T");
    CHECK_EQ_INT(trailer, 1);
    r->resp.ended = 1;
    CHECK_EQ_INT(mk_response_trailer(r, "U", "3", 1), -1);
}

int main(void)
{
    RUN(location_to_another_site_refused);
    RUN(location_on_site_or_absolute_kept);
    RUN(crlf_refused);
    RUN(field_room_counted_as_head_text);
    RUN(trailers_listed_after_fields_and_refused_once_ended);
    return mk_test_done();
}
