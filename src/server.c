/*
** server.c
** HTTP/1.1 server on uv_tcp + llhttp: keep-alive, one request at a
** time per connection (pipelined bytes wait in the parser), body and
** header limits answered with 413/431. Used by the emulator and the
** webhook listeners, so it assumes hostile clients:
**  - one timer per connection whose meaning follows the phase: a fixed
**    header deadline from the first byte (never re-armed by more bytes,
**    so a slowloris client cannot hold a connection), a fixed body
**    deadline from the end of the headers, no timer while the handler
**    runs, a write timeout while a response is queued (a client that
**    pipelines and never reads), the idle timeout between requests;
**  - a connection cap: at the cap a new client evicts the connection
**    that has waited longest without a complete request (libuv itself
**    keeps a reserve fd and accepts-and-closes when out of fds);
**  - the header budget charges wire bytes plus a per-header overhead,
**    the header count is capped, and buffers are sized to what arrived;
**  - Expect: 100-continue gets 100 Continue, or 413 before the body.
*/
#include <ctype.h>
#include <stdint.h>
#include <sys/resource.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <llhttp.h>

#include "gigstack.h"

struct buf {
  char *p;
  size_t len, cap;
};

struct header {
  struct buf name, value;
};

struct conn;

struct gs_http_req {
  struct conn *c;            /* NULL once the connection is gone */
  char method[24];
  char peer[64];
  struct buf target, body;
  struct header *hdrs;
  size_t nhdrs, caphdrs;
  int keep_alive;
};

struct gs_server {
  uv_tcp_t listener;
  uv_loop_t *loop;
  struct gs_server_opts opts;
  char host[64];
  gs_serve_fn serve;
  void *ud;
  struct conn *conns;
  int nconns;                /* allocated, until their close callbacks */
  int nlive;                 /* in the list: counted against the cap */
  int peak;                  /* most connections since the heap was trimmed */
  struct gs_server_stats stats;
  int listener_open;
  int closing;
};

/* What a connection's timer means depends on where the connection is. */
enum phase {
  PH_IDLE,    /* between requests: idle_timeout */
  PH_HEAD,    /* first byte to end of headers: header_timeout, fixed */
  PH_BODY,    /* end of headers to end of body: body_timeout, fixed */
  PH_BUSY,    /* the handler has the request: no timer */
  PH_WRITE    /* a response is queued: write_timeout */
};

struct conn {
  uv_tcp_t tcp;
  uv_timer_t idle;            /* the phase timer */
  llhttp_t parser;
  struct gs_server *srv;
  struct conn *prev, *next;
  struct gs_http_req *cur;    /* being parsed */
  struct gs_http_req *busy;   /* handed out, waiting for its response */
  struct buf pending;         /* bytes after a complete request */
  size_t head_bytes;
  size_t body_limit;          /* the declared length, else max_body */
  int fail_status;            /* 413 or 431 when a limit tripped, or the
                                 early answer to an Expect: 100-continue */
  int phase;
  uint64_t since;             /* uv_now() when the phase began */
  int in_value;
  int open_handles;
  int closing;
};

static llhttp_settings_t settings;

