/*
** engine.c
** Asynchronous HTTP client: one libcurl multi handle driven by libuv
** (multi-socket API). One uv_poll_t per socket via curl_multi_assign,
** one uv_timer_t for curl's timeouts, a FIFO for requests beyond the
** in-flight limit. See reference/c-lua-engineering.md section 1.3 for
** the pitfalls this file is shaped around.
*/
#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "curl_lazy.h"

#include "gigstack.h"

struct buf {
  char *p;
  size_t len, cap;
};

/* Easy handles kept for reuse: curl_easy_init allocates and initialises
** several kilobytes per request; curl_easy_reset is cheaper. */
#define EASY_POOL 256

#define RECV_BUFFER 2048L      /* CURLOPT_BUFFERSIZE: see setup_easy */

struct gs_engine {
  uv_timer_t timer;           /* first member: closes free the engine */
  uv_loop_t *loop;
  CURLM *multi;
  struct gs_engine_opts opts;
  struct gs_request *queue_head, *queue_tail;  /* waiting for a slot */
  struct gs_request *active;                   /* on the wire */
  struct gs_request *sleeping;                 /* backing off before a retry */
  int ninflight, nqueued;
  int closing;
  uint64_t rng;                                /* jitter */
  struct sock_ctx **socks;                     /* by fd: a socket's poll handle, */
  size_t nsocks;                               /*   kept while the socket lives */
  CURL *pool[EASY_POOL];                       /* easy handles of finished requests */
  int npool;
};

enum req_state { QUEUED, ACTIVE, SLEEPING };

struct gs_request {
  struct gs_engine *e;
  struct gs_request *prev, *next;   /* in queue or active list */
  CURL *easy;
  struct curl_slist *hdrs;
  curl_mime *mime;                  /* multipart body, or NULL */
  char *body;
  size_t body_len;
  struct buf head, resp;
  int too_large;
  size_t max_response;
  int state;
  int idempotent;
  struct gs_retry_policy retry;
  long timeout_ms;
  uint64_t deadline;                /* uv_now() ms, 0: none */
  uv_timer_t *backoff;              /* while SLEEPING */
  double slept;                     /* backoff before the next attempt */
  struct gs_attempt *attempts;       /* grown as attempts end: a request on
                                    ** the wire holds none (1 KB inline) */
  int nattempts;
  gs_done_fn done;
  void *ud;
  char errbuf[CURL_ERROR_SIZE];
};

struct sock_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  struct gs_engine *e;
};

/* The poll handle of socket fd, made once per socket: curl removes a
** kept-alive socket from its interest set after every transfer and adds it
** back for the next, and a handle made and closed each time cost an
** allocation, an ioctl and epoll calls per request. */
static struct sock_ctx *sock_for (struct gs_engine *e, curl_socket_t fd) {
  struct sock_ctx *s;
  if (fd < 0) return NULL;
  if ((size_t)fd >= e->nsocks) {
    size_t n = e->nsocks ? e->nsocks : 64, i;
    struct sock_ctx **p;
    while (n <= (size_t)fd) n *= 2;
    p = realloc(e->socks, n * sizeof *p);
    if (!p) return NULL;
    for (i = e->nsocks; i < n; i++) p[i] = NULL;
    e->socks = p;
    e->nsocks = n;
  }
  if ((s = e->socks[fd]) != NULL) return s;
  s = malloc(sizeof *s);
  if (!s) return NULL;
  s->fd = fd;
  s->e = e;
  if (uv_poll_init_socket(e->loop, &s->poll, fd) != 0) {
    free(s);
    return NULL;
  }
  s->poll.data = s;
  e->socks[fd] = s;
  return s;
}

