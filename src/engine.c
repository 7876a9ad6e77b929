/*
** engine.c
** Asynchronous HTTP client: one libcurl multi handle driven by libuv
** (multi-socket API). One uv_poll_t per socket via curl_multi_assign,
** one uv_timer_t for curl's timeouts, a FIFO for requests beyond the
** in-flight limit. See reference/c-lua-engineering.md section 1.3 for
** the pitfalls this file is shaped around.
*/
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "gigstack.h"

struct buf {
  char *p;
  size_t len, cap;
};

struct gs_engine {
  uv_timer_t timer;           /* first member: closes free the engine */
  uv_loop_t *loop;
  CURLM *multi;
  struct gs_engine_opts opts;
  struct gs_request *queue_head, *queue_tail;  /* waiting for a slot */
  struct gs_request *active;                   /* on the wire */
  int ninflight, nqueued;
  int closing;
};

struct gs_request {
  struct gs_engine *e;
  struct gs_request *prev, *next;   /* in queue or active list */
  CURL *easy;
  struct curl_slist *hdrs;
  char *body;
  size_t body_len;
  struct buf head, resp;
  int too_large;
  gs_done_fn done;
  void *ud;
  char errbuf[CURL_ERROR_SIZE];
};

struct sock_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  struct gs_engine *e;
};

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

static void request_free (struct gs_request *r) {
  if (r->easy) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->hdrs);
  free(r->body);
  free(r->head.p);
  free(r->resp.p);
  free(r);
}

/* ===== libcurl data callbacks (pure C, no engine calls) ===== */

static size_t on_body (char *p, size_t size, size_t n, void *ud) {
  struct gs_request *r = ud;
  size_t len = size * n;
  if (r->resp.len + len > r->e->opts.max_response) {
    r->too_large = 1;
    return 0;  /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  return buf_add(&r->resp, p, len) == 0 ? len : 0;
}

static size_t on_header (char *p, size_t size, size_t n, void *ud) {
  struct gs_request *r = ud;
  size_t len = size * n;
  /* a new status line starts the block over (100-continue, redirects) */
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) r->head.len = 0;
  if (r->head.len + len > 256 * 1024) return 0;
  return buf_add(&r->head, p, len) == 0 ? len : 0;
}

/* ===== completion ===== */

static void start_queued (struct gs_engine *e);

static void finish (struct gs_engine *e, struct gs_request *r,
                    CURLcode code) {
  struct gs_response res;
  double elapsed = 0;
  long status = 0, connects = 0;
  memset(&res, 0, sizeof res);
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &elapsed);
  curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &connects);
  curl_multi_remove_handle(e->multi, r->easy);
  list_remove(&e->active, r);
  e->ninflight--;
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
  res.body = r->resp.p ? r->resp.p : "";
  res.body_len = r->resp.len;
  res.elapsed = elapsed;
  res.new_connections = connects;
  r->done(r, &res, r->ud);
  request_free(r);
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
  if (status < 0) flags = CURL_CSELECT_ERR;  /* pitfall 6: pass errors on */
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
    if (s) {
      /* stop and close now: the fd number may be reused at once */
      uv_poll_stop(&s->poll);
      uv_close((uv_handle_t *)&s->poll, on_sock_close);
      curl_multi_assign(e->multi, fd, NULL);
    }
    return 0;
  }
  if (!s) {
    s = malloc(sizeof *s);
    if (!s) return -1;
    s->fd = fd;
    s->e = e;
    if (uv_poll_init_socket(e->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->poll.data = s;
    curl_multi_assign(e->multi, fd, s);
  }
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
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
  e->multi = curl_multi_init();
  if (!e->multi || uv_timer_init(loop, &e->timer) != 0) {
    if (e->multi) curl_multi_cleanup(e->multi);
    free(e);
    return NULL;
  }
  curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
  curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
  curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
  curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
  curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS,
                    (long)e->opts.max_inflight);
  return e;
}

static int setup_easy (struct gs_engine *e, struct gs_request *r,
                       const struct gs_request_spec *spec) {
  CURL *c = r->easy;
  size_t i;
  long connect_ms = spec->connect_timeout_ms > 0 ? spec->connect_timeout_ms
                                                 : e->opts.connect_timeout_ms;
  long total_ms = spec->timeout_ms > 0 ? spec->timeout_ms
                                       : e->opts.timeout_ms;
  for (i = 0; i < spec->nheaders; i++) {
    struct curl_slist *n = curl_slist_append(r->hdrs, spec->headers[i]);
    if (!n) return -1;
    r->hdrs = n;
  }
  /* no "Expect: 100-continue" round trip on POST bodies */
  {
    struct curl_slist *n = curl_slist_append(r->hdrs, "Expect:");
    if (!n) return -1;
    r->hdrs = n;
  }
  curl_easy_setopt(c, CURLOPT_URL, spec->url);
  curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (strcmp(spec->method, "GET") == 0) {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(spec->method, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, spec->method);
  }
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

struct gs_request *gs_engine_submit (struct gs_engine *e,
                                     const struct gs_request_spec *spec,
                                     gs_done_fn done, void *ud) {
  struct gs_request *r;
  if (e->closing || !spec || !spec->url || !done || !method_ok(spec->method))
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
  r->easy = curl_easy_init();
  if (!r->easy || setup_easy(e, r, spec) != 0) goto fail;
  queue_push(e, r);
  start_queued(e);
  return r;
fail:
  request_free(r);
  return NULL;
}

static void start_queued (struct gs_engine *e) {
  while (e->queue_head && e->ninflight < e->opts.max_inflight) {
    struct gs_request *r = e->queue_head;
    queue_remove(e, r);
    list_push(&e->active, r);
    e->ninflight++;
    if (curl_multi_add_handle(e->multi, r->easy) != CURLM_OK) {
      struct gs_response res;
      list_remove(&e->active, r);
      e->ninflight--;
      memset(&res, 0, sizeof res);
      res.error = CURLE_FAILED_INIT;
      res.error_msg = "could not start the transfer";
      res.headers = res.body = "";
      r->done(r, &res, r->ud);
      request_free(r);
    }
  }
}

void gs_request_cancel (struct gs_request *r) {
  struct gs_engine *e = r->e;
  int active = 0;
  struct gs_request *it;
  for (it = e->active; it; it = it->next)
    if (it == r) { active = 1; break; }
  if (active) {
    curl_multi_remove_handle(e->multi, r->easy);
    list_remove(&e->active, r);
    e->ninflight--;
  } else {
    queue_remove(e, r);
  }
  request_free(r);
  if (!e->closing) start_queued(e);
}

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
  curl_multi_cleanup(e->multi);
  e->multi = NULL;
  uv_timer_stop(&e->timer);
  uv_close((uv_handle_t *)&e->timer, on_engine_close);
}
