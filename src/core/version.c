/* Version report. YR_VERSION and YR_GIT_COMMIT come from build_info.h,
 * which CMake generates at configure time (src/core/build_info.h.in); the
 * library versions are asked from the libraries at run time. */
#include "core/version.h"

#include "build_info.h"

#include <curl/curl.h>
#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <uv.h>
#include <yaml.h>

const char *yr_version(void)
{
    return YR_VERSION;
}

const char *yr_version_commit(void)
{
    return YR_GIT_COMMIT[0] ? YR_GIT_COMMIT : "unknown";
}

int yr_version_print(FILE *f)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    unsigned long hp = http_parser_version();

    fprintf(f, "yourouter %s\n", yr_version());
    fprintf(f, "commit %s\n", yr_version_commit());
    fprintf(f, "libuv %s\n", uv_version_string());
    fprintf(f, "libcurl %s (%s)\n", cv->version, cv->ssl_version ? cv->ssl_version : "no TLS");
    fprintf(f, "OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
    fprintf(f, "SQLite %s\n", sqlite3_libversion());
    fprintf(f, "jansson %s\n", jansson_version_str());
    fprintf(f, "libyaml %s\n", yaml_get_version_string());
    fprintf(f, "http-parser %lu.%lu.%lu\n", (hp >> 16) & 255, (hp >> 8) & 255, hp & 255);
    return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}
