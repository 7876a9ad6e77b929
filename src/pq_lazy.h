/*
** pq_lazy.h
** libpq is opened when a script first connects to PostgreSQL (see
** lazy.h). Include after <libpq-fe.h>: the PQ calls below then go
** through pointers that gs_pq_open() fills.
*/
#ifndef GS_PQ_LAZY_H
#define GS_PQ_LAZY_H

#include <libpq-fe.h>

#define GS_PQ_FUNCS(X) \
  X(int, PQbackendPID, (const PGconn *)) \
  X(void, PQclear, (PGresult *)) \
  X(char *, PQcmdTuples, (PGresult *)) \
  X(PostgresPollingStatusType, PQconnectPoll, (PGconn *)) \
  X(PGconn *, PQconnectStart, (const char *)) \
  X(int, PQconsumeInput, (PGconn *)) \
  X(char *, PQerrorMessage, (const PGconn *)) \
  X(void, PQfinish, (PGconn *)) \
  X(int, PQflush, (PGconn *)) \
  X(PGresult *, PQgetResult, (PGconn *)) \
  X(int, PQgetisnull, (const PGresult *, int, int)) \
  X(int, PQgetlength, (const PGresult *, int, int)) \
  X(char *, PQgetvalue, (const PGresult *, int, int)) \
  X(int, PQisBusy, (PGconn *)) \
  X(int, PQnfields, (const PGresult *)) \
  X(int, PQntuples, (const PGresult *)) \
  X(char *, PQresStatus, (ExecStatusType)) \
  X(char *, PQresultErrorField, (const PGresult *, int)) \
  X(ExecStatusType, PQresultStatus, (const PGresult *)) \
  X(int, PQsendQuery, (PGconn *, const char *)) \
  X(int, PQsendQueryParams, (PGconn *, const char *, int, const Oid *, \
                             const char *const *, const int *, const int *, int)) \
  X(PQnoticeProcessor, PQsetNoticeProcessor, (PGconn *, PQnoticeProcessor, void *)) \
  X(int, PQsetnonblocking, (PGconn *, int)) \
  X(int, PQsocket, (const PGconn *)) \
  X(ConnStatusType, PQstatus, (const PGconn *))

struct gs_pq_api {
#define GS_PQ_FIELD(ret, name, args) ret (*name) args;
  GS_PQ_FUNCS(GS_PQ_FIELD)
#undef GS_PQ_FIELD
};

extern struct gs_pq_api gs_pq_api_;

/* 0 when libpq is open, else -1 with the reason in gs_pq_error(). */
int gs_pq_open (void);
const char *gs_pq_error (void);

#ifndef GS_PQ_LAZY_IMPL
#define PQbackendPID (*gs_pq_api_.PQbackendPID)
#define PQclear (*gs_pq_api_.PQclear)
#define PQcmdTuples (*gs_pq_api_.PQcmdTuples)
#define PQconnectPoll (*gs_pq_api_.PQconnectPoll)
#define PQconnectStart (*gs_pq_api_.PQconnectStart)
#define PQconsumeInput (*gs_pq_api_.PQconsumeInput)
#define PQerrorMessage (*gs_pq_api_.PQerrorMessage)
#define PQfinish (*gs_pq_api_.PQfinish)
#define PQflush (*gs_pq_api_.PQflush)
#define PQgetResult (*gs_pq_api_.PQgetResult)
#define PQgetisnull (*gs_pq_api_.PQgetisnull)
#define PQgetlength (*gs_pq_api_.PQgetlength)
#define PQgetvalue (*gs_pq_api_.PQgetvalue)
#define PQisBusy (*gs_pq_api_.PQisBusy)
#define PQnfields (*gs_pq_api_.PQnfields)
#define PQntuples (*gs_pq_api_.PQntuples)
#define PQresStatus (*gs_pq_api_.PQresStatus)
#define PQresultErrorField (*gs_pq_api_.PQresultErrorField)
#define PQresultStatus (*gs_pq_api_.PQresultStatus)
#define PQsendQuery (*gs_pq_api_.PQsendQuery)
#define PQsendQueryParams (*gs_pq_api_.PQsendQueryParams)
#define PQsetNoticeProcessor (*gs_pq_api_.PQsetNoticeProcessor)
#define PQsetnonblocking (*gs_pq_api_.PQsetnonblocking)
#define PQsocket (*gs_pq_api_.PQsocket)
#define PQstatus (*gs_pq_api_.PQstatus)
#endif

#endif
