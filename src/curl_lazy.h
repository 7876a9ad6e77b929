/*
** curl_lazy.h
** libcurl is opened on the first request, not when the program starts:
** with its ~30 dependencies it is most of the start-up time, and a
** script that makes no request (or `gigstack-run --help`) never needs it.
** Include after <curl/curl.h>: the curl calls below then go through
** pointers that gsl_curl_open() fills with dlsym.
*/
#ifndef GS_CURL_LAZY_H
#define GS_CURL_LAZY_H

#include <stddef.h>
#include <curl/curl.h>

#define GS_CURL_FUNCS(X) \
  X(CURLcode, curl_global_init, (long)) \
  X(curl_version_info_data *, curl_version_info, (CURLversion)) \
  X(CURL *, curl_easy_init, (void)) \
  X(void, curl_easy_cleanup, (CURL *)) \
  X(void, curl_easy_reset, (CURL *)) \
  X(CURLcode, curl_easy_setopt, (CURL *, CURLoption, ...)) \
  X(CURLcode, curl_easy_getinfo, (CURL *, CURLINFO, ...)) \
  X(const char *, curl_easy_strerror, (CURLcode)) \
  X(CURLM *, curl_multi_init, (void)) \
  X(CURLMcode, curl_multi_cleanup, (CURLM *)) \
  X(CURLMcode, curl_multi_setopt, (CURLM *, CURLMoption, ...)) \
  X(CURLMcode, curl_multi_add_handle, (CURLM *, CURL *)) \
  X(CURLMcode, curl_multi_remove_handle, (CURLM *, CURL *)) \
  X(CURLMcode, curl_multi_assign, (CURLM *, curl_socket_t, void *)) \
  X(CURLMcode, curl_multi_socket_action, (CURLM *, curl_socket_t, int, int *)) \
  X(CURLMsg *, curl_multi_info_read, (CURLM *, int *)) \
  X(struct curl_slist *, curl_slist_append, (struct curl_slist *, const char *)) \
  X(void, curl_slist_free_all, (struct curl_slist *)) \
  X(curl_mime *, curl_mime_init, (CURL *)) \
  X(void, curl_mime_free, (curl_mime *)) \
  X(curl_mimepart *, curl_mime_addpart, (curl_mime *)) \
  X(CURLcode, curl_mime_name, (curl_mimepart *, const char *)) \
  X(CURLcode, curl_mime_filename, (curl_mimepart *, const char *)) \
  X(CURLcode, curl_mime_type, (curl_mimepart *, const char *)) \
  X(CURLcode, curl_mime_data, (curl_mimepart *, const char *, size_t)) \
  X(CURLcode, curl_mime_filedata, (curl_mimepart *, const char *)) \
  X(time_t, curl_getdate, (const char *, const time_t *))

struct gsl_curl_api {
#define GS_CURL_FIELD(ret, name, args) ret (*name) args;
  GS_CURL_FUNCS(GS_CURL_FIELD)
#undef GS_CURL_FIELD
};

extern struct gsl_curl_api gsl_curl_api;

/* Opens libcurl and runs curl_global_init once; 0 on success, else -1
** with the reason in gsl_curl_error(). Later calls are cheap. */
int gsl_curl_open (void);
const char *gsl_curl_error (void);

#ifndef GS_CURL_LAZY_IMPL
/* the type-checking macros of <curl/typecheck-gcc.h> call the symbols */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init (*gsl_curl_api.curl_global_init)
#define curl_version_info (*gsl_curl_api.curl_version_info)
#define curl_easy_init (*gsl_curl_api.curl_easy_init)
#define curl_easy_cleanup (*gsl_curl_api.curl_easy_cleanup)
#define curl_easy_reset (*gsl_curl_api.curl_easy_reset)
#define curl_easy_setopt (*gsl_curl_api.curl_easy_setopt)
#define curl_easy_getinfo (*gsl_curl_api.curl_easy_getinfo)
#define curl_easy_strerror (*gsl_curl_api.curl_easy_strerror)
#define curl_multi_init (*gsl_curl_api.curl_multi_init)
#define curl_multi_cleanup (*gsl_curl_api.curl_multi_cleanup)
#define curl_multi_setopt (*gsl_curl_api.curl_multi_setopt)
#define curl_multi_add_handle (*gsl_curl_api.curl_multi_add_handle)
#define curl_multi_remove_handle (*gsl_curl_api.curl_multi_remove_handle)
#define curl_multi_assign (*gsl_curl_api.curl_multi_assign)
#define curl_multi_socket_action (*gsl_curl_api.curl_multi_socket_action)
#define curl_multi_info_read (*gsl_curl_api.curl_multi_info_read)
#define curl_slist_append (*gsl_curl_api.curl_slist_append)
#define curl_slist_free_all (*gsl_curl_api.curl_slist_free_all)
#define curl_mime_init (*gsl_curl_api.curl_mime_init)
#define curl_mime_free (*gsl_curl_api.curl_mime_free)
#define curl_mime_addpart (*gsl_curl_api.curl_mime_addpart)
#define curl_mime_name (*gsl_curl_api.curl_mime_name)
#define curl_mime_filename (*gsl_curl_api.curl_mime_filename)
#define curl_mime_type (*gsl_curl_api.curl_mime_type)
#define curl_mime_data (*gsl_curl_api.curl_mime_data)
#define curl_mime_filedata (*gsl_curl_api.curl_mime_filedata)
#define curl_getdate (*gsl_curl_api.curl_getdate)
#endif

#endif