static int buf_add (struct buf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    char *np;
    while (cap < b->len + n + 1) cap *= 2;
    np = realloc(b->p, cap);
    if (!np) return -1;
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

/* ===== request lists ===== */

static void list_push (struct gs_request **head, struct gs_request *r) {
  r->prev = NULL;
  r->next = *head;
  if (*head) (*head)->prev = r;
  *head = r;
}

static void list_remove (struct gs_request **head, struct gs_request *r) {
  if (r->prev) r->prev->next = r->next;
  else *head = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

static void queue_push (struct gs_engine *e, struct gs_request *r) {
  r->next = NULL;
  r->prev = e->queue_tail;
  if (e->queue_tail) e->queue_tail->next = r;
  else e->queue_head = r;
  e->queue_tail = r;
  e->nqueued++;
}

static void queue_remove (struct gs_engine *e, struct gs_request *r) {
  if (r->prev) r->prev->next = r->next;
  else e->queue_head = r->next;
  if (r->next) r->next->prev = r->prev;
  else e->queue_tail = r->prev;
  r->prev = r->next = NULL;
  e->nqueued--;
}

static void on_backoff_closed (uv_handle_t *h) {
  free(h);
}

static void request_free (struct gs_request *r) {
  if (r->backoff) {
    uv_timer_stop(r->backoff);
    uv_close((uv_handle_t *)r->backoff, on_backoff_closed);
  }
  if (r->easy) {
    /* out of the multi by now (finish, cancel) or never added (queued) */
    struct gs_engine *e = r->e;
    if (!e->closing && e->npool < EASY_POOL) {
      curl_easy_reset(r->easy);     /* drops every option, the mime too */
      e->pool[e->npool++] = r->easy;
    } else {
      curl_easy_cleanup(r->easy);
    }
  }
  curl_mime_free(r->mime);          /* after the easy handle that uses it */
  free(r->hdrs);                    /* one block: see header_list */
  free(r->body);
  free(r->head.p);
  free(r->resp.p);
  free(r->attempts);
  free(r);
}

/* ===== libcurl data callbacks (pure C, no engine calls) ===== */

/* Grow b to hold need bytes: double, but never past limit + 1, so a
** response at the cap costs about the cap, not twice it. */
static int buf_reserve (struct buf *b, size_t need, size_t limit) {
  size_t cap;
  char *np;
  if (need <= b->cap) return 0;
  cap = b->cap ? b->cap : 1024;
  while (cap < need) cap *= 2;
  if (limit < SIZE_MAX && cap > limit + 1) cap = limit + 1 > need ? limit + 1 : need;
  np = realloc(b->p, cap);
  if (!np) return -1;
  b->p = np;
  b->cap = cap;
  return 0;
}

static size_t on_body (char *p, size_t size, size_t n, void *ud) {
  struct gs_request *r = ud;
  size_t len = size * n;
  if (r->resp.len + len > r->max_response) {
    r->too_large = 1;
    return 0;  /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  if (r->resp.cap == 0) {
    /* a declared length within the cap sizes the buffer once */
    curl_off_t cl = -1;
    if (curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK
        && cl > 0 && (curl_off_t)len <= cl && (uint64_t)cl <= r->max_response
        && buf_reserve(&r->resp, (size_t)cl + 1, r->max_response) != 0)
      return 0;
  }
  if (buf_reserve(&r->resp, r->resp.len + len + 1, r->max_response) != 0)
    return 0;
  memcpy(r->resp.p + r->resp.len, p, len);
  r->resp.len += len;
  r->resp.p[r->resp.len] = '\0';
  return len;
}

static size_t on_header (char *p, size_t size, size_t n, void *ud) {
  struct gs_request *r = ud;
  size_t len = size * n;
  /* a new status line starts the block over (100-continue, redirects) */
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) r->head.len = 0;
  if (r->head.len + len > 256 * 1024) return 0;
  return buf_add(&r->head, p, len) == 0 ? len : 0;
}

/* ===== completion and retries ===== */

static void start_queued (struct gs_engine *e);

static uint64_t next_random (struct gs_engine *e) {
  e->rng ^= e->rng << 13;
  e->rng ^= e->rng >> 7;
  e->rng ^= e->rng << 17;
  return e->rng;
}

/* Retry-After: delta-seconds or an HTTP date; -1 when absent. */
static long retry_after_ms (const char *head) {
  const char *p = head;
  while (p && *p) {
    if (strncasecmp(p, "retry-after:", 12) == 0) {
      char value[128];
      size_t n = 0;
      p += 12;
      while (*p == ' ' || *p == '\t') p++;
      while (p[n] && p[n] != '\r' && p[n] != '\n' && n < sizeof value - 1) {
        value[n] = p[n];
        n++;
      }
      value[n] = '\0';
      if (n > 0 && isdigit((unsigned char)value[0])) {
        char *end;
        long v = strtol(value, &end, 10);
        return v < 0 ? 0 : (v > 86400 ? 86400000L : v * 1000L);
      } else {
        time_t t = curl_getdate(value, NULL);
        if (t < 0) return -1;
        t -= time(NULL);
        return t <= 0 ? 0 : (t > 86400 ? 86400000L : (long)t * 1000L);
      }
    }
    p = strchr(p, '\n');
    if (p) p++;
  }
  return -1;
}

/* Could the server have seen this attempt? */
static int classify_sent (CURL *easy, CURLcode code) {
  curl_off_t connect_us = 0;
  long request_size = 0;
  if (code == CURLE_OK) return GS_SENT;
  curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_us);
  curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_size);
  if (code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_CONNECT
      || code == CURLE_COULDNT_RESOLVE_PROXY || connect_us == 0
      || request_size == 0)
    return GS_NOT_SENT;
  return GS_SENT_UNKNOWN;
}

