/* Remote images in an OpenAI chat request: finding the image_url parts that
 * point at http(s) URLs, and replacing a part's URL with the fetched bytes as
 * a data: URL, for providers that cannot fetch images themselves. Pure
 * functions over the jansson DOM (no I/O): the proxy fetches with
 * upstream/fetch.h in between. */
#ifndef YR_IMAGES_H
#define YR_IMAGES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* Finds, in message order, the content parts of root (a chat request:
 * {"messages":[{"content":[...]}, ...]}) of type "image_url" whose URL
 * starts with http:// or https:// (case-insensitive); data: URLs and
 * anything else are skipped. The URL is image_url.url, or image_url itself
 * when it is a string. Stores at most max parts in parts (borrowed
 * references into root) and returns how many there are in all, so a result
 * above max means some were not stored. */
size_t yr_images_collect(json_t *root, json_t **parts, size_t max);

/* Where part sits in root: messages[*msg].content[*idx] (for an error's
 * "param"). False when it is not a content part of root. */
bool yr_images_where(json_t *root, const json_t *part, size_t *msg, size_t *idx);

/* The URL string of an image_url part (borrowed, NUL-terminated), or NULL. */
const char *yr_images_url(json_t *part);

/* Replaces the URL of part (as found by yr_images_collect) with
 * "data:<content_type>;base64,<data>"; every other key (such as "detail")
 * stays as it was, in place. content_type must be image/jpeg, image/png,
 * image/gif or image/webp. Returns 0, -EINVAL (not an image_url part, or
 * another type) or -ENOMEM. data is only read. */
__attribute__((warn_unused_result)) int yr_images_inline(json_t *part, const char *content_type,
                                                         const void *data, size_t len);

/* Splits "data:<media type>[;param]*;base64,<payload>" (scheme and
 * ";base64" case-insensitive): *media_type is the media type as written
 * (without parameters), *b64 the payload; both are slices of url. False
 * when url is not a base64 data URL with a media type and a non-empty
 * payload of base64 characters. */
bool yr_data_url_parse(yr_str_t url, yr_str_t *media_type, yr_str_t *b64);

#endif
