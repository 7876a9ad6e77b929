/*
** gigstack.h
** Public C API of libgigstack: an asynchronous HTTP client engine
** (libcurl multi-socket on libuv) and a small HTTP/1.1 server
** (uv_tcp + llhttp). Everything else in src/ is static.
**
** Threading: none. Every function must be called on the thread that
** runs the uv loop the object was created on. Callbacks run inside
** libuv callbacks: they must not call back into Lua or block.
*/
#ifndef gigstack_h
#define gigstack_h

#include <stddef.h>
#include <uv.h>

#define GS_VERSION "0.1.0"

/*
** {======================================================
** HTTP client engine
** =======================================================
*/
struct gs_engine;
struct gs_request;

struct gs_engine_opts {
  int max_inflight;          /* transfers on the wire at once; 0: 64 */
  long connect_timeout_ms;   /* default per request; 0: 10000 */
  long timeout_ms;           /* default total per request; 0: 60000 */
  size_t max_response;       /* body cap in bytes; 0: 64 MiB */
};

/* Retry policy. Zero fields take the defaults in brackets. */
struct gs_retry_policy {
  int max_retries;              /* extra attempts [2]; -1: none */
  long base_ms;                 /* first backoff [500] */
  long cap_ms;                  /* largest backoff [5000] */
  long max_retry_after_ms;      /* longest Retry-After honoured [60000] */
};

/* One part of a multipart/form-data body (curl mime). A file part is
** read streaming from `path` while it is sent (and again on a retry);
** otherwise `data` (copied at submit). */
struct gs_part {
  const char *name;             /* form field name */
  const char *filename;         /* NULL: path's base name, or none for data */
  const char *type;             /* Content-Type of the part; NULL: none */
  const char *path;             /* file to stream; NULL: use data */
  const char *data;
  size_t data_len;
};

struct gs_request_spec {
  const char *method;           /* "GET", "POST", ... */
  const char *url;
  const char *const *headers;   /* "Name: value" lines */
  size_t nheaders;
  const char *body;             /* may be NULL */
  size_t body_len;
  long connect_timeout_ms;      /* 0: engine default */
  long timeout_ms;              /* per attempt; 0: engine default */
  long deadline_ms;             /* all attempts and sleeps; 0: none */
  int idempotent;               /* may be resent when the outcome is unknown */
  struct gs_retry_policy retry;
  size_t max_response;          /* body cap in bytes; 0: engine default */
  const char *ca_file;          /* PEM CA bundle for TLS; NULL: system store */
  const struct gs_part *parts;  /* multipart/form-data body when nparts > 0;
                                   body must then be NULL */
  size_t nparts;
  int fresh_connect;            /* never on a reused connection: libcurl
                                   silently resends on a reused connection
                                   that died, which a non-idempotent request
                                   must not risk (implied for any method
                                   but GET/HEAD when !idempotent) */
};

/* Did the server possibly see the request? Drives which failures may
** be retried: NOT_SENT always, UNKNOWN only for idempotent requests. */
enum gs_sent { GS_NOT_SENT = 0, GS_SENT_UNKNOWN = 1, GS_SENT = 2 };

#define GS_MAX_ATTEMPTS 32

struct gs_attempt {
  long status;                  /* 0 when no HTTP response */
  int error;                    /* CURLcode */
  int sent;                     /* enum gs_sent */
  double duration;              /* seconds on the wire */
  double slept;                 /* backoff before this attempt, seconds */
};

struct gs_response {
  long status;              /* 0 when no HTTP response arrived */
  int error;                /* 0, or a CURLcode */
  const char *error_msg;    /* set when error != 0 */
  const char *headers;      /* raw header block of the final response */
  size_t headers_len;
  const char *body;
  size_t body_len;
  char **own_body;          /* the callback may take *own_body (malloc'd,
                               NUL-terminated, body_len bytes; free it) by
                               setting it to NULL; NULL when no buffer */
  double elapsed;           /* seconds of the last attempt */
  long new_connections;     /* 0 when a kept-alive connection was reused */
  int sent;                 /* enum gs_sent of the last attempt */
  int deadline_hit;         /* stopped by deadline_ms */
  long retry_after_ms;      /* last Retry-After seen, -1 if none */
  const struct gs_attempt *attempts;   /* nattempts records, never NULL */
  int nattempts;
};

/* Called once per request unless it was cancelled; res and its
** buffers are valid only during the call. */
typedef void (*gs_done_fn) (struct gs_request *req,
                            const struct gs_response *res, void *ud);

struct gs_engine *gs_engine_new (uv_loop_t *loop,
                                 const struct gs_engine_opts *opts);
