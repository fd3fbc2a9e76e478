/* Per-key limits in this process (limits.h). */
#include "limits/limits.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

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
};

struct yr_admission {
    key_state_t *ks;
    int64_t tokens_reserved;
    int64_t micros_reserved;
};

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

int yr_limits_admit(yr_limits_t *l, const yr_admit_req_t *req, yr_admit_cb cb, void *arg,
                    yr_admission_t **adm, yr_admit_res_t *res)
{
    (void)cb;
    (void)arg;
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
    int64_t est = clamp0(req->input_tokens) + (req->max_tokens > 0 ? req->max_tokens : 0);
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
    *adm = a;
    return 0;
}

void yr_limits_cancel(yr_limits_t *l, yr_admission_t *adm)
{
    /* Admission is synchronous here: nothing is ever pending. */
    (void)l;
    (void)adm;
}

void yr_limits_release(yr_limits_t *l, yr_admission_t *adm, const yr_usage_t *used,
                       int64_t cost_micros)
{
    (void)l;
    if (adm == NULL)
        return;
    key_state_t *ks = adm->ks;
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
