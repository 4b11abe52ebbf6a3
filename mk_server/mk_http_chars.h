#ifndef MK_SERVER_HTTP_CHARS_H
#define MK_SERVER_HTTP_CHARS_H

#include <stdint.h>

/*
 * Private to the HTTP parser and body decoder: octet classes of RFC 9110 /
 * RFC 9112, one byte of flags per octet (table in mk_http_parser.c).
 */
#define HTTP_C_TCHAR   0x1    /* token: RFC 9110 5.6.2 tchar */
#define HTTP_C_VALUE   0x2    /* field-value octet: HTAB, SP, VCHAR, obs-text */
#define HTTP_C_TARGET  0x4    /* request-target octet: visible ASCII */
#define HTTP_C_HEX     0x8    /* HEXDIG */

extern const uint8_t mk_http_chars[256];

#define HTTP_IS(c, cls)  (mk_http_chars[(uint8_t) (c)] & (cls))
#define HTTP_IS_WS(c)    ((c) == ' ' || (c) == '\t')

#endif