static int retryable_error (CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT: case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: case CURLE_PARTIAL_FILE:
      return 1;
    default:
      return 0;
  }
}

/* Backoff in ms before retry number n (1-based), equal jitter [d/2, d]. */
static long backoff_ms (struct gs_engine *e, const struct gs_retry_policy *p,
                        int n) {
  long d = p->base_ms;
  int i;
  for (i = 1; i < n && d < p->cap_ms; i++) d *= 2;
  if (d > p->cap_ms) d = p->cap_ms;
  return d / 2 + (long)(next_random(e) % (uint64_t)(d / 2 + 1));
}

static const struct gs_attempt no_attempts;   /* attempts of a request never started */

static void report (struct gs_engine *e, struct gs_request *r,
                    CURLcode code, long status, int sent, long ra,
                    int deadline_hit, double elapsed, long connects) {
  struct gs_response res;
  (void)e;
  memset(&res, 0, sizeof res);
  res.status = code == CURLE_OK ? status : 0;
  res.error = (int)code;
  if (code != CURLE_OK) {
    if (r->too_large)
      res.error_msg = "response body exceeds the client's size limit";
    else
      res.error_msg = r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
  }
  res.headers = r->head.p ? r->head.p : "";
  res.headers_len = r->head.len;
  /* hand over a buffer no larger than its contents */
  if (r->resp.p && r->resp.cap > r->resp.len + 1 + 4096) {
    char *np = realloc(r->resp.p, r->resp.len + 1);
    if (np) { r->resp.p = np; r->resp.cap = r->resp.len + 1; }
  }
  res.body = r->resp.p ? r->resp.p : "";
  res.body_len = r->resp.len;
  res.own_body = &r->resp.p;
  res.elapsed = elapsed;
  res.new_connections = connects;
  res.sent = sent;
  res.deadline_hit = deadline_hit;
  res.retry_after_ms = ra;
  /* never NULL for the callback, even before any attempt was made */
  res.attempts = r->attempts ? r->attempts : &no_attempts;
  res.nattempts = r->nattempts;
  r->done(r, &res, r->ud);
  request_free(r);
}

static void on_backoff (uv_timer_t *t) {
  struct gs_request *r = t->data;
  struct gs_engine *e = r->e;
  r->backoff = NULL;
  uv_close((uv_handle_t *)t, on_backoff_closed);
  list_remove(&e->sleeping, r);
  queue_push(e, r);
  r->state = QUEUED;
  start_queued(e);
}

