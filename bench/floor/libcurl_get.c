/* Floor client of `make bench` (issue 12): what libcurl alone reaches on
** the throughput table's GETs, with nothing of ours in between. One
** curl multi driven by curl_multi_socket_action over epoll (no libuv, no
** Lua, no coroutines), easy handles reused with curl_easy_reset and the
** options src/engine.c sets on every request (headers, compression,
** 2 KB buffer, timeouts, header and body callbacks), the body gathered
** into a buffer as the engine does. With --decode every body also goes
** through lua-cjson's decode in an embedded Lua 5.4, the cheapest way a
** Lua SDK can hand the caller a decoded payment. With --minimal a handle
** gets only its URL, the body callback and NOSIGNAL, keeps libcurl's
** default buffer and is reused without a reset: the least libcurl can be
** asked to do (no compression, no timeouts). With --poll the sockets are
** waited on with poll() instead of epoll: libuv, the project's loop, is
** epoll on Linux, and epoll's wake-up path costs ~3 us more per request
** here (found by a review: perf shows it in the kernel's wake-ups).
**   libcurl_get BASE_URL N CONCURRENCY [--decode] [--minimal] [--poll]
** Prints one JSON line: rps, errors, cpu_us_per_request. */
#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

struct body { char *data; size_t len, cap; };

static int epfd;
static long timer_ms = -1;
static struct curl_slist headers[3];
static char errbuf[CURL_ERROR_SIZE];
static int minimal, use_poll;

/* the sockets curl asked to watch, for the poll() driver */
#define MAX_SOCKETS 4096
static struct pollfd watched[MAX_SOCKETS];
static int nwatched;

static size_t on_body (char *p, size_t size, size_t n, void *ud) {
  struct body *b = ud;
  size_t len = size * n;
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    char *d;
    while (cap < b->len + len) cap *= 2;
    if (!(d = realloc(b->data, cap))) return 0;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, len);
  b->len += len;
  return len;
}

static size_t on_header (char *p, size_t size, size_t n, void *ud) {
  (void)p; (void)ud;
  return size * n;
}

static void watch (curl_socket_t s, int what) {
  int k;
  short events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) | ((what & CURL_POLL_OUT) ? POLLOUT : 0));
  for (k = 0; k < nwatched && watched[k].fd != s; k++) {}
  if (what == CURL_POLL_REMOVE) {
    if (k < nwatched) watched[k] = watched[--nwatched];
    return;
  }
  if (k == nwatched) {
    if (nwatched == MAX_SOCKETS) return;
    watched[nwatched++].fd = s;
  }
  watched[k].events = events;
}

static int on_socket (CURL *easy, curl_socket_t s, int what, void *ud, void *sockp) {
  struct epoll_event ev;
  (void)easy; (void)ud; (void)sockp;
  if (use_poll) {
    watch(s, what);
    return 0;
  }
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, s, NULL);
    return 0;
  }
  memset(&ev, 0, sizeof ev);
  ev.data.fd = s;
  ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, s, &ev) != 0) epoll_ctl(epfd, EPOLL_CTL_ADD, s, &ev);
  return 0;
}

static int on_timer (CURLM *multi, long ms, void *ud) {
  (void)multi; (void)ud;
  timer_ms = ms;
  return 0;
}

/* the same options as src/engine.c's setup_easy for a GET */
static void setup (CURL *c, const char *base, long i, struct body *b) {
  char url[512];
  snprintf(url, sizeof url, "%s/payments/pay_%ld", base, i);
  b->len = 0;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)b);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (minimal) return;
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 2048L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
}

/* cjson.decode(body) must give a table with a data field */
static int decoded_ok (lua_State *L, const struct body *b) {
  int ok;
  lua_pushvalue(L, 1);
  lua_pushlstring(L, b->data, b->len);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    return 0;
  }
  ok = lua_istable(L, -1) && lua_getfield(L, -1, "data") == LUA_TTABLE;
  lua_settop(L, 1);
  return ok;
}