/* Append n bytes. The first allocation is exactly what arrived; later
** ones double (a body arriving in pieces) but never past limit + 1. */
static int buf_add_lim (struct buf *b, const char *p, size_t n, size_t limit) {
  if (b->len + n + 1 > b->cap) {
    size_t need = b->len + n + 1, cap = b->cap ? b->cap * 2 : need;
    char *np;
    if (cap < need) cap = need;
    if (limit < SIZE_MAX && cap > limit + 1 && need <= limit + 1) cap = limit + 1;
    if (cap < need) cap = need;
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

/* Exactly sized: header names and values, the target, pending bytes. */
static int buf_add (struct buf *b, const char *p, size_t n) {
  return buf_add_lim(b, p, n, b->len + n);
}

static void req_free (struct gs_http_req *r) {
  size_t i;
  if (!r) return;
  for (i = 0; i < r->nhdrs; i++) {
    free(r->hdrs[i].name.p);
    free(r->hdrs[i].value.p);
  }
  free(r->hdrs);
  free(r->target.p);
  free(r->body.p);
  free(r);
}

/* ===== connection lifetime ===== */

static void server_maybe_free (struct gs_server *s) {
  if (s->closing && !s->listener_open && s->nconns == 0) free(s);
}

/* Take c out of the list of live connections (it is closing). */
static void conn_unlink (struct conn *c) {
  struct gs_server *s = c->srv;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  s->nlive--;
  s->stats.connections = (size_t)s->nlive;
}

static void on_conn_closed (uv_handle_t *h) {
  struct conn *c = h->data;
  if (--c->open_handles > 0) return;
  {
    struct gs_server *s = c->srv;
    free(c->pending.p);
    free(c);
    s->nconns--;
#ifdef __GLIBC__
    /* the last of a burst of connections gone: hand the freed heap back
    ** to the OS instead of keeping the attack's high-water mark */
    if (s->nconns == 0 && s->peak >= 32 && !s->closing) {
      s->peak = 0;
      malloc_trim(0);
    }
#endif
    server_maybe_free(s);
  }
}

static void conn_close (struct conn *c) {
  if (c->closing) return;
  c->closing = 1;
  conn_unlink(c);
  if (c->busy) c->busy->c = NULL;   /* the owner still responds; it's a no-op */
  c->busy = NULL;
  req_free(c->cur);
  c->cur = NULL;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
  uv_close((uv_handle_t *)&c->idle, on_conn_closed);
}

static void on_reset_closed (uv_handle_t *h) {
  on_conn_closed(h);
}

/* ===== writing ===== */

struct write_req {
  uv_write_t w;
  struct conn *c;
  int close_after;
  int interim;               /* 100 Continue: the request goes on */
  char data[1];
};

static void resume_parsing (struct conn *c);
static void on_timer (uv_timer_t *t);

/* Enter a phase and arm its timer (0 ms: none). */
static void set_phase (struct conn *c, int phase, uint64_t ms) {
  c->phase = phase;
  c->since = uv_now(c->srv->loop);
  if (ms) uv_timer_start(&c->idle, on_timer, ms, 0);
  else uv_timer_stop(&c->idle);
}

static void on_written (uv_write_t *w, int status) {
  struct write_req *wr = (struct write_req *)w;
  struct conn *c = wr->c;
  int close_after = wr->close_after, interim = wr->interim;
  free(wr);
  if (c->closing) return;
  if (status < 0 || close_after) {
    conn_close(c);
    return;
  }
  if (!interim) resume_parsing(c);
}

static const char *reason (int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

/* send_limit < body_len sends a truncated body and hangs up (fault
** injection); otherwise pass (size_t)-1. */
static int conn_write (struct conn *c, int status, const char *const *hdrs,
                       size_t nhdrs, const char *body, size_t body_len,
                       int keep_alive, int head_only, size_t send_limit) {
  size_t i, head = 128, len, send_len;
  struct write_req *wr;
  uv_buf_t b;
  int rc;
  char *p;
  for (i = 0; i < nhdrs; i++) head += strlen(hdrs[i]) + 2;
  wr = malloc(sizeof *wr + head + body_len);
  if (!wr) return UV_ENOMEM;
  p = wr->data;
  len = (size_t)sprintf(p, "HTTP/1.1 %d %s\r\n", status, reason(status));
  for (i = 0; i < nhdrs; i++) {
    size_t n = strlen(hdrs[i]);
    memcpy(p + len, hdrs[i], n);
    memcpy(p + len + n, "\r\n", 2);
    len += n + 2;
  }
  /* HEAD keeps the length it would have had; 204 and 304 have none */
  if (status == 204 || status == 304) body_len = 0;
  send_len = head_only ? 0 : body_len;
  if (send_len > send_limit) {
    send_len = send_limit;
    keep_alive = 0;
  }
  len += (size_t)sprintf(p + len, "Content-Length: %zu\r\nConnection: %s\r\n\r\n",
                         body_len, keep_alive ? "keep-alive" : "close");
  if (send_len) memcpy(p + len, body, send_len);
  len += send_len;
  wr->c = c;
  wr->close_after = !keep_alive;
  wr->interim = 0;
  b = uv_buf_init(p, (unsigned)len);
  rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
  if (rc < 0) {
    free(wr);
    conn_close(c);
    return rc;
  }
  /* until the kernel took all of it: a client that never reads is cut */
  set_phase(c, PH_WRITE, c->srv->opts.write_timeout_ms);
  return rc;
}

/* "HTTP/1.1 100 Continue": the client may send the body now. */
static void conn_continue (struct conn *c) {
  static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
  struct write_req *wr = malloc(sizeof *wr + sizeof line);
  uv_buf_t b;
  if (!wr) return;   /* the client sends the body after its own wait */
  memcpy(wr->data, line, sizeof line);
  wr->c = c;
  wr->close_after = 0;
  wr->interim = 1;
  b = uv_buf_init(wr->data, (unsigned)(sizeof line - 1));
  if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
    free(wr);   /* the read side sees the broken connection */
}

/* An error the server answers itself, then hangs up. */
static void conn_fail (struct conn *c, int status, const char *msg) {
  char body[160];
  const char *hdrs[] = { "Content-Type: application/json" };
  int n = snprintf(body, sizeof body,
                   "{\"message\":\"%s\",\"error\":\"%s\"}", msg,
                   status == 413 ? "payload_too_large"
                   : status == 431 ? "header_too_large"
                   : status == 408 ? "request_timeout"
                   : status == 401 ? "unauthorized"
                   : status == 500 ? "internal_server_error" : "invalid_request");
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_timer_stop(&c->idle);
  req_free(c->cur);
  c->cur = NULL;
  c->busy = NULL;
  conn_write(c, status, hdrs, 1, body, (size_t)n, 0, 0, (size_t)-1);
}

/* ===== llhttp callbacks ===== */

/* What one header costs against max_header besides its name and value:
** ": " and CRLF on the wire, its struct and two allocations. */
#define HEADER_COST 64
/* The request line's method, version and CRLF. */
#define LINE_COST 16

static int head_budget (struct conn *c, size_t n) {
  c->head_bytes += n;
  if (c->head_bytes <= c->srv->opts.max_header) return 1;
  c->fail_status = 431;
  return 0;
}

static int too_large (struct conn *c) {
  c->fail_status = 413;
  return -1;
}

static int on_message_begin (llhttp_t *p) {
  struct conn *c = p->data;
  c->cur = calloc(1, sizeof *c->cur);
  if (!c->cur) return -1;
  c->cur->c = c;
  c->head_bytes = 0;
  c->in_value = 0;
  c->body_limit = c->srv->opts.max_body;
  if (c->phase != PH_HEAD)   /* pipelined bytes: the deadline starts now */
    set_phase(c, PH_HEAD, c->srv->opts.header_timeout_ms);
  return head_budget(c, LINE_COST) ? 0 : -1;
}

static int on_url (llhttp_t *p, const char *at, size_t n) {
  struct conn *c = p->data;
  if (!head_budget(c, n)) return -1;
  return buf_add(&c->cur->target, at, n);
}

static int on_header_field (llhttp_t *p, const char *at, size_t n) {
  struct conn *c = p->data;
  struct gs_http_req *r = c->cur;
  size_t i;
  if (!head_budget(c, n)) return -1;
  if (r->nhdrs == 0 || c->in_value) {
    if (r->nhdrs >= c->srv->opts.max_headers || !head_budget(c, HEADER_COST)) {
      c->fail_status = 431;
      return -1;
    }
    if (r->nhdrs == r->caphdrs) {
      size_t cap = r->caphdrs ? r->caphdrs * 2 : 8;
      struct header *h;
      if (cap > c->srv->opts.max_headers) cap = c->srv->opts.max_headers;
      h = realloc(r->hdrs, cap * sizeof *h);
      if (!h) return -1;
      r->hdrs = h;
      r->caphdrs = cap;
    }
    memset(&r->hdrs[r->nhdrs++], 0, sizeof *r->hdrs);
    c->in_value = 0;
  }
  {
    struct buf *b = &r->hdrs[r->nhdrs - 1].name;
    size_t start = b->len;
    if (buf_add(b, at, n) != 0) return -1;
    for (i = start; i < b->len; i++)
      b->p[i] = (char)tolower((unsigned char)b->p[i]);
  }
  return 0;
}

static int on_header_value (llhttp_t *p, const char *at, size_t n) {
  struct conn *c = p->data;
  struct gs_http_req *r = c->cur;
  if (!head_budget(c, n)) return -1;
  if (r->nhdrs == 0) return -1;
  c->in_value = 1;
  return buf_add(&r->hdrs[r->nhdrs - 1].value, at, n);
}

static int expects_continue (const struct gs_http_req *r) {
  size_t i;
  for (i = 0; i < r->nhdrs; i++)
    if (r->hdrs[i].name.p && strcmp(r->hdrs[i].name.p, "expect") == 0
        && r->hdrs[i].value.p
        && strcasecmp(r->hdrs[i].value.p, "100-continue") == 0)
      return 1;
  return 0;
}

static int on_headers_complete (llhttp_t *p) {
  struct conn *c = p->data;
  int has_body;
  /* this server never switches protocols: an Upgrade offer (h2c, ...)
  ** is an ordinary request; CONNECT gets its answer and a close */
  if (p->method != HTTP_CONNECT) p->upgrade = 0;
  /* refuse a declared oversized body before reading any of it (with
  ** Expect: 100-continue this is the final answer the client waits for) */
  if ((p->flags & F_CONTENT_LENGTH)
      && p->content_length > c->srv->opts.max_body)
    return too_large(c);
  /* the body buffer grows with what arrives, never past the declared
  ** length: a Content-Length alone reserves nothing */
  if (p->flags & F_CONTENT_LENGTH) c->body_limit = (size_t)p->content_length;
  has_body = (p->flags & F_CHUNKED)
             || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
  if (has_body && p->http_major == 1 && p->http_minor >= 1
      && expects_continue(c->cur)) {
    /* the client waits before sending the body: refuse it now if the
    ** head alone already decides (no credentials, say) */
    const struct gs_server_opts *o = &c->srv->opts;
    int status = o->expect_check ? o->expect_check(c->cur, o->expect_ud) : 0;
    if (status >= 400 && status <= 599) {
      c->fail_status = status;
      return -1;
    }
    conn_continue(c);
  }
  if (has_body) set_phase(c, PH_BODY, c->srv->opts.body_timeout_ms);
  return 0;
}

static int on_body (llhttp_t *p, const char *at, size_t n) {
  struct conn *c = p->data;
  if (c->cur->body.len + n > c->srv->opts.max_body) return too_large(c);
  return buf_add_lim(&c->cur->body, at, n, c->body_limit);
}

static int on_message_complete (llhttp_t *p) {
  struct conn *c = p->data;
  struct gs_http_req *r = c->cur;
  const char *m = llhttp_method_name((llhttp_method_t)llhttp_get_method(p));
  snprintf(r->method, sizeof r->method, "%s", m);
  if (!r->target.p) buf_add(&r->target, "/", 1);
  r->keep_alive = llhttp_should_keep_alive(p) && p->method != HTTP_CONNECT;
  c->busy = r;
  c->cur = NULL;
  return HPE_PAUSED;   /* one request at a time; the rest waits */
}

/* ===== reading ===== */

static void dispatch (struct conn *c) {
  struct gs_http_req *r = c->busy;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_read_stop((uv_stream_t *)&c->tcp);
  set_phase(c, PH_BUSY, 0);   /* the handler takes as long as it takes */
  /* "ip:port" ("[ip6]:port"): the port tells connections apart, so a
  ** test can see that a request came on a reused one */
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    char ip[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET6) {
      const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;
      uv_ip6_name(a6, ip, sizeof ip);
      snprintf(r->peer, sizeof r->peer, "[%s]:%u", ip, (unsigned)ntohs(a6->sin6_port));
    } else {
      const struct sockaddr_in *a4 = (const struct sockaddr_in *)&ss;
      uv_ip4_name(a4, ip, sizeof ip);
      snprintf(r->peer, sizeof r->peer, "%s:%u", ip, (unsigned)ntohs(a4->sin_port));
    }
  }
  c->srv->serve(c->srv, r, c->srv->ud);
}

static void on_timer (uv_timer_t *t) {
  struct conn *c = t->data;
  struct gs_server_stats *st = &c->srv->stats;
  switch (c->phase) {
    case PH_IDLE:
      st->idle_closed++;
      conn_close(c);
      break;
    case PH_HEAD:
    case PH_BODY:
      if (c->phase == PH_HEAD) st->header_timeouts++;
      else st->body_timeouts++;
      /* a request begun gets its answer; the write timeout bounds it */
      if (c->cur) conn_fail(c, 408, "request not received in time");
      else conn_close(c);
      break;
    case PH_WRITE:
      st->write_timeouts++;
      conn_close(c);
      break;
    default:
      break;
  }
}

/* Feed bytes to the parser; returns 1 when a request was dispatched. */
static int feed (struct conn *c, const char *data, size_t n) {
  llhttp_errno_t err = llhttp_execute(&c->parser, data, n);
  if (err == HPE_OK) return 0;
  if (err == HPE_PAUSED) {
    const char *pos = llhttp_get_error_pos(&c->parser);
    size_t used = pos ? (size_t)(pos - data) : n;
    struct buf rest = { NULL, 0, 0 };
    if (used < n && buf_add(&rest, data + used, n - used) != 0) {
      struct gs_http_req *r = c->busy;
      c->busy = NULL;
      req_free(r);   /* not handed out yet: it is ours to free */
      conn_close(c);
      return 1;
    }
    free(c->pending.p);
    c->pending = rest;
    dispatch(c);
    return 1;
  }
  if (c->fail_status == 413)
    conn_fail(c, 413, "request body too large");
  else if (c->fail_status == 431)
    conn_fail(c, 431, "request header fields too large");
  else if (c->fail_status >= 400)
    conn_fail(c, c->fail_status, "refused before the body (Expect: 100-continue)");
  else
    conn_fail(c, 400, "malformed HTTP request");
  return 1;
}

static void on_alloc (uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)h;
  b->base = malloc(hint);
  b->len = b->base ? hint : 0;
}

static void on_read (uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  struct conn *c = st->data;
  if (n < 0) {
    free(b->base);
    conn_close(c);
    return;
  }
  if (n > 0) feed(c, b->base, (size_t)n);   /* bytes never extend a deadline */
  free(b->base);
}

static void resume_parsing (struct conn *c) {
  struct buf rest = c->pending;
  c->pending.p = NULL;
  c->pending.len = c->pending.cap = 0;
  llhttp_resume(&c->parser);
  if (rest.len > 0) {
    int dispatched = feed(c, rest.p, rest.len);
    free(rest.p);
    if (dispatched || c->closing) return;
  } else {
    free(rest.p);
  }
  /* part of a pipelined request may be waiting: its deadline runs */
  if (!c->cur) set_phase(c, PH_IDLE, c->srv->opts.idle_timeout_ms);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* At the cap: the live connection that has waited longest without a
** complete request (headers or body still coming, or idle between
** requests), NULL if every one has a request in the handler or a
** response on the way. */
static struct conn *eviction_victim (struct gs_server *s) {
  struct conn *c, *best = NULL;
  for (c = s->conns; c; c = c->next)
    if ((c->phase == PH_IDLE || c->phase == PH_HEAD || c->phase == PH_BODY)
        && (!best || c->since <= best->since))
      best = c;
  return best;
}

static void on_refused_closed (uv_handle_t *h) {
  free(h);
}

static void on_connection (uv_stream_t *l, int status) {
  struct gs_server *s = l->data;
  struct conn *c;
  /* out of fds: libuv has already accepted-and-closed the waiting
  ** clients with its reserve fd; make room for the next ones */
  if (status < 0) {
    if (status == UV_EMFILE || status == UV_ENFILE) {
      struct conn *v = eviction_victim(s);
      if (v) { s->stats.evicted++; conn_close(v); }
    }
    return;
  }
  if ((size_t)s->nlive >= s->opts.max_connections) {
    struct conn *v = eviction_victim(s);
    if (v) {
      s->stats.evicted++;
      conn_close(v);
    } else {   /* every slot is serving a request: accept and close */
      uv_tcp_t *t = malloc(sizeof *t);
      s->stats.refused++;
      if (!t) return;
      uv_tcp_init(s->loop, t);
      if (uv_accept(l, (uv_stream_t *)t) == 0) uv_tcp_close_reset(t, on_refused_closed);
      else uv_close((uv_handle_t *)t, on_refused_closed);
      return;
    }
  }
  c = calloc(1, sizeof *c);
  if (!c) return;
  c->srv = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->idle);
  c->tcp.data = c->idle.data = c;
  c->open_handles = 2;
  s->nconns++;
  if (s->nconns > s->peak) s->peak = s->nconns;
  s->nlive++;
  s->stats.connections = (size_t)s->nlive;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  s->stats.accepted++;
  uv_tcp_nodelay(&c->tcp, 1);
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
  /* a new connection has header_timeout to deliver its first request */
  set_phase(c, PH_HEAD, s->opts.header_timeout_ms);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ===== public API ===== */

struct gs_server *gs_server_new (uv_loop_t *loop,
                                 const struct gs_server_opts *opts,
                                 gs_serve_fn serve, void *ud, int *err) {
  struct gs_server *s;
  struct sockaddr_storage addr;
  int rc;
  static int settings_ready = 0;
  if (!settings_ready) {
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    settings_ready = 1;
  }
  s = calloc(1, sizeof *s);
  if (!s) { *err = UV_ENOMEM; return NULL; }
  if (opts) s->opts = *opts;
  snprintf(s->host, sizeof s->host, "%s",
           s->opts.host ? s->opts.host : "127.0.0.1");
  s->opts.host = s->host;
  if (!s->opts.max_body) s->opts.max_body = 1u << 20;
  if (!s->opts.max_header) s->opts.max_header = 16u << 10;
  if (!s->opts.idle_timeout_ms) s->opts.idle_timeout_ms = 30000;
  if (!s->opts.header_timeout_ms) s->opts.header_timeout_ms = 10000;
  if (!s->opts.body_timeout_ms) s->opts.body_timeout_ms = 30000;
  if (!s->opts.write_timeout_ms) s->opts.write_timeout_ms = 30000;
  if (!s->opts.max_headers) s->opts.max_headers = 100;
  if (!s->opts.max_response || s->opts.max_response > 0x7fffffffu)
    s->opts.max_response = 0x7fffffffu;   /* uv_buf_t lengths are unsigned int */
  if (!s->opts.max_connections) {
    /* half the fd limit, at most 1000: the rest stays for curl, SQLite,
    ** the journal and whatever the script opens */
    struct rlimit rl;
    size_t cap = 1000;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
        && rl.rlim_cur / 2 < cap)
      cap = rl.rlim_cur / 2 > 8 ? (size_t)(rl.rlim_cur / 2) : 8;
    s->opts.max_connections = cap;
  }
  s->loop = loop;
  s->serve = serve;
  s->ud = ud;
  if (strchr(s->host, ':'))
    rc = uv_ip6_addr(s->host, s->opts.port, (struct sockaddr_in6 *)&addr);
  else
    rc = uv_ip4_addr(s->host, s->opts.port, (struct sockaddr_in *)&addr);
  if (rc == 0) rc = uv_tcp_init(loop, &s->listener);
  if (rc != 0) { free(s); *err = rc; return NULL; }
  s->listener.data = s;
  s->listener_open = 1;
  rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
  if (rc != 0) {
    *err = rc;
    gs_server_close(s);
    return NULL;
  }
  return s;
}

int gs_server_port (const struct gs_server *s) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) != 0)
    return -1;
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void on_listener_closed (uv_handle_t *h) {
  struct gs_server *s = h->data;
  s->listener_open = 0;
  server_maybe_free(s);
}