static void finish (struct gs_engine *e, struct gs_request *r,
                    CURLcode code) {
  double elapsed = 0;
  long status = 0, connects = 0, ra = -1, wait = -1;
  int sent, retry = 0, deadline_hit = 0;
  uint64_t now = uv_now(e->loop);
  struct gs_attempt *a, lost;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &elapsed);
  curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &connects);
  sent = classify_sent(r->easy, code);
  curl_multi_remove_handle(e->multi, r->easy);
  list_remove(&e->active, r);
  e->ninflight--;
  if (code != CURLE_OK) status = 0;
  a = realloc(r->attempts, sizeof *a * (size_t)(r->nattempts + 1));
  if (a) {
    r->attempts = a;
    a = &r->attempts[r->nattempts++];
  } else {
    a = &lost;                      /* out of memory: unrecorded, and no retry */
  }
  a->status = status;
  a->error = (int)code;
  a->sent = sent;
  a->duration = elapsed;
  a->slept = r->slept;
  r->slept = 0;
  if (code == CURLE_OK) {
    ra = retry_after_ms(r->head.p);
    if (status == 429) retry = 1;
    else if (status == 500 || status == 502 || status == 503 || status == 504)
      retry = r->idempotent;
    if (retry && ra > r->retry.max_retry_after_ms) retry = 0;
  } else if (!r->too_large && retryable_error(code)) {
    retry = sent == GS_NOT_SENT || r->idempotent;
  }
  if (retry && a != &lost && r->nattempts <= r->retry.max_retries
      && r->nattempts < GS_MAX_ATTEMPTS && !e->closing) {
    wait = backoff_ms(e, &r->retry, r->nattempts);
    if (ra > wait) wait = ra;
    if (r->deadline && now + (uint64_t)wait >= r->deadline) {
      deadline_hit = 1;
      wait = -1;
    }
  }
  if (wait >= 0) {
    r->backoff = malloc(sizeof *r->backoff);
    if (r->backoff && uv_timer_init(e->loop, r->backoff) == 0) {
      r->backoff->data = r;
      r->slept = (double)wait / 1000.0;
      r->head.len = r->resp.len = 0;
      r->too_large = 0;
      r->errbuf[0] = '\0';
      r->state = SLEEPING;
      list_push(&e->sleeping, r);
      uv_timer_start(r->backoff, on_backoff, (uint64_t)wait, 0);
      return;
    }
    free(r->backoff);
    r->backoff = NULL;
  }
  report(e, r, code, status, sent, ra, deadline_hit, elapsed, connects);
}

/* Always drained after every socket_action, the timer path included
** (pitfall 5: a guarded drain leaks timed-out transfers). */
static void drain (struct gs_engine *e) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(e->multi, &left))) {
    if (msg->msg == CURLMSG_DONE) {
      CURL *easy = msg->easy_handle;   /* msg dies with remove_handle */
      CURLcode code = msg->data.result;
      struct gs_request *r = NULL;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
      finish(e, r, code);
    }
  }
  start_queued(e);
}

/* ===== libuv side ===== */

static void on_sock_close (uv_handle_t *h) {
  free(h->data);
}

static void on_poll (uv_poll_t *h, int status, int events) {
  struct sock_ctx *s = h->data;
  struct gs_engine *e = s->e;
  int flags = 0, running;
  /* On a poll error let curl read the socket itself: it then sees the
  ** ECONNRESET and may retry a dead kept-alive connection, which
  ** CURL_CSELECT_ERR (reference pitfall 6) prevents on curl 7.88. */
  if (status < 0) flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
  else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  /* s may be closed during this call; it is freed only in close_cb */
  curl_multi_socket_action(e->multi, s->fd, flags, &running);
  drain(e);
}

static void on_timer (uv_timer_t *t) {
  struct gs_engine *e = (struct gs_engine *)t;
  int running;
  curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  drain(e);
}

static int curl_socket_cb (CURL *easy, curl_socket_t fd, int what,
                           void *userp, void *socketp) {
  struct gs_engine *e = userp;
  struct sock_ctx *s = socketp;
  int events = 0;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    /* the socket may stay in curl's connection cache: stop watching it,
    ** keep the handle for its next transfer (closed in close_socket_cb) */
    if (s) uv_poll_stop(&s->poll);
    return 0;
  }
  if (!s) {
    s = sock_for(e, fd);
    if (!s) return -1;
    curl_multi_assign(e->multi, fd, s);
  }
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

/* curl closes a socket: close its poll handle first (that takes the fd
** out of epoll at once), then the socket; the fd number may be reused as
** soon as close returns. */
static int close_socket_cb (void *clientp, curl_socket_t fd) {
  struct gs_engine *e = clientp;
  if (fd >= 0 && (size_t)fd < e->nsocks && e->socks[fd]) {
    struct sock_ctx *s = e->socks[fd];
    e->socks[fd] = NULL;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_sock_close);
  }
  return close(fd);
}

