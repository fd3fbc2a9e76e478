/* The admin UI's session table (gateway/ui_session.h). */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <string.h>

#include "gateway/ui_session.h"

typedef struct {
    bool used;
    unsigned char token_hash[SHA256_DIGEST_LENGTH];
    unsigned char master_hash[SHA256_DIGEST_LENGTH];
    char csrf[YR_UI_TOKEN_HEX + 1];
    int64_t expires_ms;
} session_t;

static struct {
    pthread_mutex_t mu;
    session_t slot[YR_UI_MAX_SESSIONS];
    int64_t failures_since_ms; /* start of the current failure minute */
    unsigned failures;
} table = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void sha256(const char *p, size_t n, unsigned char out[SHA256_DIGEST_LENGTH])
{
    SHA256((const unsigned char *)p, n, out);
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int random_hex(char *out)
{
    unsigned char b[YR_UI_TOKEN_HEX / 2];
    if (RAND_bytes(b, sizeof(b)) != 1)
        return -EIO;
    to_hex(b, sizeof(b), out);
    OPENSSL_cleanse(b, sizeof(b));
    return 0;
}

/* The slot to reuse: a free or expired one, else the one expiring first. */
static session_t *free_slot(int64_t now_ms)
{
    session_t *best = &table.slot[0];
    for (size_t i = 0; i < YR_UI_MAX_SESSIONS; i++) {
        session_t *s = &table.slot[i];
        if (!s->used || s->expires_ms <= now_ms)
            return s;
        if (s->expires_ms < best->expires_ms)
            best = s;
    }
    return best;
}

int yr_ui_session_open(const char *master_key, int64_t now_ms, int64_t ttl_ms, char *token,
                       char *csrf)
{
    if (master_key == NULL || random_hex(token) != 0 || random_hex(csrf) != 0)
        return -EIO;
    pthread_mutex_lock(&table.mu);
    session_t *s = free_slot(now_ms);
    s->used = true;
    sha256(token, YR_UI_TOKEN_HEX, s->token_hash);
    sha256(master_key, strlen(master_key), s->master_hash);
    memcpy(s->csrf, csrf, sizeof(s->csrf));
    s->expires_ms = now_ms + ttl_ms;
    pthread_mutex_unlock(&table.mu);
    return 0;
}

/* The live session of token, or NULL. Under the mutex. The token is looked
 * up by its hash, so the comparison's timing tells nothing about it. */
static session_t *find(yr_str_t token, int64_t now_ms)
{
    if (token.len != YR_UI_TOKEN_HEX)
        return NULL;
    unsigned char h[SHA256_DIGEST_LENGTH];
    sha256(token.ptr, token.len, h);
    for (size_t i = 0; i < YR_UI_MAX_SESSIONS; i++) {
        session_t *s = &table.slot[i];
        if (s->used && memcmp(s->token_hash, h, sizeof(h)) == 0) {
            if (s->expires_ms > now_ms)
                return s;
            s->used = false;
            return NULL;
        }
    }
    return NULL;
}

bool yr_ui_session_find(yr_str_t token, const char *master_key, int64_t now_ms, char *csrf,
                        int64_t *expires_ms)
{
    if (master_key == NULL)
        return false;
    unsigned char mh[SHA256_DIGEST_LENGTH];
    sha256(master_key, strlen(master_key), mh);
    pthread_mutex_lock(&table.mu);
    session_t *s = find(token, now_ms);
    bool ok = s != NULL && CRYPTO_memcmp(s->master_hash, mh, sizeof(mh)) == 0;
    if (s != NULL && !ok)
        s->used = false; /* opened with a master key that is no longer */
    if (ok && csrf != NULL)
        memcpy(csrf, s->csrf, sizeof(s->csrf));
    if (ok && expires_ms != NULL)
        *expires_ms = s->expires_ms;
    pthread_mutex_unlock(&table.mu);
    return ok;
}

void yr_ui_session_close(yr_str_t token)
{
    pthread_mutex_lock(&table.mu);
    session_t *s = find(token, INT64_MIN);
    if (s != NULL)
        memset(s, 0, sizeof(*s));
    pthread_mutex_unlock(&table.mu);
}

bool yr_ui_password_ok(yr_str_t password, const char *master_key)
{
    if (master_key == NULL || master_key[0] == '\0')
        return false;
    /* Hashes of equal length compared in constant time: the timing says
     * nothing about the key's length or its first differing byte. */
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    sha256(password.ptr != NULL ? password.ptr : "", password.len, a);
    sha256(master_key, strlen(master_key), b);
    return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

bool yr_ui_login_allowed(int64_t now_ms)
{
    pthread_mutex_lock(&table.mu);
    if (now_ms - table.failures_since_ms >= 60000) {
        table.failures_since_ms = now_ms;
        table.failures = 0;
    }
    bool ok = table.failures < YR_UI_LOGIN_FAILURES_PER_MIN;
    pthread_mutex_unlock(&table.mu);
    return ok;
}

void yr_ui_login_failed(int64_t now_ms)
{
    pthread_mutex_lock(&table.mu);
    if (now_ms - table.failures_since_ms >= 60000) {
        table.failures_since_ms = now_ms;
        table.failures = 0;
    }
    table.failures++;
    pthread_mutex_unlock(&table.mu);
}

void yr_ui_sessions_reset(void)
{
    pthread_mutex_lock(&table.mu);
    memset(table.slot, 0, sizeof(table.slot));
    table.failures = 0;
    table.failures_since_ms = 0;
    pthread_mutex_unlock(&table.mu);
}