int main (int argc, char **argv) {
  const char *base = argc > 3 ? argv[1] : NULL;
  long n = argc > 3 ? atol(argv[2]) : 0, conc = argc > 3 ? atol(argv[3]) : 0;
  int decode = 0, a;
  long started = 0, done = 0, errors = 0, i;
  struct body *bodies;
  struct timespec t0, t1;
  lua_State *L = NULL;
  CURLM *multi;
  int running;
  double seconds;
  for (a = 4; a < argc; a++) {
    if (strcmp(argv[a], "--decode") == 0) decode = 1;
    else if (strcmp(argv[a], "--minimal") == 0) minimal = 1;
    else if (strcmp(argv[a], "--poll") == 0) use_poll = 1;
    else base = NULL;
  }
  if (!base || n <= 0 || conc <= 0 || conc > MAX_SOCKETS / 2) {
    fprintf(stderr, "usage: libcurl_get BASE_URL N CONCURRENCY [--decode] [--minimal] [--poll]\n");
    return 2;
  }
  if (decode) {
    L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_dostring(L, "return require('cjson').decode") != LUA_OK) {
      fprintf(stderr, "lua-cjson: %s\n", lua_tostring(L, -1));
      return 1;
    }
  }
  headers[0].data = "Accept: application/json";
  headers[0].next = &headers[1];
  headers[1].data = "Authorization: Bearer sk_bench";
  headers[1].next = &headers[2];
  headers[2].data = "Expect:";
  curl_global_init(CURL_GLOBAL_DEFAULT);
  epfd = epoll_create1(0);
  multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, conc);
  bodies = calloc((size_t)conc, sizeof *bodies);
  if (!bodies) return 1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (i = 0; i < conc && started < n; i++) {
    CURL *c = curl_easy_init();
    setup(c, base, ++started, &bodies[i]);
    curl_multi_add_handle(multi, c);
  }
  curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
  while (done < n) {
    CURLMsg *msg;
    int k, left, nev, wait_ms = timer_ms < 0 ? 1000 : (int)timer_ms;
    if (use_poll) {
      /* a copy: socket_action may change the watched set as it runs */
      static struct pollfd ready[MAX_SOCKETS];
      int nready = nwatched;
      memcpy(ready, watched, sizeof ready[0] * (size_t)nready);
      nev = poll(ready, (nfds_t)nready, wait_ms);
      if (nev <= 0) curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
      for (k = 0; nev > 0 && k < nready; k++) {
        short re = ready[k].revents;
        if (!re) continue;
        curl_multi_socket_action(multi, ready[k].fd,
          ((re & (POLLIN | POLLHUP | POLLERR)) ? CURL_CSELECT_IN : 0) | ((re & POLLOUT) ? CURL_CSELECT_OUT : 0),
          &running);
      }
    } else {
      struct epoll_event evs[128];
      nev = epoll_wait(epfd, evs, 128, wait_ms);
      if (nev <= 0) curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
      for (k = 0; k < nev; k++) {
        int what = ((evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ? CURL_CSELECT_IN : 0)
                 | ((evs[k].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0);
        curl_multi_socket_action(multi, evs[k].data.fd, what, &running);
      }
    }
    while ((msg = curl_multi_info_read(multi, &left))) {
      CURL *c = msg->easy_handle;
      struct body *b;
      long status = 0;
      if (msg->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(c, CURLINFO_PRIVATE, (char **)&b);
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
      done++;
      if (msg->data.result != CURLE_OK || status != 200 || b->len == 0 || (L && !decoded_ok(L, b)))
        errors++;
      curl_multi_remove_handle(multi, c);
      if (started < n) {
        if (!minimal) curl_easy_reset(c);   /* as the engine's pool does */
        setup(c, base, ++started, b);
        curl_multi_add_handle(multi, c);
      } else {
        curl_easy_cleanup(c);
      }
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("{\"rps\":%.1f,\"requests\":%ld,\"errors\":%ld,\"seconds\":%.4f,\"cpu_us_per_request\":%.2f}\n",
         (double)n / seconds, n, errors, seconds, (double)clock() / CLOCKS_PER_SEC / (double)n * 1e6);
  curl_multi_cleanup(multi);
  for (i = 0; i < conc; i++) free(bodies[i].data);
  free(bodies);
  if (L) lua_close(L);
  curl_global_cleanup();
  return errors ? 1 : 0;
}