static int curl_timer_cb (CURLM *multi, long ms, void *userp) {
  struct gs_engine *e = userp;
  (void)multi;
  if (ms < 0) uv_timer_stop(&e->timer);        /* pitfall 4 */
  else uv_timer_start(&e->timer, on_timer, (uint64_t)ms, 0);  /* 0: next turn */
  return 0;
}

/* ===== public API ===== */

struct gs_engine *gs_engine_new (uv_loop_t *loop,
                                 const struct gs_engine_opts *opts) {
  struct gs_engine *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  if (opts) e->opts = *opts;
  if (e->opts.max_inflight <= 0) e->opts.max_inflight = 64;
  if (e->opts.connect_timeout_ms <= 0) e->opts.connect_timeout_ms = 10000;
  if (e->opts.timeout_ms <= 0) e->opts.timeout_ms = 60000;
  if (e->opts.max_response == 0) e->opts.max_response = 64u << 20;
  e->loop = loop;
  e->rng = uv_hrtime() | 1;
  if (uv_timer_init(loop, &e->timer) != 0) {
    free(e);
    return NULL;
  }
  return e;
}

/* libcurl and the multi handle come with the first request: a program
** that never sends one never loads libcurl (see curl_lazy.h). */
static int engine_ready (struct gs_engine *e) {
  if (e->multi) return 0;
  if (gsl_curl_open() != 0) return -1;
  e->multi = curl_multi_init();
  if (!e->multi) return -1;
  curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
  curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
  curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
  curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
  curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS,
                    (long)e->opts.max_inflight);
  return 0;
}

/* A multipart/form-data body: curl streams file parts from disk as it
** sends them (and rewinds them on a retry); data parts are copied. */
static int setup_mime (struct gs_request *r,
                       const struct gs_request_spec *spec) {
  size_t i;
  r->mime = curl_mime_init(r->easy);
  if (!r->mime) return -1;
  for (i = 0; i < spec->nparts; i++) {
    const struct gs_part *p = &spec->parts[i];
    curl_mimepart *part = curl_mime_addpart(r->mime);
    if (!part || !p->name || curl_mime_name(part, p->name) != CURLE_OK)
      return -1;
    if (p->path) {
      if (curl_mime_filedata(part, p->path) != CURLE_OK) return -1;
    } else if (curl_mime_data(part, p->data ? p->data : "",
                              p->data ? p->data_len : 0) != CURLE_OK) {
      return -1;
    }
    if (p->filename && curl_mime_filename(part, p->filename) != CURLE_OK)
      return -1;
    if (p->type && curl_mime_type(part, p->type) != CURLE_OK) return -1;
  }
  curl_easy_setopt(r->easy, CURLOPT_MIMEPOST, r->mime);
  return 0;
}

/* The header lines as one allocation: the nodes, then the strings.
** curl only walks the list; curl_slist_append costs two mallocs a line,
** ~100 bytes each with their headers, held while the request waits.
** "Expect:" ends it: no 100-continue round trip on POST bodies. */
static int header_list (struct gs_request *r,
                        const struct gs_request_spec *spec) {
  static const char expect[] = "Expect:";
  size_t n = spec->nheaders + 1, size = n * sizeof(struct curl_slist), i;
  struct curl_slist *nodes;
  char *p;
  for (i = 0; i < spec->nheaders; i++) size += strlen(spec->headers[i]) + 1;
  size += sizeof expect;
  nodes = malloc(size);
  if (!nodes) return -1;
  p = (char *)(nodes + n);
  for (i = 0; i < n; i++) {
    const char *line = i < spec->nheaders ? spec->headers[i] : expect;
    size_t len = strlen(line) + 1;
    memcpy(p, line, len);
    nodes[i].data = p;
    nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
    p += len;
  }
  r->hdrs = nodes;
  return 0;
}

