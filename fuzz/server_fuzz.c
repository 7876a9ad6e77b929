/*
** server_fuzz.c
** libFuzzer target: raw bytes sent to the HTTP/1.1 server (uv_tcp +
** llhttp) over a real loopback connection, then a half-close. Every
** request it completes is answered; the target checks the server neither
** crashes nor leaks, and that the loop drains each time.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gigstack.h"

static uv_loop_t loop;
static struct gs_server *server;
static struct sockaddr_in addr;

struct client {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  uv_shutdown_t shutdown;
  uv_buf_t buf;
  int closed;
};

static void serve (struct gs_server *s, struct gs_http_req *req, void *ud) {
  size_t len;
  const char *hdr[] = { "Content-Type: text/plain" };
  (void)s; (void)ud;
  (void)gs_http_body(req, &len);
  if (len % 3 == 1) gs_http_abort(req);          /* exercise the reset path too */
  else gs_http_respond(req, 200, hdr, 1, "ok", 2);
}

static void on_close (uv_handle_t *h) {
  ((struct client *)h->data)->closed = 1;
}

static void on_alloc (uv_handle_t *h, size_t hint, uv_buf_t *b) {
  static char scratch[65536];
  (void)h; (void)hint;
  b->base = scratch;
  b->len = sizeof scratch;
}

static void on_read (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n < 0) uv_close((uv_handle_t *)s, on_close);
}

static void on_shutdown (uv_shutdown_t *r, int status) {
  (void)r; (void)status;
}

static void on_written (uv_write_t *w, int status) {
  struct client *c = w->data;
  if (status < 0) {
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_close);
    return;
  }
  uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown);
}

static void on_connect (uv_connect_t *r, int status) {
  struct client *c = r->data;
  if (status < 0) {
    uv_close((uv_handle_t *)&c->tcp, on_close);
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  c->write.data = c;
  uv_write(&c->write, (uv_stream_t *)&c->tcp, &c->buf, 1, on_written);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  struct client c;
  if (!server) {
    struct gs_server_opts o;
    int err = 0;
    uv_loop_init(&loop);
    memset(&o, 0, sizeof o);
    o.max_body = 4096;
    o.max_header = 2048;
    o.idle_timeout_ms = 1000;
    server = gs_server_new(&loop, &o, serve, NULL, &err);
    if (!server) abort();
    uv_ip4_addr("127.0.0.1", gs_server_port(server), &addr);
  }
  memset(&c, 0, sizeof c);
  c.tcp.data = &c;
  c.connect.data = &c;
  c.buf = uv_buf_init((char *)data, (unsigned)size);
  uv_tcp_init(&loop, &c.tcp);
  uv_tcp_connect(&c.connect, &c.tcp, (struct sockaddr *)&addr, on_connect);
  while (!c.closed) uv_run(&loop, UV_RUN_ONCE);
  return 0;
}
