/* yourouter-sim: argv, the event loop, signals and the request router.
 *
 *   yourouter-sim [--listen HOST:PORT] [--require-key KEY] [--quiet]
 *                 [--verbose] [--no-record]
 *
 * Prints exactly one line, "listening on HOST:PORT", to stdout once it
 * accepts connections, and exits 0 on SIGTERM or SIGINT after closing every
 * connection and freeing everything (so ASan's leak check stays quiet). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/log.h"
#include "sim.h"

typedef struct {
    char host[256];
    uint16_t port;
    const char *require_key;
    bool quiet, verbose, record;
    uint32_t rl_limit, rl_window_ms;
} sim_args_t;

static void usage(FILE *f)
{
    fputs("usage: yourouter-sim [--listen HOST:PORT] [--require-key KEY] [--quiet] [--verbose]\n"
          "                     [--no-record]\n"
          "  --listen HOST:PORT  address to bind (default 127.0.0.1:0, an ephemeral port)\n"
          "  --require-key KEY   require this API key (OpenAI: Authorization: Bearer KEY;\n"
          "                      Anthropic: x-api-key: KEY; Azure: api-key: KEY)\n"
          "  --quiet             log only errors\n"
          "  --verbose           log every request\n"
          "  --no-record         do not record requests (for benchmarks)\n"
          "  --rate-limit N/MS   at most N chat requests per API key per MS-millisecond\n"
          "                      window; answers carry x-ratelimit-*-requests, beyond: 429\n"
          "  --aws-credentials AK:SECRET\n"
          "                      Bedrock: verify SigV4 signatures made with these keys\n",
          f);
}

/* "HOST:PORT", "[V6]:PORT" or ":PORT" (loopback). */
static int parse_listen(const char *s, sim_args_t *a)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL)
        return -EINVAL;
    const char *h = s;
    size_t hlen = (size_t)(colon - s);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0) {
        h = "127.0.0.1";
        hlen = strlen(h);
    }
    uint64_t port;
    if (hlen >= sizeof(a->host) || yr_str_to_u64(yr_str(colon + 1), 65535, &port) < 0)
        return -EINVAL;
    memcpy(a->host, h, hlen);
    a->host[hlen] = '\0';
    a->port = (uint16_t)port;
    return 0;
}

static int parse_args(int argc, char **argv, sim_args_t *a)
{
    memcpy(a->host, "127.0.0.1", sizeof("127.0.0.1"));
    a->port = 0;
    a->record = true;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(arg, "--listen") == 0 && has_value) {
            if (parse_listen(argv[++i], a) < 0) {
                fprintf(stderr, "yourouter-sim: invalid --listen '%s' (want HOST:PORT)\n", argv[i]);
                return -EINVAL;
            }
        } else if (strcmp(arg, "--require-key") == 0 && has_value) {
            a->require_key = argv[++i];
        } else if (strcmp(arg, "--quiet") == 0) {
            a->quiet = true;
        } else if (strcmp(arg, "--verbose") == 0) {
            a->verbose = true;
        } else if (strcmp(arg, "--rate-limit") == 0 && has_value) {
            yr_str_t v = yr_str(argv[++i]);
            const char *slash = memchr(v.ptr, '/', v.len);
            uint64_t n = 0, ms = 0;
            if (slash == NULL ||
                yr_str_to_u64((yr_str_t){v.ptr, (size_t)(slash - v.ptr)}, 1000000, &n) < 0 ||
                yr_str_to_u64((yr_str_t){slash + 1, v.len - (size_t)(slash - v.ptr) - 1}, 86400000,
                              &ms) < 0 ||
                n == 0 || ms == 0) {
                fprintf(stderr, "yourouter-sim: invalid --rate-limit '%s' (want N/MS)\n", argv[i]);
                return -EINVAL;
            }
            a->rl_limit = (uint32_t)n;
            a->rl_window_ms = (uint32_t)ms;
        } else if (strcmp(arg, "--aws-credentials") == 0 && has_value) {
            if (sim_bedrock_credentials(argv[++i]) < 0) {
                fprintf(stderr, "yourouter-sim: invalid --aws-credentials (want AK:SECRET)\n");
                return -EINVAL;
            }
        } else if (strcmp(arg, "--no-record") == 0) {
            a->record = false;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "yourouter-sim: unknown or incomplete argument '%s'\n", arg);
            usage(stderr);
            return -EINVAL;
        }
    }
    return 0;
}