static int setup_easy (struct gs_engine *e, struct gs_request *r,
                       const struct gs_request_spec *spec) {
  CURL *c = r->easy;
  long connect_ms = spec->connect_timeout_ms > 0 ? spec->connect_timeout_ms
                                                 : e->opts.connect_timeout_ms;
  long total_ms = spec->timeout_ms > 0 ? spec->timeout_ms
                                       : e->opts.timeout_ms;
  if (header_list(r, spec) != 0) return -1;
  curl_easy_setopt(c, CURLOPT_URL, spec->url);
  curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  r->timeout_ms = total_ms;   /* set per attempt, cut by the deadline */
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
  curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, e);
  /* PIPEWAIT only where HTTP/2 can be negotiated: on cleartext HTTP/1.1
  ** curl 7.88 parks a waiting transfer, timeout unenforced, until an
  ** unrelated one finishes. */
  if (strncmp(spec->url, "https:", 6) == 0)
    curl_easy_setopt(c, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  /* curl mallocs its receive buffer (16 KB by default) when the transfer
  ** starts, and with neighbours on its pages it costs ~4 KB of RSS per
  ** request waiting for an answer; 2 KB costs 2 KB and, on the bench's
  ** 3 KB payload, no measurable CPU (1 KB saved another KB but cost ~5%
  ** CPU per request in extra reads). */
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, RECV_BUFFER);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  /* peer and host verification stay on (curl's default); a CA file
  ** adds trust, it never turns verification off */
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (spec->ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, spec->ca_file);
  /* libcurl silently resends a request whose reused connection died
  ** before any answer: a write that may not be repeated never takes one,
  ** whatever the caller asked (found by regression_spec) */
  if (spec->fresh_connect || (!spec->idempotent && strcmp(spec->method, "GET") != 0
                              && strcmp(spec->method, "HEAD") != 0))
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
  r->max_response = spec->max_response ? spec->max_response : e->opts.max_response;
  if (strcmp(spec->method, "GET") == 0 && !r->body) {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(spec->method, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, spec->method);
  }
  if (spec->nparts > 0) return setup_mime(r, spec);
  if (r->body || strcmp(spec->method, "POST") == 0
      || strcmp(spec->method, "PUT") == 0) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)r->body_len);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body ? r->body : "");
  }
  return 0;
}

static int method_ok (const char *m) {
  size_t i, n = m ? strlen(m) : 0;
  if (n == 0 || n > 16) return 0;
  for (i = 0; i < n; i++)
    if (m[i] < 'A' || m[i] > 'Z') return 0;
  return 1;
}

/* Put r on the wire with this attempt's timeout; -1 if curl refused. */
static int activate (struct gs_engine *e, struct gs_request *r, long timeout) {
  curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout);
  r->state = ACTIVE;
  list_push(&e->active, r);
  e->ninflight++;
  if (curl_multi_add_handle(e->multi, r->easy) != CURLM_OK) {
    list_remove(&e->active, r);
    e->ninflight--;
    return -1;
  }
  return 0;
}

struct gs_request *gs_engine_submit (struct gs_engine *e,
                                     const struct gs_request_spec *spec,
                                     gs_done_fn done, void *ud) {
  struct gs_request *r;
  if (e->closing || !spec || !spec->url || !done || !method_ok(spec->method)
      || (spec->nparts > 0 && (!spec->parts || spec->body))
      || engine_ready(e) != 0)
    return NULL;
  r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->e = e;
  r->done = done;
  r->ud = ud;
  if (spec->body) {
    r->body = malloc(spec->body_len + 1);
    if (!r->body) goto fail;
    memcpy(r->body, spec->body, spec->body_len);
    r->body[spec->body_len] = '\0';
    r->body_len = spec->body_len;
  }
  r->idempotent = spec->idempotent;
  r->retry = spec->retry;
  if (r->retry.max_retries == 0) r->retry.max_retries = 2;
  else if (r->retry.max_retries < 0) r->retry.max_retries = 0;
  if (r->retry.base_ms <= 0) r->retry.base_ms = 500;
  if (r->retry.cap_ms <= 0) r->retry.cap_ms = 5000;
  if (r->retry.cap_ms < r->retry.base_ms) r->retry.cap_ms = r->retry.base_ms;
  if (r->retry.max_retry_after_ms <= 0) r->retry.max_retry_after_ms = 60000;
  if (spec->deadline_ms > 0) {
    uv_update_time(e->loop);   /* the deadline counts from now, not the last loop turn */
    r->deadline = uv_now(e->loop) + (uint64_t)spec->deadline_ms;
  }
  r->easy = e->npool ? e->pool[--e->npool] : curl_easy_init();
  if (!r->easy || setup_easy(e, r, spec) != 0) goto fail;
  if (e->ninflight < e->opts.max_inflight && !e->queue_head) {
    /* start now; a failure is returned, never reported through done */
    if (activate(e, r, r->timeout_ms) != 0) goto fail;
    return r;
  }
  r->state = QUEUED;
  queue_push(e, r);
  return r;
fail:
  request_free(r);
  return NULL;
}

