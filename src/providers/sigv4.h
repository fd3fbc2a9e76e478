/* AWS Signature Version 4 (header signing), with OpenSSL's SHA-256 and
 * HMAC:
 *
 *   canonical request = method \n canonical URI \n canonical query \n
 *                       canonical headers \n signed headers \n payload hash
 *   string to sign    = AWS4-HMAC-SHA256 \n amz date \n scope \n
 *                       hex(sha256(canonical request))
 *   key               = HMAC chain over "AWS4"+secret, date, region,
 *                       service, "aws4_request"
 *
 * The canonical URI encodes each path segment once more (every service but
 * S3): the path as it is sent ("/model/a%3Ab/converse") is signed as
 * "/model/a%253Ab/converse". Header names are lower-cased, values trimmed
 * with inner runs of spaces collapsed, repeated names joined with ','.
 * Checked against the AWS SigV4 test suite (tests/unit/test_sigv4.c).
 *
 * Pure functions; no I/O, no clock (the caller passes the date). */
#ifndef YR_SIGV4_H
#define YR_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define YR_SIGV4_MAX_HEADERS 32

typedef struct {
    yr_str_t name, value;
} yr_sigv4_hdr_t;

typedef struct {
    const char *method;
    yr_str_t path;                 /* as sent, without the query */
    yr_str_t query;                /* after '?', may be empty */
    const yr_sigv4_hdr_t *headers; /* the headers to sign (host and x-amz-date among them) */
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body */
    bool normalize;           /* drop "." / ".." segments and empty segments first */
} yr_sigv4_req_t;

typedef struct {
    const char *access_key, *secret_key;
    const char *region, *service;
    const char *amz_date; /* YYYYMMDDTHHMMSSZ */
} yr_sigv4_key_t;

/* What signing produced; every buffer is the caller's (yr_sigv4_out_init
 * gives each a cap, yr_sigv4_out_free releases them). */
typedef struct {
    yr_buf_t creq;           /* the canonical request */
    yr_buf_t sts;            /* the string to sign */
    yr_buf_t signed_headers; /* "host;x-amz-date" */
    yr_buf_t authorization;  /* the Authorization header's value */
    char signature[65];
} yr_sigv4_out_t;

void yr_sigv4_out_init(yr_sigv4_out_t *o);
void yr_sigv4_out_free(yr_sigv4_out_t *o);

/* Signs r with k. 0, -EINVAL (too many headers, a bad date), -E2BIG or
 * -ENOMEM. */
__attribute__((warn_unused_result)) int yr_sigv4_sign(const yr_sigv4_req_t *r,
                                                      const yr_sigv4_key_t *k, yr_sigv4_out_t *o);

/* hex(SHA-256(p, n)) into out (65 bytes, NUL-terminated). */
void yr_sha256_hex(const void *p, size_t n, char out[65]);

/* An Authorization header of this scheme, split (slices of authz):
 * "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 *  SignedHeaders=a;b, Signature=hex". 0 or -EINVAL. (The simulator verifies
 * signatures with it.) */
typedef struct {
    yr_str_t access_key, date, region, service, signed_headers, signature;
} yr_sigv4_auth_t;
__attribute__((warn_unused_result)) int yr_sigv4_parse_auth(yr_str_t authz, yr_sigv4_auth_t *out);

#endif
