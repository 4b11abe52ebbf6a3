#include <string.h>

#include "mk_core/mk_base64.h"
#include "mk_test.h"

MK_TEST(rfc4648_vectors)
{
    static const char *plain[] = { "", "f", "fo", "foo", "foob", "fooba",
                                   "foobar" };
    static const char *coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
                                   "Zm9vYmE=", "Zm9vYmFy" };
    char enc[32], dec[32];
    size_t i;
    long n;

    for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        n = mk_base64_encode(plain[i], strlen(plain[i]), enc, sizeof(enc));
        CHECK_EQ_MEM(enc, n, coded[i]);
        n = mk_base64_decode(coded[i], strlen(coded[i]), dec, sizeof(dec));
        CHECK_EQ_MEM(dec, n, plain[i]);
    }
}

MK_TEST(rejects_bad_input_and_small_buffers)
{
    char out[8];

    CHECK(mk_base64_decode("Zm9v!", 5, out, sizeof(out)) < 0);
    CHECK(mk_base64_decode("Zm9vYmFyYmF6", 12, out, 8) < 0);  /* 9 bytes */
    CHECK(mk_base64_decode("Zg=", 3, out, sizeof(out)) < 0);
    CHECK(mk_base64_encode("foobar", 6, out, 8) < 0);          /* needs 9 */
    CHECK_EQ_INT(mk_base64_encode("foob", 4, out, 9), 8);
}

int main(void)
{
    RUN(rfc4648_vectors);
    RUN(rejects_bad_input_and_small_buffers);
    return mk_test_done();
}
