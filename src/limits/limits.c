/* Per-key limits in this process (limits.h). */
#include "limits/limits.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "limits/redis.h"

#define WINDOW_S 60
#define MAX_KEYS 65536 /* keys with counters at once; more: admitted, logged once */

typedef struct {
    pthread_mutex_t mu;
    int64_t key_id; /* 0: free slot */
    int64_t req_sec[WINDOW_S];
    uint32_t req[WINDOW_S];
    int64_t tok_sec[WINDOW_S];
    int64_t tok[WINDOW_S];
    int64_t tok_reserved; /* in flight: estimates not settled yet */
    int64_t inflight;
    int64_t window[YR_BUDGET__COUNT]; /* the window spent[] is for */
    int64_t spent[YR_BUDGET__COUNT];
    int64_t reserved_micros;
} key_state_t;

struct yr_limits {
    uint64_t admitted;
    yr_redis_t *redis; /* NULL: this instance counts alone */
    uint64_t seq;      /* request members in the shared sliding window */
    uint64_t instance; /* random, so members of two instances never collide */
};

struct yr_admission {
    key_state_t *ks; /* counted here (NULL: in Redis) */
    int64_t tokens_reserved;
    int64_t micros_reserved;
    /* Redis */
    yr_limits_t *l;
    int64_t key_id;
    char member[48];
    yr_admit_cb cb;
    void *arg;
    bool pending, cancelled;
    bool remote; /* counted in Redis: released there */
    yr_admit_req_t req; /* for the local fallback when Redis fails mid-way */
    yr_key_info_t key;
};

static int admit_local(yr_limits_t *l, const yr_admit_req_t *req, yr_admission_t **adm,
                       yr_admit_res_t *res);

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static key_state_t **table; /* MAX_KEYS * 2 slots, open addressing; entries never freed */
static size_t table_n;
static bool table_full_logged;

