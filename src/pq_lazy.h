/*
** pq_lazy.h
** libpq is opened when a script first connects to PostgreSQL (see
** lazy.h). Include after <libpq-fe.h>: the PQ calls below then go
** through pointers that gsl_pq_open() fills.
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

struct gsl_pq_api {
#define GS_PQ_FIELD(ret, name, args) ret (*name) args;
  GS_PQ_FUNCS(GS_PQ_FIELD)
#undef GS_PQ_FIELD
};

extern struct gsl_pq_api gsl_pq_api;

/* 0 when libpq is open, else -1 with the reason in gsl_pq_error(). */
int gsl_pq_open (void);
const char *gsl_pq_error (void);

#ifndef GS_PQ_LAZY_IMPL
#define PQbackendPID (*gsl_pq_api.PQbackendPID)
#define PQclear (*gsl_pq_api.PQclear)
#define PQcmdTuples (*gsl_pq_api.PQcmdTuples)
#define PQconnectPoll (*gsl_pq_api.PQconnectPoll)
#define PQconnectStart (*gsl_pq_api.PQconnectStart)
#define PQconsumeInput (*gsl_pq_api.PQconsumeInput)
#define PQerrorMessage (*gsl_pq_api.PQerrorMessage)
#define PQfinish (*gsl_pq_api.PQfinish)
#define PQflush (*gsl_pq_api.PQflush)
#define PQgetResult (*gsl_pq_api.PQgetResult)
#define PQgetisnull (*gsl_pq_api.PQgetisnull)
#define PQgetlength (*gsl_pq_api.PQgetlength)
#define PQgetvalue (*gsl_pq_api.PQgetvalue)
#define PQisBusy (*gsl_pq_api.PQisBusy)
#define PQnfields (*gsl_pq_api.PQnfields)
#define PQntuples (*gsl_pq_api.PQntuples)
#define PQresStatus (*gsl_pq_api.PQresStatus)
#define PQresultErrorField (*gsl_pq_api.PQresultErrorField)
#define PQresultStatus (*gsl_pq_api.PQresultStatus)
#define PQsendQuery (*gsl_pq_api.PQsendQuery)
#define PQsendQueryParams (*gsl_pq_api.PQsendQueryParams)
#define PQsetNoticeProcessor (*gsl_pq_api.PQsetNoticeProcessor)
#define PQsetnonblocking (*gsl_pq_api.PQsetnonblocking)
#define PQsocket (*gsl_pq_api.PQsocket)
#define PQstatus (*gsl_pq_api.PQstatus)
#endif

#endif