/* NULL on invalid spec or out of memory; requests beyond max_inflight
** wait in a FIFO queue. Failed attempts are retried per spec->retry:
** "never sent" network errors always; 429 always (after Retry-After,
** capped); 500/502/503/504 and "outcome unknown" errors only when
** spec->idempotent. Backoff is exponential with equal jitter. */
struct gs_request *gs_engine_submit (struct gs_engine *e,
                                     const struct gs_request_spec *spec,
                                     gs_done_fn done, void *ud);
/* Stop a request; its done callback is never called. */
void gs_request_cancel (struct gs_request *req);
int gs_engine_inflight (const struct gs_engine *e);
void gs_engine_set_max_inflight (struct gs_engine *e, int n);
int gs_engine_max_inflight (const struct gs_engine *e);
int gs_engine_queued (const struct gs_engine *e);
/* Cancel everything and close the engine's handles. Memory is released
** from close callbacks: run the loop afterwards. */
void gs_engine_close (struct gs_engine *e);
/* }====================================================== */


/*
** {======================================================
** HTTP/1.1 server
** =======================================================
*/
struct gs_server;
struct gs_http_req;

struct gs_server_opts {
  const char *host;          /* NULL: 127.0.0.1 */
  int port;                  /* 0: the OS picks one */
  size_t max_body;           /* 0: 1 MiB; larger bodies get 413 */
  size_t max_header;         /* 0: 16 KiB of request line and headers, each
                                header charged 64 bytes besides its name and
                                value; larger heads get 431 */
  unsigned idle_timeout_ms;  /* 0: 30000; idle keep-alive connections close */
  unsigned header_timeout_ms;  /* 0: 10000; from a connection's first byte (or
                                  its accept) to the end of the headers; bytes
                                  arriving never extend it; 408 and close */
  unsigned body_timeout_ms;    /* 0: 30000; end of headers to end of body */
  unsigned write_timeout_ms;   /* 0: 30000; a queued response not taken by
                                  the client in this time closes it */
  size_t max_connections;      /* 0: half the fd limit, at most 1000; at the
                                  cap a new client evicts the connection that
                                  has waited longest without a request */
  size_t max_headers;          /* 0: 100; more get 431 */
  size_t max_response;         /* 0 (or more): 2 GiB - 1; a larger response
                                  body gets a 500 and the connection closes */
  /* A request that waits for "100 Continue" (Expect: 100-continue) is shown
  ** to expect_check with its head only: 0 lets the body come, any other
  ** value is answered at once (401, 403, ...) and the body is never read.
  ** Runs inside the parser: no Lua, no blocking. NULL: always 0. */
  int (*expect_check) (const struct gs_http_req *req, void *ud);
  void *expect_ud;
};

/* Counters since the server started; connections is the current count. */
struct gs_server_stats {
  size_t connections, accepted, evicted, refused;
  size_t header_timeouts, body_timeouts, write_timeouts, idle_closed;
};

/* A complete request arrived. The callee owns req and must call
** gs_http_respond (or gs_http_abort) exactly once, now or later. */
typedef void (*gs_serve_fn) (struct gs_server *s, struct gs_http_req *req,
                             void *ud);

/* NULL on failure, with a negative libuv error code in *err. */
struct gs_server *gs_server_new (uv_loop_t *loop,
                                 const struct gs_server_opts *opts,
                                 gs_serve_fn serve, void *ud, int *err);
int gs_server_port (const struct gs_server *s);
void gs_server_get_stats (const struct gs_server *s, struct gs_server_stats *st);
/* Stop listening and close every connection; memory is released from
** close callbacks. Requests already handed out stay valid. */
void gs_server_close (struct gs_server *s);

const char *gs_http_method (const struct gs_http_req *req);
const char *gs_http_target (const struct gs_http_req *req);
size_t gs_http_nheaders (const struct gs_http_req *req);
/* Header i (0-based): name lower-cased, value as received. */
void gs_http_header (const struct gs_http_req *req, size_t i,
                     const char **name, const char **value);
const char *gs_http_body (const struct gs_http_req *req, size_t *len);
/* the client's address, "127.0.0.1:54321" or "[::1]:54321" */
const char *gs_http_peer (const struct gs_http_req *req);
/* Send a response and free req. headers are "Name: value" lines;
** Content-Length and Connection are added. Returns 0 or a negative
** libuv error (the client had gone: req is freed anyway). */
int gs_http_respond (struct gs_http_req *req, int status,
                     const char *const *headers, size_t nheaders,
                     const char *body, size_t body_len);
/* Like gs_http_respond, but announce body_len bytes, send only send_len
** of them and hang up: a truncated response, for fault injection. */
int gs_http_respond_truncated (struct gs_http_req *req, int status,
                               const char *const *headers, size_t nheaders,
                               const char *body, size_t body_len,
                               size_t send_len);
/* Drop the connection without a response (hard reset) and free req. */
void gs_http_abort (struct gs_http_req *req);
/* }====================================================== */

#endif