/* Many concurrent streams need many descriptors: take the hard limit. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- routing ------------------------------------------------------------------- */

static void on_request(yr_http_req_t *req)
{
    sim_t *sim = yr_http_server_ctx(req->server);
    if (yr_str_eq(req->path, YR_STR("/_sim")) || yr_str_has_prefix(req->path, YR_STR("/_sim/")))
        sim_control(sim, req);
    else if (!sim_vertex_request(sim, req)) /* the OAuth token endpoint */
        sim_exchange_start(sim, req);
}

/* ---- shutdown --------------------------------------------------------------------- */

typedef struct {
    sim_t *sim;
    uv_signal_t sigterm, sigint;
} sim_main_t;

static void on_server_closed(yr_http_server_t *server)
{
    /* Nothing: the server is freed once uv_run() returned, when no callback
     * can reach it any more. */
}

static void on_signal(uv_signal_t *h, int signum)
{
    sim_main_t *m = h->data;
    sim_t *sim = m->sim;
    if (sim->stopping)
        return;
    sim->stopping = true;
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
    uv_close((uv_handle_t *)&sim->wait_check, NULL);
    /* Hanging and streaming requests would keep a graceful shutdown waiting
     * forever: drop every connection now (their exchanges count as aborted). */
    yr_http_server_shutdown(sim->server, on_server_closed);
    yr_http_server_kill_all(sim->server);
}

int main(int argc, char **argv)
{
    sim_args_t args = {0};
    if (parse_args(argc, argv, &args) < 0)
        return 2;
    yr_log_set_level(args.quiet ? YR_LOG_ERROR : YR_LOG_INFO);
    signal(SIGPIPE, SIG_IGN); /* a client that went away is an EPIPE, not a signal */
    raise_fd_limit();

    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc < 0) {
        yr_log_error("uv_loop_init: %s", uv_strerror(rc));
        return 1;
    }
    static sim_t sim;
    sim.loop = &loop;
    sim.require_key = args.require_key ? yr_str(args.require_key) : YR_STR_NULL;
    sim.verbose = args.verbose;
    sim.record = args.record;
    sim.rl_limit = args.rl_limit;
    sim.rl_window_ms = args.rl_window_ms;
    yr_buf_init(&sim.scratch, SIM_MAX_RESPONSE);
    sim_main_t m = {.sim = &sim};
    int exit_code = 1;
    if (sim_control_init(&sim) < 0) {
        yr_log_error("out of memory");
        goto out;
    }
    yr_http_opts_t opts = {
        .max_body = SIM_MAX_BODY,
        .on_request = on_request,
        .on_error = sim_on_http_error,
        .ctx = &sim,
    };
    rc = yr_http_listen(&loop, args.host, args.port, false, &opts, &sim.server);
    if (rc < 0) {
        yr_log_error("cannot listen on %s:%u: %s", args.host, (unsigned)args.port, uv_strerror(rc));
        uv_close((uv_handle_t *)&sim.wait_check, NULL);
        uv_run(&loop, UV_RUN_DEFAULT); /* lets the failed listener close */
        goto out;
    }
    uv_signal_init(&loop, &m.sigterm);
    uv_signal_init(&loop, &m.sigint);
    m.sigterm.data = m.sigint.data = &m;
    uv_signal_start(&m.sigterm, on_signal, SIGTERM);
    uv_signal_start(&m.sigint, on_signal, SIGINT);

    /* The address actually bound: http.c binds "localhost" as 127.0.0.1. */
    const char *shown = strcmp(args.host, "localhost") == 0 ? "127.0.0.1" : args.host;
    bool v6 = strchr(shown, ':') != NULL;
    printf("listening on %s%s%s:%u\n", v6 ? "[" : "", shown, v6 ? "]" : "",
           (unsigned)yr_http_server_port(sim.server));
    fflush(stdout);

    uv_run(&loop, UV_RUN_DEFAULT);
    yr_http_server_free(sim.server);
    sim.server = NULL;
    exit_code = 0;
out:
    sim_control_shutdown(&sim);
    yr_buf_free(&sim.scratch);
    rc = uv_loop_close(&loop);
    if (rc < 0)
        yr_log_warn("uv_loop_close: %s", uv_strerror(rc));
    return exit_code;
}
