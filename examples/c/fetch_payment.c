/*
** fetch_payment.c
** An example of libgigstack's C API: fetch one payment and print its
** total. Uses only <gigstack.h> (and libuv, which it includes).
**
**   cc fetch_payment.c $(pkg-config --cflags --libs gigstack) -o fetch_payment
**   GIGSTACK_API_KEY=sk_... ./fetch_payment payment_abc123
**
** GIGSTACK_BASE_URL picks another server (e.g. the emulator that
** `gigstack-run --serve-mock 127.0.0.1:0` starts). Prints
** "payment ID: total AMOUNT CURRENCY"; exit status 0, or 1 with a
** message on stderr. The amount is printed as the API's text, never
** through a double.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gigstack.h>

struct result {
  int done;
  long status;
  int error;
  char msg[256];
  char *body;
  size_t len;
};

static void on_done (struct gs_request *req, const struct gs_response *res,
                     void *ud) {
  struct result *r = ud;
  (void)req;
  r->done = 1;
  r->status = res->status;
  r->error = res->error;
  if (res->error)
    snprintf(r->msg, sizeof r->msg, "%s", res->error_msg ? res->error_msg : "");
  /* res is valid only during the call: keep a copy of the body */
  r->body = malloc(res->body_len + 1);
  if (r->body) {
    memcpy(r->body, res->body, res->body_len);
    r->body[res->body_len] = '\0';
    r->len = res->body_len;
  }
}

/* ---- just enough JSON to find data.total: skip values, compare keys */
static const char *ws (const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

static const char *skip_string (const char *p, const char *e) {
  for (p++; p < e; p++) {
    if (*p == '\\') p++;
    else if (*p == '"') return p + 1;
  }
  return NULL;
}

static const char *skip_value (const char *p, const char *e) {
  p = ws(p, e);
  if (p >= e) return NULL;
  if (*p == '"') return skip_string(p, e);
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    p = ws(p + 1, e);
    if (p < e && *p == close) return p + 1;
    for (;;) {
      if (close == '}') {           /* "key": */
        p = ws(p, e);
        if (p >= e || *p != '"' || !(p = skip_string(p, e))) return NULL;
        p = ws(p, e);
        if (p >= e || *p != ':') return NULL;
        p++;
      }
      if (!(p = skip_value(p, e))) return NULL;
      p = ws(p, e);
      if (p < e && *p == ',') { p++; continue; }
      return p < e && *p == close ? p + 1 : NULL;
    }
  }
  while (p < e && !strchr(",}] \t\r\n", *p)) p++;   /* number, true, null */
  return p;
}

/* The value of member `key` of the object at p, or NULL; *vend gets its end. */
static const char *member (const char *p, const char *e, const char *key,
                           const char **vend) {
  size_t klen = strlen(key);
  p = ws(p, e);
  if (p >= e || *p != '{') return NULL;
  p = ws(p + 1, e);
  while (p < e && *p == '"') {
    const char *k = p + 1, *kend = skip_string(p, e), *v;
    if (!kend) return NULL;
    p = ws(kend, e);
    if (p >= e || *p != ':') return NULL;
    v = ws(p + 1, e);
    if (!(p = skip_value(v, e))) return NULL;
    if ((size_t)(kend - 1 - k) == klen && memcmp(k, key, klen) == 0) {
      *vend = p;
      return v;
    }
    p = ws(p, e);
    if (p < e && *p == ',') p = ws(p + 1, e);
  }
  return NULL;
}

static void text (const char *v, const char *vend, char *out, size_t n) {
  if (v && *v == '"') { v++; vend--; }       /* a string: without quotes */
  snprintf(out, n, "%.*s", v ? (int)(vend - v) : 0, v ? v : "");
}

int main (int argc, char **argv) {
  const char *key = getenv("GIGSTACK_API_KEY");
  const char *base = getenv("GIGSTACK_BASE_URL");
  char url[1024], auth[512], total[64], currency[16];
  const char *headers[2];
  struct gs_request_spec spec;
  struct result r;
  struct gs_engine *engine;
  uv_loop_t loop;
  const char *data, *dend, *v, *vend;

  if (argc != 2 || !argv[1][0] || strchr(argv[1], '/')) {
    fprintf(stderr, "usage: %s PAYMENT_ID  (GIGSTACK_API_KEY, GIGSTACK_BASE_URL)\n", argv[0]);
    return 1;
  }
  if (!key || !*key) {
    fprintf(stderr, "%s: GIGSTACK_API_KEY is not set\n", argv[0]);
    return 1;
  }
  if (!base || !*base) base = "https://api.gigstack.io/v2";
  snprintf(url, sizeof url, "%s/payments/%s", base, argv[1]);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
  headers[0] = auth;
  headers[1] = "Accept: application/json";

  memset(&spec, 0, sizeof spec);
  spec.method = "GET";
  spec.url = url;
  spec.headers = headers;
  spec.nheaders = 2;
  spec.idempotent = 1;                 /* a GET may be retried */
  spec.deadline_ms = 30000;

  memset(&r, 0, sizeof r);
  if (uv_loop_init(&loop) != 0) return 1;
  engine = gs_engine_new(&loop, NULL);
  if (!engine || !gs_engine_submit(engine, &spec, on_done, &r)) {
    fprintf(stderr, "%s: cannot start the request\n", argv[0]);
    return 1;
  }
  while (!r.done && uv_run(&loop, UV_RUN_ONCE)) {}
  gs_engine_close(engine);
  uv_run(&loop, UV_RUN_DEFAULT);       /* the engine frees itself on close */
  uv_loop_close(&loop);

  if (r.error || r.status != 200 || !r.body) {
    fprintf(stderr, "%s: GET /payments/%s: %s (HTTP %ld)\n", argv[0], argv[1],
            r.error ? r.msg : "request failed", r.status);
    free(r.body);
    return 1;
  }
  data = member(r.body, r.body + r.len, "data", &dend);
  v = data ? member(data, dend, "total", &vend) : NULL;
  if (!v) {
    fprintf(stderr, "%s: no data.total in the response\n", argv[0]);
    free(r.body);
    return 1;
  }
  text(v, vend, total, sizeof total);
  v = member(data, dend, "currency", &vend);
  text(v, vend, currency, sizeof currency);
  printf("payment %s: total %s %s\n", argv[1], total, currency);
  free(r.body);
  return 0;
}