static void start_queued (struct gs_engine *e) {
  while (e->queue_head && e->ninflight < e->opts.max_inflight) {
    struct gs_request *r = e->queue_head;
    long timeout = r->timeout_ms;
    queue_remove(e, r);
    if (r->deadline) {
      uint64_t now = uv_now(e->loop);
      if (now >= r->deadline) {
        snprintf(r->errbuf, sizeof r->errbuf, "deadline reached after %d attempt%s",
                 r->nattempts, r->nattempts == 1 ? "" : "s");
        report(e, r, CURLE_OPERATION_TIMEDOUT, 0,
               r->nattempts ? r->attempts[r->nattempts - 1].sent : GS_NOT_SENT,
               -1, 1, 0, 0);
        continue;
      }
      if ((uint64_t)timeout > r->deadline - now) timeout = (long)(r->deadline - now);
    }
    if (activate(e, r, timeout) != 0) {
      snprintf(r->errbuf, sizeof r->errbuf, "could not start the transfer");
      report(e, r, CURLE_FAILED_INIT, 0, GS_NOT_SENT, -1, 0, 0, 0);
    }
  }
}

void gs_request_cancel (struct gs_request *r) {
  struct gs_engine *e = r->e;
  if (r->state == ACTIVE) {
    curl_multi_remove_handle(e->multi, r->easy);
    list_remove(&e->active, r);
    e->ninflight--;
  } else if (r->state == SLEEPING) {
    list_remove(&e->sleeping, r);
  } else {
    queue_remove(e, r);
  }
  request_free(r);
  if (!e->closing) start_queued(e);
}

/* Raise or lower the number of transfers on the wire at once (and the
** connection cache with it); queued requests start at once if allowed. */
void gs_engine_set_max_inflight (struct gs_engine *e, int n) {
  if (n <= 0) return;
  e->opts.max_inflight = n;
  if (e->multi) curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)n);
  start_queued(e);
}

int gs_engine_max_inflight (const struct gs_engine *e) { return e->opts.max_inflight; }

int gs_engine_inflight (const struct gs_engine *e) { return e->ninflight; }
int gs_engine_queued (const struct gs_engine *e) { return e->nqueued; }

static void on_engine_close (uv_handle_t *h) {
  free(h);  /* the timer is the engine's first member */
}

/* Shutdown order (pitfall 11): transfers out, multi cleanup (fires the
** REMOVEs that close the polls), then the timer; the caller runs the
** loop to flush the close callbacks. */
void gs_engine_close (struct gs_engine *e) {
  e->closing = 1;
  while (e->queue_head) gs_request_cancel(e->queue_head);
  while (e->active) gs_request_cancel(e->active);
  while (e->sleeping) gs_request_cancel(e->sleeping);
  if (e->multi)   /* closes the cached sockets through close_socket_cb */
    curl_multi_cleanup(e->multi);
  e->multi = NULL;
  {
    /* handles of sockets curl closed without the callback (none expected) */
    size_t i;
    for (i = 0; i < e->nsocks; i++)
      if (e->socks[i]) {
        uv_close((uv_handle_t *)&e->socks[i]->poll, on_sock_close);
        e->socks[i] = NULL;
      }
    free(e->socks);
    e->socks = NULL;
    e->nsocks = 0;
  }
  while (e->npool) curl_easy_cleanup(e->pool[--e->npool]);
  uv_timer_stop(&e->timer);
  uv_close((uv_handle_t *)&e->timer, on_engine_close);
}