void gs_server_close (struct gs_server *s) {
  if (s->closing) return;
  s->closing = 1;
  while (s->conns) conn_close(s->conns);
  uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

void gs_server_get_stats (const struct gs_server *s, struct gs_server_stats *st) {
  *st = s->stats;
  st->connections = (size_t)s->nlive;
}

const char *gs_http_method (const struct gs_http_req *r) { return r->method; }
const char *gs_http_target (const struct gs_http_req *r) { return r->target.p; }
size_t gs_http_nheaders (const struct gs_http_req *r) { return r->nhdrs; }
const char *gs_http_peer (const struct gs_http_req *r) { return r->peer; }

void gs_http_header (const struct gs_http_req *r, size_t i,
                     const char **name, const char **value) {
  *name = r->hdrs[i].name.p ? r->hdrs[i].name.p : "";
  *value = r->hdrs[i].value.p ? r->hdrs[i].value.p : "";
}

const char *gs_http_body (const struct gs_http_req *r, size_t *len) {
  *len = r->body.len;
  return r->body.p ? r->body.p : "";
}

static int respond (struct gs_http_req *r, int status,
                    const char *const *headers, size_t nheaders,
                    const char *body, size_t body_len, size_t send_limit) {
  struct conn *c = r->c;
  int rc = UV_ECONNRESET;
  if (c && (c->closing || c->srv->closing)) c = NULL;
  if (c && body_len > c->srv->opts.max_response) {
    /* cannot be sent: the client gets a 500 and the connection closes;
    ** c->busy is r, about to be freed, so it must not outlive this */
    c->busy = NULL;
    r->c = NULL;
    conn_fail(c, 500, "response body too large");
    rc = UV_E2BIG;
  } else if (body_len > 0x7fffffffu) {
    rc = UV_E2BIG;
  } else if (c) {
    c->busy = NULL;
    rc = conn_write(c, status, headers, nheaders, body, body_len,
                    r->keep_alive, strcmp(r->method, "HEAD") == 0, send_limit);
  }
  req_free(r);
  return rc < 0 ? rc : 0;
}

int gs_http_respond (struct gs_http_req *r, int status,
                     const char *const *headers, size_t nheaders,
                     const char *body, size_t body_len) {
  return respond(r, status, headers, nheaders, body, body_len, (size_t)-1);
}

int gs_http_respond_truncated (struct gs_http_req *r, int status,
                               const char *const *headers, size_t nheaders,
                               const char *body, size_t body_len,
                               size_t send_len) {
  return respond(r, status, headers, nheaders, body, body_len, send_len);
}

void gs_http_abort (struct gs_http_req *r) {
  struct conn *c = r->c;
  if (c && !c->closing) {
    c->busy = NULL;
    r->c = NULL;
    /* RST instead of FIN: the client sees a reset connection */
    conn_unlink(c);
    c->closing = 1;
    req_free(c->cur);
    c->cur = NULL;
    if (uv_tcp_close_reset(&c->tcp, on_reset_closed) != 0)
      uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->idle, on_conn_closed);
  }
  req_free(r);
}
