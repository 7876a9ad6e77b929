/* Floor of `make bench`'s bytes per request in flight (issue 12): the
** RSS that libcurl alone holds per transfer waiting for its answer, with
** nothing of ours in the process. N easy handles with src/engine.c's
** options go on one multi against a server that holds each answer
** (X-Mock-Latency on the emulator); VmRSS before and once all N are on
** the wire, divided by N. BUFFER is CURLOPT_BUFFERSIZE: the engine's
** 2048, or libcurl's minimum 1024.
**   libcurl_pending URL N BUFFER
** Prints one JSON line. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long rss_kb (void) {
  char line[256];
  long kb = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
  fclose(f);
  return kb;
}

static size_t sink (char *p, size_t size, size_t n, void *ud) {
  (void)p; (void)ud;
  return size * n;
}

static void setup (CURL *c, const char *url, struct curl_slist *headers, long buffer) {
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sink);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, buffer);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
}

int main (int argc, char **argv) {
  const char *url = argc > 3 ? argv[1] : NULL;
  long n = argc > 3 ? atol(argv[2]) : 0, buffer = argc > 3 ? atol(argv[3]) : 0;
  struct curl_slist *headers = NULL;
  CURLM *multi;
  CURL **easy, *warm;
  long before, pending, i;
  int running = 0, turns;
  if (!url || n <= 0 || buffer <= 0) {
    fprintf(stderr, "usage: libcurl_pending URL N BUFFER\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  headers = curl_slist_append(headers, "Authorization: Bearer sk_test_mock");
  headers = curl_slist_append(headers, "X-Mock-Latency: 3000");
  headers = curl_slist_append(headers, "Expect:");
  /* one finished request first, so the library's lazy set-up is not
  ** counted; only the "Expect:" line: no latency header, answered at once
  ** (a 401, which is a finished transfer all the same) */
  warm = curl_easy_init();
  setup(warm, url, headers, buffer);
  curl_easy_setopt(warm, CURLOPT_HTTPHEADER, headers->next->next);
  if (curl_easy_perform(warm) != CURLE_OK) {
    fprintf(stderr, "warm-up request to %s failed\n", url);
    return 1;
  }
  curl_easy_cleanup(warm);
  multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, n);
  easy = calloc((size_t)n, sizeof *easy);
  if (!easy) return 1;
  before = rss_kb();
  for (i = 0; i < n; i++) {
    easy[i] = curl_easy_init();
    setup(easy[i], url, headers, buffer);
    curl_multi_add_handle(multi, easy[i]);
  }
  /* until every request is sent (bounded: the server holds answers 3 s) */
  for (turns = 0; turns < 400; turns++) {
    int fds;
    long sent = 0;
    curl_multi_perform(multi, &running);
    for (i = 0; i < n; i++) {
      long bytes = 0;
      curl_easy_getinfo(easy[i], CURLINFO_REQUEST_SIZE, &bytes);
      if (bytes > 0) sent++;
    }
    if (sent == n) break;
    curl_multi_poll(multi, NULL, 0, 5, &fds);
  }
  pending = rss_kb();
  printf("{\"buffer\":%ld,\"requests\":%ld,\"running\":%d,\"rss_before_kb\":%ld,\"rss_pending_kb\":%ld,"
         "\"bytes_per_request\":%.0f}\n", buffer, n, running, before, pending,
         (double)(pending - before) * 1024.0 / (double)n);
  for (i = 0; i < n; i++) {
    curl_multi_remove_handle(multi, easy[i]);
    curl_easy_cleanup(easy[i]);
  }
  free(easy);
  curl_multi_cleanup(multi);
  curl_slist_free_all(headers);
  curl_global_cleanup();
  return running == n ? 0 : 1;
}