int yr_limits_init(yr_limits_t **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void yr_limits_free(yr_limits_t *l)
{
    free(l);
}

int64_t yr_limits_day(int64_t t)
{
    return t / 86400;
}

int64_t yr_limits_month(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    return (int64_t)tm.tm_year * 12 + tm.tm_mon;
}

int64_t yr_limits_window_left_s(int budget, int64_t t)
{
    if (budget == YR_BUDGET_DAY)
        return 86400 - t % 86400;
    if (budget == YR_BUDGET_MONTH) {
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_mon++;
        return (int64_t)timegm(&tm) - t;
    }
    return -1; /* a total budget never resets */
}

static int64_t window_of(int budget, int64_t t)
{
    return budget == YR_BUDGET_DAY ? yr_limits_day(t) : budget == YR_BUDGET_MONTH ? yr_limits_month(t) : 0;
}

/* The key's counters, found or added (the first time: its spend from the
 * lookup). NULL when the table is full or memory ran out. */
static key_state_t *state_of(const yr_key_info_t *k, int64_t now_s)
{
    const size_t cap = (size_t)MAX_KEYS * 2;
    key_state_t *found = NULL;
    pthread_mutex_lock(&table_mu);
    if (table == NULL)
        table = calloc(cap, sizeof(*table));
    if (table == NULL)
        goto out;
    size_t i = (size_t)((uint64_t)k->id * 0x9e3779b97f4a7c15ull >> 32) & (cap - 1);
    for (; table[i] != NULL; i = (i + 1) & (cap - 1)) {
        if (table[i]->key_id == k->id) {
            found = table[i];
            goto out;
        }
    }
    if (table_n >= MAX_KEYS) {
        if (!table_full_logged)
            yr_log_warn("limits: more than %d keys with limits; others go unlimited", MAX_KEYS);
        table_full_logged = true;
        goto out;
    }
    found = calloc(1, sizeof(*found));
    if (found == NULL)
        goto out;
    pthread_mutex_init(&found->mu, NULL);
    found->key_id = k->id;
    for (int b = 0; b < YR_BUDGET__COUNT; b++) {
        found->window[b] = window_of(b, now_s);
        found->spent[b] = k->spent_micros[b];
    }
    table[i] = found;
    table_n++;
out:
    pthread_mutex_unlock(&table_mu);
    return found;
}

/* Under ks->mu: what the sliding minute holds. */
static int64_t sum_req(const key_state_t *ks, int64_t now_s, int64_t *oldest_s)
{
    int64_t n = 0;
    *oldest_s = now_s;
    for (int i = 0; i < WINDOW_S; i++) {
        if (ks->req[i] > 0 && now_s - ks->req_sec[i] < WINDOW_S) {
            n += ks->req[i];
            if (ks->req_sec[i] < *oldest_s)
                *oldest_s = ks->req_sec[i];
        }
    }
    return n;
}

static int64_t sum_tok(const key_state_t *ks, int64_t now_s, int64_t *oldest_s)
{
    int64_t n = 0;
    *oldest_s = now_s;
    for (int i = 0; i < WINDOW_S; i++) {
        if (ks->tok[i] > 0 && now_s - ks->tok_sec[i] < WINDOW_S) {
            n += ks->tok[i];
            if (ks->tok_sec[i] < *oldest_s)
                *oldest_s = ks->tok_sec[i];
        }
    }
    return n;
}

static void add_req(key_state_t *ks, int64_t now_s)
{
    int i = (int)(now_s % WINDOW_S);
    if (ks->req_sec[i] != now_s) {
        ks->req_sec[i] = now_s;
        ks->req[i] = 0;
    }
    ks->req[i]++;
}

static void add_tok(key_state_t *ks, int64_t now_s, int64_t n)
{
    int i = (int)(now_s % WINDOW_S);
    if (ks->tok_sec[i] != now_s) {
        ks->tok_sec[i] = now_s;
        ks->tok[i] = 0;
    }
    ks->tok[i] += n;
}

static int64_t clamp0(int64_t v)
{
    return v > 0 ? v : 0;
}

#define MAX_ESTIMATE 100000000 /* tokens: no request can use more; keeps the sums exact */

/* Tokens a request may use: its prompt estimate and max_tokens, capped. */
static int64_t estimate(const yr_admit_req_t *req)
{
    int64_t in = clamp0(req->input_tokens), out = clamp0(req->max_tokens);
    in = in > MAX_ESTIMATE ? MAX_ESTIMATE : in;
    out = out > MAX_ESTIMATE ? MAX_ESTIMATE : out;
    return in + out;
}

static int admit_local(yr_limits_t *l, const yr_admit_req_t *req, yr_admission_t **adm,
                       yr_admit_res_t *res)
{
    *adm = NULL;
    *res = (yr_admit_res_t){.retry_after_ms = -1};
    const yr_key_info_t *k = req->who.key;
    if (req->who.master || k == NULL) {
        l->admitted++;
        return 0;
    }
    const yr_key_policy_t *p = &k->policy;
    bool budgets = p->budget_micros[0] > 0 || p->budget_micros[1] > 0 || p->budget_micros[2] > 0;
    if (p->rpm <= 0 && p->tpm <= 0 && p->max_concurrency <= 0 && !budgets) {
        l->admitted++;
        return 0;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_s = ts.tv_sec, now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    key_state_t *ks = state_of(k, now_s);
    if (ks == NULL) {
        l->admitted++;
        return 0;
    }
    yr_admission_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    int64_t est = estimate(req);
    int rc = 0;
    pthread_mutex_lock(&ks->mu);
    int64_t oldest_req, oldest_tok;
    int64_t nreq = sum_req(ks, now_s, &oldest_req);
    int64_t ntok = sum_tok(ks, now_s, &oldest_tok) + ks->tok_reserved;
    /* the ms until the oldest second leaves the sliding minute */
    int64_t req_reset = (oldest_req + WINDOW_S) * 1000 - now_ms;
    int64_t tok_reset = (oldest_tok + WINDOW_S) * 1000 - now_ms;
    if (p->rpm > 0)
        res->requests = (yr_limit_state_t){p->rpm, clamp0(p->rpm - nreq - 1), clamp0(req_reset)};
    if (p->tpm > 0)
        res->tokens = (yr_limit_state_t){p->tpm, clamp0(p->tpm - ntok - est), clamp0(tok_reset)};
    for (int b = 0; b < YR_BUDGET__COUNT; b++) {
        int64_t w = window_of(b, now_s);
        if (ks->window[b] != w) { /* a new day or month: nothing spent in it yet */
            ks->window[b] = w;
            ks->spent[b] = 0;
        }
    }
    if (p->max_concurrency > 0 && ks->inflight >= p->max_concurrency) {
        rc = -EAGAIN;
        res->limit = "concurrency";
        res->retry_after_ms = 1000;
    } else if (p->rpm > 0 && nreq >= p->rpm) {
        rc = -EAGAIN;
        res->limit = "rpm";
        res->retry_after_ms = clamp0(req_reset);
        res->requests.remaining = 0;
    } else if (p->tpm > 0 && ntok > 0 && ntok + est > p->tpm) {
        /* (a request alone larger than the limit still goes through when
         * nothing else is counted: it could never be admitted otherwise) */
        rc = -EAGAIN;
        res->limit = "tpm";
        res->retry_after_ms = clamp0(tok_reset);
        res->tokens.remaining = 0;
    } else {
        static const char *const names[] = {"budget_day", "budget_month", "budget_total"};
        for (int b = 0; b < YR_BUDGET__COUNT && rc == 0; b++) {
            int64_t cap = p->budget_micros[b];
            if (cap <= 0)
                continue;
            /* Refused when what is spent and reserved already reaches the
             * budget, or this request's maximum would pass it while others
             * are in flight: the overspend is at most one request's. */
            int64_t committed = ks->spent[b] + ks->reserved_micros;
            if (committed >= cap ||
                (ks->inflight > 0 && committed + req->max_cost_micros > cap)) {
                rc = -EAGAIN;
                res->limit = names[b];
                int64_t left = yr_limits_window_left_s(b, now_s);
                res->retry_after_ms = committed >= cap ? (left > 0 ? left * 1000 : -1) : 1000;
            }
        }
    }
    if (rc == 0) {
        add_req(ks, now_s);
        ks->inflight++;
        ks->tok_reserved += est;
        ks->reserved_micros += clamp0(req->max_cost_micros);
        a->ks = ks;
        a->tokens_reserved = est;
        a->micros_reserved = clamp0(req->max_cost_micros);
    }
    pthread_mutex_unlock(&ks->mu);
    if (rc != 0) {
        free(a);
        return rc;
    }
    l->admitted++;
    a->l = NULL; /* local */
    *adm = a;
    return 0;
}

/* ---- shared through Redis ------------------------------------------------ */

/* KEYS: 1 request times (zset), 2 token uses (zset "member:n"), 3 requests
 * in flight (zset of "member:tokens:micros" scored by when the entry
 * expires: the request's deadline, so a release lost to an outage or a
 * crashed instance stops counting then), 4..6 spent this day / month /
 * ever. ARGV: now_ms, rpm, tpm, max_concurrency, estimate, max_cost, budgets
 * day/month/total, spent at lookup day/month/total, member, seconds left in
 * the day / month, the in-flight entry's expiry (ms). The same rules as
 * admit_local. Returns {code, retry_ms, requests in the minute, tokens in
 * the minute, budget}: code 0 admitted, 1 concurrency, 2 rpm, 3 tpm, 4
 * budget (1..3). */
static const char admit_lua[] =
    "local now=tonumber(ARGV[1]) local rpm,tpm,mc=tonumber(ARGV[2]),tonumber(ARGV[3]),"
    "tonumber(ARGV[4]) local est,cost=tonumber(ARGV[5]),tonumber(ARGV[6])\n"
    "redis.call('ZREMRANGEBYSCORE',KEYS[1],'-inf',now-60000)\n"
    "redis.call('ZREMRANGEBYSCORE',KEYS[2],'-inf',now-60000)\n"
    "redis.call('ZREMRANGEBYSCORE',KEYS[3],'-inf',now)\n"
    "local nreq=redis.call('ZCARD',KEYS[1])\n"
    "local inf=redis.call('ZRANGE',KEYS[3],0,-1)\n"
    "local inflight=#inf local ntok,reserved=0,0\n"
    "for _,m in ipairs(inf) do local t,c=string.match(m,':(%d+):(%d+)$') "
    "ntok=ntok+tonumber(t) reserved=reserved+tonumber(c) end\n"
    "for _,m in ipairs(redis.call('ZRANGE',KEYS[2],0,-1)) do "
    "ntok=ntok+tonumber(string.match(m,':(%d+)$')) end\n"
    "local function oldest(k) local o=redis.call('ZRANGE',k,0,0,'WITHSCORES') "
    "if o[2] then return tonumber(o[2])+60000-now end return 0 end\n"
    "if mc>0 and inflight>=mc then return {1,1000,nreq,ntok,0} end\n"
    "if rpm>0 and nreq>=rpm then return {2,oldest(KEYS[1]),nreq,ntok,0} end\n"
    "if tpm>0 and ntok>0 and ntok+est>tpm then return {3,oldest(KEYS[2]),nreq,ntok,0} end\n"
    "local ttl={tonumber(ARGV[14]),tonumber(ARGV[15]),0}\n"
    "for i=1,3 do local cap=tonumber(ARGV[6+i]) if cap>0 then\n"
    " if ttl[i]>0 then redis.call('SET',KEYS[3+i],ARGV[9+i],'NX','EX',ttl[i]+60)\n"
    " else redis.call('SET',KEYS[3+i],ARGV[9+i],'NX') end\n"
    " local committed=tonumber(redis.call('GET',KEYS[3+i]))+reserved\n"
    " if committed>=cap or (inflight>0 and committed+cost>cap) then\n"
    "  if committed>=cap then return {4,ttl[i]*1000,nreq,ntok,i} end return {4,1000,nreq,ntok,i} end\n"
    "end end\n"
    "redis.call('ZADD',KEYS[1],now,ARGV[13]) redis.call('PEXPIRE',KEYS[1],61000)\n"
    "redis.call('ZADD',KEYS[3],tonumber(ARGV[16]),ARGV[13]..':'..est..':'..cost)\n"
    "redis.call('PEXPIREAT',KEYS[3],tonumber(ARGV[16]))\n"
    "return {0,0,nreq+1,ntok+est,0}\n";

/* KEYS as above. ARGV: now_ms, the in-flight entry ("member:tokens:micros"),
 * tokens used, cost, member. */
static const char release_lua[] =
    "redis.call('ZREM',KEYS[3],ARGV[2])\n"
    "local used=tonumber(ARGV[3]) if used>0 then "
    "redis.call('ZADD',KEYS[2],tonumber(ARGV[1]),ARGV[5]..':'..used) "
    "redis.call('PEXPIRE',KEYS[2],61000) end\n"
    "local c=tonumber(ARGV[4]) if c>0 then for i=1,3 do "
    "if redis.call('EXISTS',KEYS[3+i])==1 then redis.call('INCRBY',KEYS[3+i],c) end end end\n"
    "return 0\n";

int yr_limits_use_redis(yr_limits_t *l, uv_loop_t *loop, const char *url)
{
    unsigned char r[8];
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL || fread(r, 1, sizeof(r), f) != sizeof(r)) {
        if (f != NULL)
            fclose(f);
        return -EIO;
    }
    fclose(f);
    memcpy(&l->instance, r, sizeof(r));
    return yr_redis_init(loop, url, &l->redis);
}

void yr_limits_close(yr_limits_t *l)
{
    if (l != NULL && l->redis != NULL) {
        yr_redis_close(l->redis);
        l->redis = NULL;
    }
}

typedef struct {
    char keys[6][96];
    char argv[16][48];
    char entry[112];
    const char *args[24];
} rargs_t;

/* The key's Redis keys; the {id} hash tag keeps them in one cluster slot. */
static void redis_keys(rargs_t *a, int64_t key_id, int64_t now_s)
{
    static const char *const names[3] = {"req", "tok", "inf"};
    for (int i = 0; i < 3; i++)
        snprintf(a->keys[i], sizeof(a->keys[i]), "yr:k:{%lld}:%s", (long long)key_id, names[i]);
    snprintf(a->keys[3], sizeof(a->keys[3]), "yr:k:{%lld}:spent:d%lld", (long long)key_id,
             (long long)yr_limits_day(now_s));
    snprintf(a->keys[4], sizeof(a->keys[4]), "yr:k:{%lld}:spent:m%lld", (long long)key_id,
             (long long)yr_limits_month(now_s));
    snprintf(a->keys[5], sizeof(a->keys[5]), "yr:k:{%lld}:spent:t", (long long)key_id);
    for (int i = 0; i < 6; i++)
        a->args[i] = a->keys[i];
}

static void on_admit_reply(void *arg, int status, const int64_t *v, size_t n)
{
    yr_admission_t *a = arg;
    a->pending = false;
    yr_admit_res_t res = {.retry_after_ms = -1};
    if (a->cancelled) {
        if (status == 0 && n >= 1 && v[0] == 0)
            yr_limits_release(a->l, a, NULL, 0); /* admitted for nobody: give it back */
        else
            free(a);
        return;
    }
    if (status < 0 || n < 5) {
        /* Redis failed under this request: count it here instead */
        yr_admission_t *local = NULL;
        a->req.who.key = &a->key;
        int rc = admit_local(a->l, &a->req, &local, &res);
        if (rc == 0 && local != NULL) {
            a->ks = local->ks;
            a->tokens_reserved = local->tokens_reserved;
            a->micros_reserved = local->micros_reserved;
            free(local);
        }
        yr_admit_cb cb = a->cb;
        void *cbarg = a->arg;
        a->remote = false;
        if (rc != 0)
            free(a); /* refused: the caller never releases it */
        cb(cbarg, rc, &res);
        return;
    }
    const yr_key_policy_t *p = &a->key.policy;
    int64_t code = v[0];
    if (p->rpm > 0)
        res.requests = (yr_limit_state_t){p->rpm, p->rpm > v[2] ? p->rpm - v[2] : 0,
                                          v[1] > 0 ? v[1] : 0};
    if (p->tpm > 0)
        res.tokens = (yr_limit_state_t){p->tpm, p->tpm > v[3] ? p->tpm - v[3] : 0,
                                        v[1] > 0 ? v[1] : 0};
    static const char *const budgets[] = {"budget_day", "budget_month", "budget_total"};
    static const char *const names[] = {NULL, "concurrency", "rpm", "tpm"};
    int rc = 0;
    if (code != 0) {
        rc = -EAGAIN;
        res.limit = code == 4 && v[4] >= 1 && v[4] <= 3 ? budgets[v[4] - 1]
                    : code >= 1 && code <= 3             ? names[code]
                                                         : "rate";
        res.retry_after_ms = v[1] > 0 ? v[1] : -1;
        if (code == 2)
            res.requests.remaining = 0;
        if (code == 3)
            res.tokens.remaining = 0;
    }
    yr_admit_cb cb = a->cb;
    void *cbarg = a->arg;
    if (rc != 0)
        free(a);
    else
        a->l->admitted++;
    cb(cbarg, rc, &res);
}

int yr_limits_admit(yr_limits_t *l, const yr_admit_req_t *req, yr_admit_cb cb, void *arg,
                    yr_admission_t **adm, yr_admit_res_t *res)
{
    const yr_key_info_t *k = req->who.key;
    if (l->redis == NULL || !yr_redis_ready(l->redis) || cb == NULL || req->who.master ||
        k == NULL)
        return admit_local(l, req, adm, res);
    const yr_key_policy_t *p = &k->policy;
    if (p->rpm <= 0 && p->tpm <= 0 && p->max_concurrency <= 0 && p->budget_micros[0] <= 0 &&
        p->budget_micros[1] <= 0 && p->budget_micros[2] <= 0)
        return admit_local(l, req, adm, res);
    yr_admission_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_s = ts.tv_sec, now_ms = now_s * 1000 + ts.tv_nsec / 1000000;
    *a = (yr_admission_t){.l = l, .key_id = k->id, .cb = cb, .arg = arg, .pending = true,
                          .remote = true, .req = *req, .key = *k};
    a->tokens_reserved = estimate(req);
    a->micros_reserved = clamp0(req->max_cost_micros);
    snprintf(a->member, sizeof(a->member), "%016llx.%llu", (unsigned long long)l->instance,
             (unsigned long long)++l->seq);
    rargs_t ra;
    redis_keys(&ra, k->id, now_s);
    const int64_t nums[] = {now_ms,
                            p->rpm,
                            p->tpm,
                            p->max_concurrency,
                            a->tokens_reserved,
                            a->micros_reserved,
                            p->budget_micros[0],
                            p->budget_micros[1],
                            p->budget_micros[2],
                            k->spent_micros[0],
                            k->spent_micros[1],
                            k->spent_micros[2]};
    for (int i = 0; i < 12; i++) {
        snprintf(ra.argv[i], sizeof(ra.argv[i]), "%lld", (long long)nums[i]);
        ra.args[6 + i] = ra.argv[i];
    }
    ra.args[18] = a->member;
    snprintf(ra.argv[12], sizeof(ra.argv[12]), "%lld",
             (long long)yr_limits_window_left_s(YR_BUDGET_DAY, now_s));
    snprintf(ra.argv[13], sizeof(ra.argv[13]), "%lld",
             (long long)yr_limits_window_left_s(YR_BUDGET_MONTH, now_s));
    /* the in-flight entry stops counting at the request's deadline */
    int64_t deadline_ms = req->deadline_ms > 0 ? req->deadline_ms : 600000;
    snprintf(ra.argv[14], sizeof(ra.argv[14]), "%lld", (long long)(now_ms + deadline_ms + 5000));
    ra.args[19] = ra.argv[12];
    ra.args[20] = ra.argv[13];
    ra.args[21] = ra.argv[14];
    if (yr_redis_eval(l->redis, admit_lua, 6, ra.args, 22, on_admit_reply, a) < 0) {
        free(a);
        return admit_local(l, req, adm, res);
    }
    *adm = a;
    *res = (yr_admit_res_t){.retry_after_ms = -1};
    return 1;
}

void yr_limits_cancel(yr_limits_t *l, yr_admission_t *adm)
{
    (void)l;
    if (adm != NULL && adm->pending)
        adm->cancelled = true; /* the reply frees it (and gives back what it got) */
}

void yr_limits_release(yr_limits_t *l, yr_admission_t *adm, const yr_usage_t *used,
                       int64_t cost_micros)
{
    (void)l;
    if (adm == NULL)
        return;
    if (adm->remote) {
        /* counted in Redis: settle there, fire and forget (lost if Redis is
         * away: the reservations expire with their keys) */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rargs_t ra;
        redis_keys(&ra, adm->key_id, ts.tv_sec);
        int64_t tokens =
            used != NULL ? clamp0(used->prompt_tokens) + clamp0(used->completion_tokens) : 0;
        snprintf(ra.argv[0], sizeof(ra.argv[0]), "%lld",
                 (long long)((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
        snprintf(ra.entry, sizeof(ra.entry), "%s:%lld:%lld", adm->member,
                 (long long)adm->tokens_reserved, (long long)adm->micros_reserved);
        snprintf(ra.argv[1], sizeof(ra.argv[1]), "%lld", (long long)tokens);
        snprintf(ra.argv[2], sizeof(ra.argv[2]), "%lld", (long long)clamp0(cost_micros));
        ra.args[6] = ra.argv[0];
        ra.args[7] = ra.entry;
        ra.args[8] = ra.argv[1];
        ra.args[9] = ra.argv[2];
        ra.args[10] = adm->member;
        if (yr_redis_eval(adm->l->redis, release_lua, 6, ra.args, 11, NULL, NULL) < 0)
            yr_log_debug("limits: a release did not reach redis");
        free(adm);
        return;
    }
    key_state_t *ks = adm->ks;
    if (ks == NULL) { /* nothing was counted (a key without limits) */
        free(adm);
        return;
    }
    int64_t now_s = (int64_t)time(NULL);
    pthread_mutex_lock(&ks->mu);
    ks->inflight--;
    ks->tok_reserved -= adm->tokens_reserved;
    ks->reserved_micros -= adm->micros_reserved;
    int64_t tokens = used != NULL ? clamp0(used->prompt_tokens) + clamp0(used->completion_tokens) : 0;
    if (tokens > 0)
        add_tok(ks, now_s, tokens);
    if (cost_micros > 0) {
        for (int b = 0; b < YR_BUDGET__COUNT; b++) {
            int64_t w = window_of(b, now_s);
            if (ks->window[b] != w) {
                ks->window[b] = w;
                ks->spent[b] = 0;
            }
            ks->spent[b] += cost_micros;
        }
    }
    pthread_mutex_unlock(&ks->mu);
    free(adm);
}

/* '*' matches any run; iterative with one backtrack point (no recursion). */
static bool glob(const char *pat, size_t plen, yr_str_t s, bool icase)
{
    size_t p = 0, i = 0, star = SIZE_MAX, mark = 0;
    while (i < s.len) {
        char a = p < plen ? pat[p] : '\0', b = s.ptr[i];
        if (icase && a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (icase && b >= 'A' && b <= 'Z')
            b = (char)(b - 'A' + 'a');
        if (p < plen && pat[p] == '*') {
            star = p++;
            mark = i;
        } else if (p < plen && a == b) {
            p++;
            i++;
        } else if (star != SIZE_MAX) {
            p = star + 1;
            i = ++mark;
        } else {
            return false;
        }
    }
    while (p < plen && pat[p] == '*')
        p++;
    return p == plen;
}

static bool list_allows(const char *list, yr_str_t v, bool icase)
{
    if (list[0] == '\0')
        return true;
    for (const char *c = list; *c != '\0';) {
        size_t n = strcspn(c, ",");
        const char *start = c;
        size_t len = n;
        while (len > 0 && *start == ' ') {
            start++;
            len--;
        }
        while (len > 0 && start[len - 1] == ' ')
            len--;
        if (len > 0 && glob(start, len, v, icase))
            return true;
        c += n;
        if (*c == ',')
            c++;
    }
    return false;
}

bool yr_key_allows_model(const yr_key_policy_t *p, yr_str_t model)
{
    return p == NULL || list_allows(p->allowed_models, model, false);
}

bool yr_key_allows_vendor(const yr_key_policy_t *p, yr_str_t vendor)
{
    return p == NULL || list_allows(p->allowed_vendors, vendor, true);
}

void yr_limits_reset_all(void)
{
    pthread_mutex_lock(&table_mu);
    if (table != NULL) {
        for (size_t i = 0; i < (size_t)MAX_KEYS * 2; i++) {
            if (table[i] != NULL) {
                pthread_mutex_destroy(&table[i]->mu);
                free(table[i]);
            }
        }
        free(table);
        table = NULL;
    }
    table_n = 0;
    table_full_logged = false;
    pthread_mutex_unlock(&table_mu);
}
