/* Remote image parts of an OpenAI chat request (see images.h). */
#include "api/images.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Input bytes per EVP_EncodeBlock call: a multiple of 3, so the pieces
 * concatenate into one base64 text, and small enough for its int length. */
#define B64_CHUNK (3 * 16384)

static bool has_prefix_ci(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && strncasecmp(s, prefix, n) == 0;
}

/* image_url.url, or image_url itself when a client sent it as a string. */
static json_t *url_value(json_t *part, json_t **holder)
{
    if (!json_is_object(part))
        return NULL;
    const char *type = json_string_value(json_object_get(part, "type"));
    if (type == NULL || strcmp(type, "image_url") != 0)
        return NULL;
    json_t *iu = json_object_get(part, "image_url");
    json_t *url = json_is_object(iu) ? json_object_get(iu, "url") : iu;
    if (!json_is_string(url))
        return NULL;
    if (holder != NULL)
        *holder = json_is_object(iu) ? iu : NULL;
    return url;
}

const char *yr_images_url(json_t *part)
{
    return json_string_value(url_value(part, NULL));
}

size_t yr_images_collect(json_t *root, json_t **parts, size_t max)
{
    json_t *messages = json_object_get(root, "messages");
    size_t found = 0, i, j;
    json_t *msg, *part;
    if (!json_is_array(messages))
        return 0;
    json_array_foreach(messages, i, msg)
    {
        json_t *content = json_object_get(msg, "content");
        if (!json_is_array(content))
            continue;
        json_array_foreach(content, j, part)
        {
            json_t *url = url_value(part, NULL);
            if (url == NULL)
                continue;
            const char *u = json_string_value(url);
            size_t n = json_string_length(url);
            if (!has_prefix_ci(u, n, "http://") && !has_prefix_ci(u, n, "https://"))
                continue;
            if (found < max && parts != NULL)
                parts[found] = part;
            found++;
        }
    }
    return found;
}

bool yr_images_where(json_t *root, const json_t *part, size_t *msg, size_t *idx)
{
    json_t *messages = json_object_get(root, "messages");
    size_t i, j;
    json_t *m, *p;
    json_array_foreach(messages, i, m)
    {
        json_array_foreach(json_object_get(m, "content"), j, p)
        {
            if (p != part)
                continue;
            if (msg != NULL)
                *msg = i;
            if (idx != NULL)
                *idx = j;
            return true;
        }
    }
    return false;
}

static bool image_type_ok(const char *t)
{
    static const char *const ok[] = {"image/jpeg", "image/png", "image/gif", "image/webp"};
    for (size_t i = 0; t != NULL && i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(t, ok[i]) == 0)
            return true;
    return false;
}

int yr_images_inline(json_t *part, const char *content_type, const void *data, size_t len)
{
    json_t *holder = NULL;
    if (!image_type_ok(content_type) || url_value(part, &holder) == NULL ||
        (data == NULL && len > 0))
        return -EINVAL;
    static const char scheme[] = "data:", sep[] = ";base64,";
    size_t tlen = strlen(content_type);
    size_t prefix = sizeof(scheme) - 1 + tlen + sizeof(sep) - 1;
    if (len / 3 >= (SIZE_MAX - prefix - 8) / 4)
        return -ENOMEM;
    size_t b64len = (len + 2) / 3 * 4;
    char *buf = malloc(prefix + b64len + 1); /* EVP_EncodeBlock writes a NUL */
    if (buf == NULL)
        return -ENOMEM;
    char *o = buf;
    memcpy(o, scheme, sizeof(scheme) - 1);
    o += sizeof(scheme) - 1;
    memcpy(o, content_type, tlen);
    o += tlen;
    memcpy(o, sep, sizeof(sep) - 1);
    o += sizeof(sep) - 1;
    const unsigned char *in = data;
    for (size_t off = 0; off < len; off += B64_CHUNK) {
        size_t n = len - off < B64_CHUNK ? len - off : B64_CHUNK;
        o += EVP_EncodeBlock((unsigned char *)o, in + off, (int)n);
    }
    json_t *s = json_stringn_nocheck(buf, (size_t)(o - buf)); /* ASCII: valid UTF-8 */
    free(buf);
    if (s == NULL)
        return -ENOMEM;
    /* Replacing a key keeps its place, so "detail" and the key order stay. */
    int rc = holder != NULL ? json_object_set_new(holder, "url", s)
                            : json_object_set_new(part, "image_url", s);
    return rc < 0 ? -ENOMEM : 0;
}

static bool is_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=';
}

static bool is_token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$&^_.+-", c) != NULL);
}

bool yr_data_url_parse(yr_str_t url, yr_str_t *media_type, yr_str_t *b64)
{
    if (url.ptr == NULL || !has_prefix_ci(url.ptr, url.len, "data:"))
        return false;
    const char *p = url.ptr + 5, *end = url.ptr + url.len;
    const char *comma = memchr(p, ',', (size_t)(end - p));
    if (comma == NULL)
        return false;
    size_t hlen = (size_t)(comma - p);
    if (hlen < 7 || strncasecmp(comma - 7, ";base64", 7) != 0)
        return false;
    const char *semi = memchr(p, ';', hlen); /* found: ";base64" is there */
    size_t mlen = (size_t)(semi - p), slashes = 0;
    for (size_t i = 0; i < mlen; i++) {
        if (p[i] == '/')
            slashes++;
        else if (!is_token_char(p[i]))
            return false;
    }
    if (slashes != 1 || p[0] == '/' || p[mlen - 1] == '/')
        return false;
    size_t dlen = (size_t)(end - comma - 1);
    if (dlen == 0)
        return false;
    for (size_t i = 0; i < dlen; i++)
        if (!is_b64_char(comma[1 + i]))
            return false;
    if (media_type != NULL)
        *media_type = (yr_str_t){p, mlen};
    if (b64 != NULL)
        *b64 = (yr_str_t){comma + 1, dlen};
    return true;
}
